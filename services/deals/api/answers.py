"""What the deals API's read routes answer, as models: the OpenAPI documents say it, with an example, and a fuzz
run checks each answer against it (decision 0029). Value types are the event contract's (they read any stored
value); ``extra="allow"``: a field added to a view is answered before its model names it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.deals.events import ProductLine, StageDefinition, StageSnapshot
from shared.core.money import Money


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


class DealView(BaseModel):
    """A deal now (or as of a version). Personal data (the contact) only with ``include_contact``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
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
                            "unit_price": {"amount": "15000000", "currency": "VND"},
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
            ]
        },
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
                        {"stage_id": "qualified", "name": "Qualified", "order": 1, "probability": "0.2"},
                        {"stage_id": "proposal", "name": "Proposal", "order": 2, "probability": "0.5"},
                        {"stage_id": "won", "name": "Won", "order": 9, "probability": "1", "kind": "won"},
                    ],
                }
            ]
        },
    )

    pipeline_id: str
    name: str
    version: int
    stages: list[StageDefinition]
