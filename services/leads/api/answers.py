"""What the leads API's read routes answer, as models: the OpenAPI documents say it, with an example, and a fuzz
run checks each answer against it (decision 0029). Value types are the event contract's (they read any stored
value); ``extra="allow"``: a field added to a view is answered before its model names it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.leads.events import Attribution
from shared.core.money import Money
from shared.edge.queries import Page


class LeadView(BaseModel):
    """A lead now. Its contact only for those who may see it (its owner, managers, marketing)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "lead_id": "1c9e7b2a-4d3f-4a8b-9c1d-2e3f4a5b6c7d",
                    "status": "mql",
                    "source": "website",
                    "attribution": {"source": "website", "channel": "organic", "utm_campaign": "tet-2027"},
                    "captured_at": "2026-11-24T02:30:00+00:00",
                    "owner_id": "u-lan",
                    "team_id": "north",
                    "segments": ["smb"],
                    "nurture": None,
                    "first_contacted_at": None,
                    "score": "42",
                    "engagements": 3,
                    "outcome": None,
                    "erased": False,
                    "duplicate_of": None,
                    "merged_into": None,
                    "version": 5,
                    "contact": {"name": "Trần Thị Bích", "phone": "0912345678", "company": "Cà phê Phố"},
                }
            ]
        },
    )

    lead_id: str | None = Field(json_schema_extra={"format": "uuid"})
    status: str
    source: str | None
    attribution: Attribution | None
    captured_at: str | None = Field(json_schema_extra={"format": "date-time"})
    owner_id: str | None
    team_id: str | None
    segments: list[str]
    nurture: str | None = Field(description="the nurture sequence it is in")
    first_contacted_at: str | None = Field(json_schema_extra={"format": "date-time"})
    score: str | None = Field(description="a decimal as a string")
    engagements: int = Field(description="engagements recorded")
    outcome: str | None = Field(description="won or lost, once a deal it became is closed")
    erased: bool
    duplicate_of: str | None
    merged_into: str | None
    version: int = Field(description="the lead's version (its ETag)")
    contact: dict[str, Any] | None = Field(None, description="only for those who may see it")


class CampaignView(BaseModel):
    """A campaign: its budget and its spend by day."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "campaign_id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
                    "name": "Tết 2027",
                    "channel": "facebook",
                    "code": "tet-2027",
                    "status": "active",
                    "budget": {"amount": "50000000", "currency": "VND"},
                    "spend": {"2026-12-01": {"amount": "1200000", "currency": "VND"}},
                }
            ]
        },
    )

    campaign_id: str = Field(json_schema_extra={"format": "uuid"})
    name: str
    channel: str
    code: str | None
    status: str = Field(description="draft, active, paused or ended")
    budget: Money | None
    spend: dict[str, Money] = Field(description="by day (YYYY-MM-DD)")


class InboxRow(BaseModel):
    """A lead in the inbox: where it came from, how fast it was answered, its score; its contact only for those who
    may see it (null for the others)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "lead_id": "1c9e7b2a-4d3f-4a8b-9c1d-2e3f4a5b6c7d",
                    "source": "facebook",
                    "channel": "paid_social",
                    "campaign_code": "tet-2027",
                    "captured_at": "2026-11-24T02:30:00+00:00",
                    "status": "contacted",
                    "owner_id": "u-lan",
                    "team_id": "north",
                    "first_contacted_at": "2026-11-24T02:41:00+00:00",
                    "response_minutes": 11,
                    "fit": 60,
                    "score": "42",
                    "scored_at": "2026-11-24T02:31:00+00:00",
                    "segments": ["smb"],
                    "nurture": None,
                    "duplicate_of": None,
                    "merged_into": None,
                    "erased": False,
                    "contact": {"name": "Trần Thị Bích", "phone": "0912345678"},
                }
            ]
        },
    )

    lead_id: str = Field(json_schema_extra={"format": "uuid"})
    source: str | None
    channel: str | None
    campaign_code: str | None
    captured_at: str | None = Field(json_schema_extra={"format": "date-time"})
    status: str
    owner_id: str | None
    team_id: str | None
    first_contacted_at: str | None = Field(json_schema_extra={"format": "date-time"})
    response_minutes: int | None = Field(description="minutes from capture to first contact")
    fit: int | None
    score: str | None = Field(description="a decimal as a string")
    scored_at: str | None = Field(json_schema_extra={"format": "date-time"})
    segments: list[str]
    nurture: str | None
    duplicate_of: str | None
    merged_into: str | None
    erased: bool
    contact: dict[str, Any] | None


InboxPage = Page[InboxRow]
