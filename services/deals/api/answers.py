"""What the deals API's read routes answer, as models: the OpenAPI documents say it, with an example, and a fuzz
run checks each answer against it (decision 0029). Value types are the event contract's (they read any stored
value); ``extra="allow"``: a field added to a view is answered before its model names it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from services.deals.events import ProductLine, StageDefinition, StageSnapshot
from shared.core.money import Money
from shared.edge.queries import Page


class QuoteView(BaseModel):
    model_config = ConfigDict(extra="allow")
    quote_id: str = Field(json_schema_extra={"format": "uuid"})
    version: int
    status: str = Field(description="sent, accepted or rejected")
    total: Money
    valid_until: str = Field(json_schema_extra={"format": "date"})


class FollowUpView(BaseModel):
    model_config = ConfigDict(extra="allow")
    follow_up_id: str = Field(json_schema_extra={"format": "uuid"})
    kind: str
    due_on: str = Field(json_schema_extra={"format": "date"})
    order_id: str | None = None
    completed: bool
    contacts: int
    csat: int | None = None
    nps: int | None = None


_DEAL: dict[str, JsonValue] = {
    "deal_id": "6d1f0a52-3c2b-4f7e-9a0d-1b2c3d4e5f60",
    "status": "open",
    "pipeline_id": "default",
    "stage": {
        "stage_id": "proposal",
        "name": "Proposal",
        "order": 2,
        "probability": "0.5",
        "kind": "open",
    },
    "entered_stage_at": "2026-11-24T02:30:00+00:00",
    "opened_at": "2026-11-20T03:00:00+00:00",
    "closed_at": None,
    "title": "Máy lạnh văn phòng",
    "customer": "Công ty Hòa Bình",
    "organisation_id": None,
    "person_ids": [],
    "owner_id": "u-lan",
    "team_id": "north",
    "value": {"amount": "60000000", "currency": "VND"},
    "probability": "0.5",
    "probability_overridden": False,
    "weighted_value": {"amount": "30000000", "currency": "VND"},
    "lines": [
        {
            "product": "Máy lạnh 2HP",
            "quantity": "4",
            "unit": "pcs",
            "unit_price": {"amount": "15000000", "currency": "VND"},
            "discount_pct": "0",
        }
    ],
    "expected_close_date": "2027-01-15",
    "close_date_pushes": 0,
    "source_lead_id": None,
    "source": None,
    "quotes": [],
    "follow_ups": [],
    "activities": 2,
    "lost_reason": None,
    "delivery_risk": None,
    "contact_erased": False,
    "version": 4,
}


class DealView(BaseModel):
    """A deal now (or as of a version). Personal data (the contact) only with ``include_contact``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [_DEAL]},
    )

    deal_id: str | None = Field(json_schema_extra={"format": "uuid"})
    status: str = Field(description="open, won or lost")
    pipeline_id: str
    stage: StageSnapshot | None
    entered_stage_at: str | None = Field(json_schema_extra={"format": "date-time"})
    opened_at: str | None = Field(json_schema_extra={"format": "date-time"})
    closed_at: str | None = Field(json_schema_extra={"format": "date-time"})
    title: str
    customer: str
    organisation_id: str | None = Field(description="the directory's organisation the deal is linked to")
    person_ids: list[str]
    owner_id: str
    team_id: str | None
    value: Money
    probability: str = Field(description="0 to 1, a decimal as a string")
    probability_overridden: bool
    weighted_value: Money
    lines: list[ProductLine]
    expected_close_date: str | None = Field(json_schema_extra={"format": "date"})
    close_date_pushes: int
    source_lead_id: str | None
    source: str | None
    quotes: list[QuoteView]
    follow_ups: list[FollowUpView]
    activities: int = Field(description="activities logged")
    lost_reason: str | None
    delivery_risk: str | None
    contact_erased: bool
    version: int = Field(description="the deal's version (its ETag)")
    contact: dict[str, Any] | None = Field(None, description="only with include_contact, for those who may see it")


