"""The leads service's event contract: the marketing pipeline's events, as subscribers receive them.

Streams: ``lead-<uuid>`` and ``campaign-<uuid>``. A lead is the data subject of its own personal data: the
contact, free text and the raw payload are sealed under the lead's key (``subject_field = "lead_id"``), and
the deals and production services keep what they copy under the same key, so one erasure reaches them all.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from shared.core.events import DomainEvent
from shared.core.money import Money

Text = Annotated[str, Field(min_length=1, max_length=2000)]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(StrEnum):
    WEBSITE_FORM = "website_form"
    LANDING_PAGE = "landing_page"  # Ladipage
    FACEBOOK_LEAD_ADS = "facebook_lead_ads"
    GOOGLE_ADS_LEAD_FORM = "google_ads_lead_form"
    ZALO = "zalo"
    REFERRAL = "referral"
    IMPORT = "import"
    MANUAL = "manual"


class LeadContact(_Value):
    name: str | None = None
    email: EmailStr | None = None
    phone: str | None = None  # E.164 (+84…) once normalised
    company: str | None = None
    title: str | None = None


class Attribution(_Value):
    """Where the lead came from, as known when it was captured (or converted)."""

    source: str
    channel: str | None = None
    campaign_id: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    landing_page_url: str | None = None
    ad_id: str | None = None
    form_id: str | None = None


class Consent(_Value):
    marketing: bool
    given_at: AwareDatetime | None = None
    text_version: str | None = None


class LeadEvent(DomainEvent):
    lead_id: uuid.UUID
    subject_field: ClassVar[str | None] = "lead_id"
    erased_by: ClassVar[str | None] = "pipelines.leads.LeadPersonalDataErased"


class LeadCaptured(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadCaptured"
    personal_fields: ClassVar[tuple[str, ...]] = ("contact", "answers", "raw_payload")

    source: str
    external_id: str | None  # the source's own id (Facebook leadgen id, Google lead id, form submission id)
    attribution: Attribution
    contact: LeadContact | None
    answers: dict[str, str] | None = None  # the form's other questions, as asked
    raw_payload: dict[str, Any] | None = None  # what the source sent, kept so a mapping can be re-run
    consent: Consent | None = None
    captured_at: AwareDatetime


class LeadDuplicateDetected(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadDuplicateDetected"
    duplicate_of: uuid.UUID
    match_keys: tuple[str, ...]  # "email", "phone"


class LeadMerged(LeadEvent):
    """This lead absorbed another (the other one says LeadMergedInto)."""

    event_type: ClassVar[str] = "pipelines.leads.LeadMerged"
    other_lead_id: uuid.UUID


class LeadMergedInto(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadMergedInto"
    survivor_id: uuid.UUID


class LeadContactDetailsUpdated(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadContactDetailsUpdated"
    personal_fields: ClassVar[tuple[str, ...]] = ("contact",)
    contact: LeadContact | None
    reason: str


class LeadAssigned(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadAssigned"
    owner_id: str
    team_id: str | None = None
    rule: str = "manual"


class EngagementKind(StrEnum):
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    PAGE_VISIT = "page_visit"
    FORM_SUBMIT = "form_submit"
    CHAT = "chat"
    CALL = "call"
    AD_CLICK = "ad_click"


class LeadEngagementRecorded(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadEngagementRecorded"
    kind: EngagementKind
    channel: str | None = None
    campaign_id: str | None = None
    asset_id: str | None = None  # the email, page or ad engaged with
    at: AwareDatetime


class LeadSegmented(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadSegmented"
    segments: tuple[str, ...]
    criteria_version: str | None = None


class LeadScored(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadScored"
    fit: int
    engagement: Decimal
    total: Decimal
    model_version: str
    top_reasons: tuple[str, ...] = ()
    at: AwareDatetime


class LeadContacted(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadContacted"
    channel: str
    by: str
    at: AwareDatetime


class LeadNurtureStarted(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadNurtureStarted"
    sequence_id: str


class LeadNurtureStopped(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadNurtureStopped"
    sequence_id: str
    reason: str


class NurtureEmailSent(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.NurtureEmailSent"
    sequence_id: str
    step: int
    message_id: str  # opens and clicks arrive as engagements naming it as asset_id


class OfferExtended(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.OfferExtended"
    offer_id: str
    expires_on: date | None = None


class TrialStarted(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.TrialStarted"
    product: str
    ends_on: date


class LeadQualified(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadQualified"
    level: Annotated[str, Field(pattern=r"^(mql|sql)$")]
    by: str
    score: Decimal | None = None
    at: AwareDatetime


class LeadDisqualified(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadDisqualified"
    reason: Annotated[str, Field(pattern=r"^(no_budget|wrong_fit|spam|duplicate|unreachable|other)$")]
    note: str | None = None
    at: AwareDatetime


class LeadConverted(LeadEvent):
    """A qualified lead became a sales opportunity; the deals service opens deal uuid5(lead)."""

    event_type: ClassVar[str] = "pipelines.leads.LeadConverted"
    personal_fields: ClassVar[tuple[str, ...]] = ("contact",)

    customer: str  # the organisation or household buying (not a person's contact details)
    contact: LeadContact | None
    owner_id: str
    team_id: str | None = None
    title: str
    estimated_value: Money | None = None
    expected_close_date: date | None = None
    product_interest: str | None = None
    attribution: Attribution


class LeadRecycled(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadRecycled"
    reason: Text


class LeadBecameCustomer(LeadEvent):
    """The deal this lead became was won (recorded back from the deals service)."""

    event_type: ClassVar[str] = "pipelines.leads.LeadBecameCustomer"
    deal_id: uuid.UUID
    value: Money
    won_at: AwareDatetime


class LeadOpportunityLost(LeadEvent):
    event_type: ClassVar[str] = "pipelines.leads.LeadOpportunityLost"
    deal_id: uuid.UUID
    reason: str
    lost_at: AwareDatetime


class LeadPersonalDataErased(LeadEvent):
    """The lead's key was destroyed: every sealed field of this person reads as null from now on."""

    event_type: ClassVar[str] = "pipelines.leads.LeadPersonalDataErased"
    erasure: ClassVar[bool] = True
    requested_by: str
    reason: str


