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


class FunnelRow(BaseModel):
    """One group of the funnel (by source, campaign or month: the one key ``by`` names), its counts, the rates from
    each step to the next and the median minutes to first contact."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "source": "website",
                    "captured": 40,
                    "contacted": 36,
                    "mql": 20,
                    "sql": 10,
                    "opportunities": 6,
                    "customers": 3,
                    "revenue": "450000000",
                    "mql_rate": 0.5,
                    "sql_rate": 0.5,
                    "opportunity_rate": 0.6,
                    "win_rate": 0.5,
                    "lead_to_customer": 0.075,
                    "median_minutes_to_contact": 12.5,
                }
            ]
        },
    )

    source: str | None = Field(None, description="with by=source (the default)")
    campaign: str | None = Field(None, description="with by=campaign: its code, `(none)` for leads without one")
    month: str | None = Field(None, description="with by=month: YYYY-MM in the business time zone")
    captured: int
    contacted: int
    mql: int
    sql: int
    opportunities: int
    customers: int
    revenue: str = Field(description="won value, a whole number as a string")
    mql_rate: float | None
    sql_rate: float | None
    opportunity_rate: float | None
    win_rate: float | None
    lead_to_customer: float | None
    median_minutes_to_contact: float | None


class AmountInVnd(BaseModel):
    amount: str = Field(description="a decimal as a string, in its currency")
    vnd: str | None = Field(description="its value in VND; null: no rate on one of its days")


class ConvertedTotal(BaseModel):
    """A total across currencies: each currency's own and its VND value, the VND total of those converted."""

    model_config = ConfigDict(extra="allow")
    currency: str = Field(description="VND")
    total: str
    by_currency: dict[str, AmountInVnd]
    unconverted: list[str] = Field(description="currencies without a rate on one of their days")


class InVnd(BaseModel):
    model_config = ConfigDict(extra="allow")
    currency: str = Field(description="VND")
    spend: ConvertedTotal
    revenue: ConvertedTotal
    roi_pct: float | None = Field(description="null when spend is 0 or a currency is unconverted")
    roas: float | None


class CampaignPerformance(BaseModel):
    """A campaign's spend, reach, leads and customers in the window, in its own currency (amounts as whole-number
    strings), and the same spend and revenue converted to VND (``in_vnd``)."""

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
                    "currency": "VND",
                    "budget": "50000000",
                    "spend": "1200000",
                    "budget_used": 0.024,
                    "impressions": 12000,
                    "clicks": 300,
                    "ctr": 0.025,
                    "cpc": "4000",
                    "leads": 12,
                    "cpl": "100000",
                    "mql": 5,
                    "customers": 1,
                    "cac": "1200000",
                    "revenue": "30000000",
                    "roi_pct": 2400.0,
                    "roas": 25.0,
                    "in_vnd": {
                        "currency": "VND",
                        "spend": {
                            "currency": "VND",
                            "total": "1200000",
                            "by_currency": {"VND": {"amount": "1200000", "vnd": "1200000"}},
                            "unconverted": [],
                        },
                        "revenue": {
                            "currency": "VND",
                            "total": "30000000",
                            "by_currency": {"VND": {"amount": "30000000", "vnd": "30000000"}},
                            "unconverted": [],
                        },
                        "roi_pct": 2400.0,
                        "roas": 25.0,
                    },
                }
            ]
        },
    )

    campaign_id: str = Field(json_schema_extra={"format": "uuid"})
    name: str
    channel: str
    code: str | None
    status: str
    currency: str
    budget: str
    spend: str
    budget_used: float | None
    impressions: int
    clicks: int
    ctr: float | None
    cpc: str | None
    leads: int
    cpl: str | None
    mql: int
    customers: int
    cac: str | None
    revenue: str
    roi_pct: float | None
    roas: float | None
    in_vnd: InVnd


class NurtureStep(BaseModel):
    """One step of a nurture sequence: emails sent, opened, clicked, and the leads it reached that converted."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "sequence_id": "welcome",
                    "step": 1,
                    "sent": 20,
                    "opened": 12,
                    "clicked": 4,
                    "converted": 2,
                    "open_rate": 0.6,
                    "click_rate": 0.2,
                }
            ]
        },
    )

    sequence_id: str
    step: int
    sent: int
    opened: int
    clicked: int
    converted: int
    open_rate: float | None
    click_rate: float | None


class SegmentRow(BaseModel):
    """Leads of a segment and how far they got."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"segment": "smb", "leads": 30, "mql": 12, "converted": 5, "customers": 2}]},
    )

    segment: str
    leads: int
    mql: int
    converted: int
    customers: int