class PipelineView(BaseModel):
    """A pipeline's stages now (or as of a version)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "pipeline_id": "default",
                    "name": "Sales",
                    "version": 3,
                    "stages": [
                        {
                            "stage_id": "qualified",
                            "name": "Qualified",
                            "order": 1,
                            "probability": "0.2",
                            "stuck_after_days": 14,
                            "kind": "open",
                        },
                        {
                            "stage_id": "proposal",
                            "name": "Proposal",
                            "order": 2,
                            "probability": "0.5",
                            "stuck_after_days": None,
                            "kind": "open",
                        },
                        {
                            "stage_id": "won",
                            "name": "Won",
                            "order": 9,
                            "probability": "1",
                            "stuck_after_days": None,
                            "kind": "won",
                        },
                    ],
                }
            ]
        },
    )

    pipeline_id: str
    name: str
    version: int
    stages: list[StageDefinition]


class AsOf(BaseModel):
    at: str | None = Field(json_schema_extra={"format": "date-time"})
    basis: str = Field(description="recorded or occurred")
    version: int | None


class DealStateView(DealView):
    """A deal as of a time or a version (``GET /deals/{deal_id}/state``): the deal's answer and what was asked."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [_DEAL | {"as_of": {"at": "2026-11-25T00:00:00+00:00", "basis": "recorded", "version": None}}]
        },
    )
    as_of: AsOf


class FieldChange(BaseModel):
    model_config = ConfigDict(extra="allow")
    from_: JsonValue = Field(alias="from")
    to: JsonValue


class DealDiff(BaseModel):
    """What changed in a deal between two versions or times: each field of its answer that differs, and the
    events in between (their names)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "from_version": 1,
                    "to_version": 3,
                    "changes": {
                        "stage": {
                            "from": {
                                "stage_id": "target_identified",
                                "name": "Target identified",
                                "order": 10,
                                "probability": "0.10",
                                "kind": "open",
                            },
                            "to": {
                                "stage_id": "quote_sent",
                                "name": "Quote sent",
                                "order": 40,
                                "probability": "0.60",
                                "kind": "open",
                            },
                        },
                        "probability": {"from": "0.10", "to": "0.60"},
                    },
                    "events": ["DealStageChanged", "ActivityLogged"],
                }
            ]
        },
    )
    from_version: int
    to_version: int
    changes: dict[str, FieldChange] = Field(description="per field of the deal's answer: its two values")
    events: list[str] = Field(description="the events between the two, by name, oldest first")


class NextStep(BaseModel):
    model_config = ConfigDict(extra="allow")
    activity_id: str = Field(json_schema_extra={"format": "uuid"})
    kind: str
    title: str
    due_at: str = Field(json_schema_extra={"format": "date-time"})


_DEAL_ROW: dict[str, JsonValue] = {
    "deal_id": "ce637360-410d-fc16-3a0b-fb6739ddff6c",
    "title": "Đơn ce6373",
    "customer": "Khách ce63",
    "organisation_id": None,
    "owner_id": "u-giang",
    "team_id": "south",
    "pipeline_id": "default",
    "stage_id": "target_identified",
    "stage_name": "Target identified",
    "stage_order": 10,
    "status": "open",
    "value": "63000000",
    "currency": "VND",
    "probability": "0.10",
    "weighted_value": "6300000",
    "expected_close_date": "2026-09-27",
    "close_date_pushes": 1,
    "opened_at": "2026-07-12T08:19:58.675790+00:00",
    "entered_stage_at": "2026-07-12T08:19:58.675790+00:00",
    "closed_at": None,
    "lost_reason": None,
    "last_activity_at": "2026-09-19T20:47:39.122689+00:00",
    "activities": 6,
    "delivery_risk": None,
    "source": "facebook",
    "version": 9,
    "days_in_stage": 108,
    "stuck_after_days": 14,
    "stuck": True,
    "close_date_past": True,
    "overdue_activities": 0,
    "no_next_step": False,
    "overdue": False,
    "next_step": {
        "activity_id": "379b6500-7e9b-496a-8807-8960cc49f104",
        "kind": "phone",
        "title": "Gọi chốt giá",
        "due_at": "2026-12-09T02:45:42+00:00",
    },
}


class DealRow(BaseModel):
    """A deal as the board and the deals list show it: its days in stage, next step and flags at query time."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_DEAL_ROW]})
    deal_id: str = Field(json_schema_extra={"format": "uuid"})
    title: str
    customer: str
    organisation_id: str | None = Field(json_schema_extra={"format": "uuid"})
    owner_id: str
    team_id: str | None
    pipeline_id: str
    stage_id: str
    stage_name: str
    stage_order: int
    status: str = Field(description="open, won or lost")
    value: str = Field(description="a decimal as a string, in `currency`")
    currency: str
    probability: str = Field(description="won 1, lost 0, open its override or its stage's: a decimal as a string")
    weighted_value: str = Field(description="value × probability, rounded to the currency's minor unit")
    expected_close_date: str | None = Field(json_schema_extra={"format": "date"})
    close_date_pushes: int
    opened_at: str = Field(json_schema_extra={"format": "date-time"})
    entered_stage_at: str = Field(json_schema_extra={"format": "date-time"})
    closed_at: str | None = Field(json_schema_extra={"format": "date-time"})
    lost_reason: str | None
    last_activity_at: str | None = Field(json_schema_extra={"format": "date-time"})
    activities: int
    delivery_risk: str | None
    source: str | None
    version: int
    days_in_stage: int
    stuck_after_days: int | None = Field(description="the stage's threshold (none: never stuck)")
    stuck: bool | None = Field(description="open and longer in its stage than the threshold")
    close_date_past: bool | None = Field(description="open and its expected close date past (null: no date)")
    overdue_activities: int
    no_next_step: bool = Field(description="open with no open activity")
    overdue: bool = Field(description="open with an activity past due")
    next_step: NextStep | None = Field(description="the first open activity due")