# ---------------------------------------------------------------------------------------------- campaigns
class CampaignEvent(DomainEvent):
    campaign_id: uuid.UUID


class CampaignCreated(CampaignEvent):
    event_type: ClassVar[str] = "pipelines.leads.CampaignCreated"
    name: Annotated[str, Field(min_length=1, max_length=200)]
    channel: str
    code: str | None = None  # the utm_campaign (or ad platform campaign id) that attributes leads to it
    budget: Money
    starts_on: date | None = None
    ends_on: date | None = None


class CampaignStatusChanged(CampaignEvent):
    event_type: ClassVar[str] = "pipelines.leads.CampaignStatusChanged"
    status: Annotated[str, Field(pattern=r"^(active|paused|ended)$")]
    reason: str | None = None


class CampaignBudgetChanged(CampaignEvent):
    event_type: ClassVar[str] = "pipelines.leads.CampaignBudgetChanged"
    old: Money
    new: Money


class CampaignSpendRecorded(CampaignEvent):
    event_type: ClassVar[str] = "pipelines.leads.CampaignSpendRecorded"
    day: date
    amount: Money
    impressions: int = Field(0, ge=0)
    clicks: int = Field(0, ge=0)
    source: str = "manual"


class CampaignSpendCorrected(CampaignEvent):
    event_type: ClassVar[str] = "pipelines.leads.CampaignSpendCorrected"
    day: date
    old: Money
    new: Money
    impressions: int = Field(0, ge=0)
    clicks: int = Field(0, ge=0)
    reason: Text