DealPage = Page[DealRow]


class BoardStage(BaseModel):
    model_config = ConfigDict(extra="allow")
    stage_id: str
    name: str
    order: int
    probability: str = Field(description="a decimal as a string")
    stuck_after_days: int | None
    count: int
    stuck_count: int
    no_next_step_count: int
    overdue_count: int
    value: dict[str, str] = Field(description="per currency, a decimal as a string")
    weighted_value: dict[str, str] = Field(description="per currency, a decimal as a string")
    deals: list[DealRow] = Field(description="with `cards`: its first deals only (the counts and values: all)")


class BoardView(BaseModel):
    """The sales board: per open stage its deals, counts and values (per currency), and the board's totals."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "pipeline_id": "default",
                    "as_of": "2026-10-29T01:00:00+00:00",
                    "stages": [
                        {
                            "stage_id": "target_identified",
                            "name": "Target identified",
                            "order": 10,
                            "probability": "0.10",
                            "stuck_after_days": 14,
                            "count": 34,
                            "stuck_count": 30,
                            "no_next_step_count": 34,
                            "overdue_count": 0,
                            "value": {"VND": "1182600000"},
                            "weighted_value": {"VND": "151968000"},
                            "deals": [_DEAL_ROW],
                        }
                    ],
                    "value": {"VND": "8322000000"},
                    "weighted_value": {"VND": "4008990000"},
                }
            ]
        },
    )
    pipeline_id: str
    as_of: str = Field(json_schema_extra={"format": "date-time"})
    stages: list[BoardStage]
    value: dict[str, str] = Field(description="per currency, a decimal as a string")
    weighted_value: dict[str, str] = Field(description="per currency, a decimal as a string")


class FollowUpRow(BaseModel):
    """An after-sales follow-up due, with its deal's title, customer and owner."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "follow_up_id": "8977a329-aa13-55b2-a321-8c2858e5f39b",
                    "deal_id": "9e911734-95a4-5498-b5d4-2d29edc25da2",
                    "title": "Tủ đông",
                    "customer": "Nhà hàng Sen Vàng",
                    "owner_id": "u-lan",
                    "kind": "satisfaction_check",
                    "order_id": "5bb401e6-8d25-48f7-86f1-0a5972b1eb22",
                    "due_on": "2026-11-29",
                    "contacts": 0,
                    "csat": None,
                    "nps": None,
                }
            ]
        },
    )
    follow_up_id: str = Field(json_schema_extra={"format": "uuid"})
    deal_id: str = Field(json_schema_extra={"format": "uuid"})
    title: str
    customer: str
    owner_id: str
    kind: str
    order_id: str | None = Field(json_schema_extra={"format": "uuid"})
    due_on: str = Field(json_schema_extra={"format": "date"})
    contacts: int
    csat: int | None
    nps: int | None


FollowUpPage = Page[FollowUpRow]
