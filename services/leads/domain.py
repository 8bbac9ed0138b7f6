"""The marketing pipeline's rules, pure: no I/O, no clock, no id generation. ``now`` and ids come in.

- ``Lead``: captured → contacted → nurturing → MQL → SQL → converted; disqualified, recycled, merged.
- ``RULES``: which commands each lead status allows, tested pair by pair.
- Scoring: fit (who the lead is) + engagement (what they did), engagement decaying with a half-life; the rules
  are data (``ScoringRules``) with a version recorded on every score.
- ``Campaign``: created, launched/paused/ended, budget, spend per day (idempotent per day; corrections explicit).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from services.leads.events import (
    Attribution,
    CampaignBudgetChanged,
    CampaignCreated,
    CampaignEvent,
    CampaignSpendCorrected,
    CampaignSpendRecorded,
    CampaignStatusChanged,
    Consent,
    EngagementKind,
    LeadAssigned,
    LeadBecameCustomer,
    LeadCaptured,
    LeadContact,
    LeadContactDetailsUpdated,
    LeadContacted,
    LeadConverted,
    LeadDisqualified,
    LeadDuplicateDetected,
    LeadEngagementRecorded,
    LeadEvent,
    LeadMerged,
    LeadMergedInto,
    LeadNurtureStarted,
    LeadNurtureStopped,
    LeadOpportunityLost,
    LeadPersonalDataErased,
    LeadQualified,
    LeadRecycled,
    LeadScored,
    LeadSegmented,
    NurtureEmailSent,
    OfferExtended,
    TrialStarted,
)
from shared.core.decider import AbsentError, Decider, RuleError, replace
from shared.core.events import DomainEvent
from shared.core.limits import (
    MAX_ANSWER_CHARS,
    MAX_ANSWERS,
    MAX_ANSWERS_BYTES,
    MAX_COUNT,
    MAX_ITEMS,
    MAX_NAME_CHARS,
    MAX_TEXT_CHARS,
    AwareMoment,
    Code,
    Count,
    Email,
    ExternalId,
    Identifier,
    JsonObject,
    Label,
    MoneyField,
    Phone,
    Url,
    ValidatedAs,
    json_bytes_at_most,
)
from shared.core.money import Money


class LeadRuleError(RuleError):
    """A marketing rule refused the command."""


class NotFoundError(LeadRuleError, AbsentError):
    """No such aggregate, or part of one (HTTP 404)."""


# ---------------------------------------------------------------------------------------------- state
class Status(StrEnum):
    NONE = "none"
    NEW = "new"
    CONTACTED = "contacted"
    NURTURING = "nurturing"
    MQL = "mql"
    SQL = "sql"
    CONVERTED = "converted"
    DISQUALIFIED = "disqualified"
    MERGED = "merged"


ACTIVE = frozenset({Status.NEW, Status.CONTACTED, Status.NURTURING, Status.MQL, Status.SQL})


@dataclass(frozen=True)
class Engagement:
    kind: str
    at: datetime


@dataclass(frozen=True)
class Lead:
    lead_id: uuid.UUID | None = None
    status: Status = Status.NONE
    source: str = ""
    attribution: Attribution | None = None
    captured_at: datetime | None = None
    has_company: bool = False
    title: str | None = None
    email_domain: str | None = None
    owner_id: str | None = None
    team_id: str | None = None
    segments: tuple[str, ...] = ()
    engagements: tuple[Engagement, ...] = ()
    nurture: str | None = None
    first_contacted_at: datetime | None = None
    score: Decimal | None = None
    converted: bool = False
    outcome: str | None = None  # won / lost, from the deals service
    erased: bool = False
    duplicate_of: uuid.UUID | None = None
    merged_into: uuid.UUID | None = None


FREE_MAIL = frozenset({"gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "yahoo.com.vn"})


def evolve(lead: Lead, event: DomainEvent) -> Lead:
    if not isinstance(event, LeadEvent):
        return lead
    match event:
        case LeadCaptured():
            c = event.contact
            domain = c.email.rpartition("@")[2].lower() if c and c.email else None
            return Lead(
                lead_id=event.lead_id,
                status=Status.NEW,
                source=event.source,
                attribution=event.attribution,
                captured_at=event.captured_at,
                has_company=bool(c and c.company),
                title=c.title if c else None,
                email_domain=domain,
            )
        case LeadDuplicateDetected():
            return replace(lead, duplicate_of=event.duplicate_of)
        case LeadMergedInto():
            return replace(lead, status=Status.MERGED, merged_into=event.survivor_id)
        case LeadContactDetailsUpdated():
            c = event.contact
            domain = c.email.rpartition("@")[2].lower() if c and c.email else lead.email_domain
            return replace(
                lead,
                has_company=bool(c and c.company) or lead.has_company,
                title=(c.title if c else None) or lead.title,
                email_domain=domain,
            )
        case LeadAssigned():
            return replace(lead, owner_id=event.owner_id, team_id=event.team_id)
        case LeadEngagementRecorded():
            return replace(lead, engagements=(*lead.engagements, Engagement(event.kind.value, event.at)))
        case LeadSegmented():
            return replace(lead, segments=event.segments)
        case LeadScored():
            return replace(lead, score=event.total)
        case LeadContacted():
            return replace(
                lead,
                status=Status.CONTACTED if lead.status == Status.NEW else lead.status,
                first_contacted_at=lead.first_contacted_at or event.at,
            )
        case LeadNurtureStarted():
            keep = lead.status in (Status.MQL, Status.SQL)
            return replace(lead, nurture=event.sequence_id, status=lead.status if keep else Status.NURTURING)
        case LeadNurtureStopped():
            return replace(lead, nurture=None)
        case LeadQualified():
            return replace(lead, status=Status.MQL if event.level == "mql" else Status.SQL)
        case LeadDisqualified():
            return replace(lead, status=Status.DISQUALIFIED, nurture=None)
        case LeadConverted():
            return replace(lead, status=Status.CONVERTED, converted=True, nurture=None)
        case LeadRecycled():
            return replace(lead, status=Status.NURTURING, outcome=None)
        case LeadBecameCustomer():
            return replace(lead, outcome="won")
        case LeadOpportunityLost():
            return replace(lead, outcome="lost")
        case LeadPersonalDataErased():
            return replace(lead, erased=True, title=None, email_domain=None)
        case _:
            return lead


lead_decider = Decider(initial=Lead(), evolve=evolve, snapshot_every=50)


# ---------------------------------------------------------------------------------------------- scoring
class ScoringRules(BaseModel):
    """Fit points for who the lead is, engagement points for what they did (halved every ``half_life_days``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str = "2026-11"
    has_company: int = 10
    business_email: int = 10
    senior_title: int = 15
    senior_title_words: tuple[str, ...] = ("giám đốc", "director", "manager", "trưởng phòng", "ceo", "owner", "chủ")
    source_points: Mapping[str, int] = Field(
        default_factory=lambda: {
            "referral": 15,
            "website_form": 10,
            "landing_page": 8,
            "google_ads_lead_form": 8,
            "facebook_lead_ads": 5,
        }
    )
    engagement_points: Mapping[str, int] = Field(
        default_factory=lambda: {
            "email_open": 2,
            "email_click": 5,
            "page_visit": 3,
            "form_submit": 10,
            "chat": 8,
            "call": 10,
            "ad_click": 3,
        }
    )
    half_life_days: Decimal = Decimal(14)
    mql_threshold: Decimal = Decimal(40)


DEFAULT_RULES = ScoringRules()


def score(lead: Lead, now: datetime, rules: ScoringRules = DEFAULT_RULES) -> tuple[int, Decimal, list[str]]:
    """(fit, engagement decayed to ``now``, reasons)."""
    fit, reasons = 0, []
    if lead.has_company:
        fit += rules.has_company
        reasons.append("company given")
    if lead.email_domain and lead.email_domain not in FREE_MAIL:
        fit += rules.business_email
        reasons.append("business email")
    if lead.title and any(w in lead.title.lower() for w in rules.senior_title_words):
        fit += rules.senior_title
        reasons.append("senior title")
    if lead.source in rules.source_points:
        fit += rules.source_points[lead.source]
        reasons.append(f"source {lead.source}")
    engagement = Decimal(0)
    for e in lead.engagements:
        age_days = Decimal(max((now - e.at).total_seconds(), 0)) / Decimal(86400)
        points = Decimal(rules.engagement_points.get(e.kind, 0))
        engagement += points * Decimal("0.5") ** (age_days / rules.half_life_days)
    engagement = engagement.quantize(Decimal("0.01"))
    if engagement:
        reasons.append(f"{len(lead.engagements)} engagements")
    return fit, engagement, reasons


# ---------------------------------------------------------------------------------------------- request forms
# The event contract's values as a request (or a source's webhook) gives them: the same fields, each bounded
# (shared.core.limits). A command field holds the plain value (``ValidatedAs``): events never see these classes.
class LeadContactInput(LeadContact):
    name: Label | None = None
    email: Email | None = None
    phone: Phone | None = None
    company: Label | None = None
    title: Label | None = None


class AttributionInput(Attribution):
    source: Code
    channel: Code | None = None
    campaign_id: ExternalId | None = None
    utm_source: Label | None = None
    utm_medium: Label | None = None
    utm_campaign: Label | None = None
    utm_term: Label | None = None
    utm_content: Label | None = None
    landing_page_url: Url | None = None
    ad_id: ExternalId | None = None
    form_id: ExternalId | None = None


class ConsentInput(Consent):
    text_version: Code | None = None


LeadContactField = Annotated[LeadContact, ValidatedAs(LeadContactInput)]
AttributionField = Annotated[Attribution, ValidatedAs(AttributionInput)]
ConsentField = Annotated[Consent, ValidatedAs(ConsentInput)]
# A form's answers, question → answer as asked: a long answer is no reason to lose a lead, up to a limit.
Answers = Annotated[
    dict[Annotated[str, Field(max_length=MAX_NAME_CHARS)], Annotated[str, Field(max_length=MAX_ANSWER_CHARS)]],
    Field(
        max_length=MAX_ANSWERS,
        description=f"question → answer; at most {MAX_ANSWERS_BYTES} bytes together (compact UTF-8 JSON)",
    ),
    AfterValidator(json_bytes_at_most(MAX_ANSWERS_BYTES)),
]


# ---------------------------------------------------------------------------------------------- commands
class Command(BaseModel):
    """A command on a lead. Its strings are at most MAX_TEXT_CHARS unless a field says otherwise (shared.core.limits)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    name: ClassVar[str]


class CaptureLead(Command):
    """A lead as typed in, imported or mapped from a source's payload (kept whole in ``raw_payload``, bounded)."""

    name: ClassVar[str] = "capture"
    source: Code
    external_id: ExternalId | None = None
    contact: LeadContactField | None = None
    answers: Answers | None = None
    attribution: AttributionField | None = None
    consent: ConsentField | None = None
    raw_payload: JsonObject | None = None
    captured_at: AwareMoment | None = None  # when the source says it happened; default: now


class RecordDuplicate(Command):
    name: ClassVar[str] = "record_duplicate"
    duplicate_of: uuid.UUID
    match_keys: tuple[str, ...] = Field(max_length=20)


class MergeInto(Command):
    """On the lead that disappears: it is merged into the survivor."""

    name: ClassVar[str] = "merge_into"
    survivor_id: uuid.UUID


class Absorb(Command):
    name: ClassVar[str] = "absorb"
    other_lead_id: uuid.UUID


class UpdateContact(Command):
    name: ClassVar[str] = "update_contact"
    contact: LeadContactField
    reason: str


class Assign(Command):
    name: ClassVar[str] = "assign"
    owner_id: Annotated[Identifier, Field(min_length=1)]
    team_id: Identifier | None = None
    rule: Code = "manual"


class RecordEngagement(Command):
    name: ClassVar[str] = "record_engagement"
    kind: EngagementKind
    channel: Code | None = None
    campaign_id: ExternalId | None = None
    asset_id: ExternalId | None = None
    at: AwareMoment | None = None


class Segment(Command):
    name: ClassVar[str] = "segment"
    segments: tuple[Annotated[str, Field(min_length=1, max_length=60)], ...] = Field(max_length=MAX_ITEMS)
    criteria_version: Code | None = None


class Score(Command):
    name: ClassVar[str] = "score"


class RecordContact(Command):
    name: ClassVar[str] = "contact"
    channel: Annotated[str, Field(pattern=r"^(phone|email|in_person|chat|zalo|sms)$")]


class StartNurture(Command):
    name: ClassVar[str] = "start_nurture"
    sequence_id: Annotated[str, Field(min_length=1, max_length=60)]


class StopNurture(Command):
    name: ClassVar[str] = "stop_nurture"
    reason: str = "manual"


class RecordNurtureEmail(Command):
    name: ClassVar[str] = "record_nurture_email"
    step: int = Field(ge=1, le=MAX_COUNT)
    message_id: Annotated[str, Field(min_length=1, max_length=200)]


class ExtendOffer(Command):
    name: ClassVar[str] = "extend_offer"
    offer_id: Annotated[str, Field(min_length=1, max_length=60)]
    expires_on: date | None = None


class StartTrial(Command):
    name: ClassVar[str] = "start_trial"
    product: Annotated[str, Field(min_length=1, max_length=200)]
    ends_on: date


class Qualify(Command):
    name: ClassVar[str] = "qualify"
    level: Annotated[str, Field(pattern=r"^(mql|sql)$")]


class Disqualify(Command):
    name: ClassVar[str] = "disqualify"
    reason: Annotated[str, Field(pattern=r"^(no_budget|wrong_fit|spam|duplicate|unreachable|other)$")]
    note: str | None = None


class Convert(Command):
    name: ClassVar[str] = "convert"
    customer: Annotated[str, Field(min_length=1, max_length=200)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    owner_id: Identifier | None = None  # default: the lead's owner
    team_id: Identifier | None = None
    estimated_value: MoneyField | None = None
    expected_close_date: date | None = None
    product_interest: Label | None = None


class Recycle(Command):
    name: ClassVar[str] = "recycle"
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class RecordOutcome(Command):
    """From the deals service: the deal this lead became was won or lost."""

    name: ClassVar[str] = "record_outcome"
    deal_id: uuid.UUID
    won: bool
    value: Money | None = None
    reason: str | None = None
    at: AwareDatetime


class Erase(Command):
    name: ClassVar[str] = "erase"
    reason: Annotated[str, Field(min_length=1, max_length=500)]


SALES_CONTACT = ACTIVE
RULES: dict[str, frozenset[Status]] = {
    CaptureLead.name: frozenset({Status.NONE}),
    RecordDuplicate.name: ACTIVE,
    MergeInto.name: ACTIVE,
    Absorb.name: ACTIVE,
    UpdateContact.name: ACTIVE | {Status.CONVERTED, Status.DISQUALIFIED},
    Assign.name: ACTIVE | {Status.CONVERTED},
    RecordEngagement.name: ACTIVE | {Status.CONVERTED, Status.DISQUALIFIED},
    Segment.name: ACTIVE | {Status.CONVERTED, Status.DISQUALIFIED},
    Score.name: ACTIVE,
    RecordContact.name: ACTIVE,
    StartNurture.name: ACTIVE,
    StopNurture.name: ACTIVE,
    RecordNurtureEmail.name: ACTIVE,
    ExtendOffer.name: ACTIVE,
    StartTrial.name: ACTIVE,
    Qualify.name: frozenset({Status.NEW, Status.CONTACTED, Status.NURTURING, Status.MQL}),
    Disqualify.name: ACTIVE,
    Convert.name: frozenset({Status.MQL, Status.SQL}),
    Recycle.name: frozenset({Status.DISQUALIFIED, Status.CONVERTED}),
    RecordOutcome.name: frozenset({Status.CONVERTED}),
    Erase.name: frozenset(set(Status) - {Status.NONE}),
}


def check_allowed(lead: Lead, command: Command) -> None:
    if lead.status in RULES[command.name]:
        if lead.erased and command.name in (UpdateContact.name, Erase.name, Convert.name):
            raise LeadRuleError("lead_erased", "this lead's personal data was erased")
        return
    if lead.status == Status.NONE:
        raise NotFoundError("lead_not_found", "no such lead")
    if command.name == CaptureLead.name:
        raise LeadRuleError("lead_exists", f"lead {lead.lead_id} was captured already")
    if lead.status == Status.MERGED:
        raise LeadRuleError("lead_merged", f"the lead was merged into {lead.merged_into}")
    raise LeadRuleError(f"lead_{lead.status.value}", f"a {lead.status.value} lead does not allow {command.name}")


def decide(
    lead: Lead,
    command: Command,
    now: datetime,
    lead_id: uuid.UUID,
    *,
    actor: str = "system",
    rules: ScoringRules = DEFAULT_RULES,
    contact: LeadContact | None = None,
) -> list[LeadEvent]:
    """The events a command produces on a lead. ``contact``: the lead's opened contact (for a conversion)."""
    check_allowed(lead, command)
    i = lead_id
    match command:
        case CaptureLead():
            attribution = command.attribution or Attribution(source=command.source)
            return [
                LeadCaptured(
                    lead_id=i,
                    source=command.source,
                    external_id=command.external_id,
                    attribution=attribution,
                    contact=command.contact,
                    answers=command.answers,
                    raw_payload=command.raw_payload,
                    consent=command.consent,
                    captured_at=command.captured_at or now,
                )
            ]
        case RecordDuplicate():
            if command.duplicate_of == i:
                raise LeadRuleError("self_duplicate", "a lead is not its own duplicate")
            return [LeadDuplicateDetected(lead_id=i, duplicate_of=command.duplicate_of, match_keys=command.match_keys)]
        case MergeInto():
            if command.survivor_id == i:
                raise LeadRuleError("self_merge", "a lead cannot be merged into itself")
            return [LeadMergedInto(lead_id=i, survivor_id=command.survivor_id)]
        case Absorb():
            if command.other_lead_id == i:
                raise LeadRuleError("self_merge", "a lead cannot absorb itself")
            return [LeadMerged(lead_id=i, other_lead_id=command.other_lead_id)]
        case UpdateContact():
            return [LeadContactDetailsUpdated(lead_id=i, contact=command.contact, reason=command.reason)]
        case Assign():
            if (command.owner_id, command.team_id) == (lead.owner_id, lead.team_id):
                return []
            return [LeadAssigned(lead_id=i, owner_id=command.owner_id, team_id=command.team_id, rule=command.rule)]
        case RecordEngagement():
            return [
                LeadEngagementRecorded(
                    lead_id=i,
                    kind=command.kind,
                    channel=command.channel,
                    campaign_id=command.campaign_id,
                    asset_id=command.asset_id,
                    at=command.at or now,
                )
            ]
        case Segment():
            segments = tuple(sorted(set(command.segments)))
            if segments == lead.segments:
                return []
            return [LeadSegmented(lead_id=i, segments=segments, criteria_version=command.criteria_version)]
        case Score():
            fit, engagement, reasons = score(lead, now, rules)
            return [
                LeadScored(
                    lead_id=i,
                    fit=fit,
                    engagement=engagement,
                    total=fit + engagement,
                    model_version=rules.version,
                    top_reasons=tuple(reasons),
                    at=now,
                )
            ]
        case RecordContact():
            return [LeadContacted(lead_id=i, channel=command.channel, by=actor, at=now)]
        case StartNurture():
            if lead.nurture == command.sequence_id:
                return []
            return [LeadNurtureStarted(lead_id=i, sequence_id=command.sequence_id)]
        case StopNurture():
            if lead.nurture is None:
                raise LeadRuleError("not_nurtured", "the lead is in no nurture sequence")
            return [LeadNurtureStopped(lead_id=i, sequence_id=lead.nurture, reason=command.reason)]
        case RecordNurtureEmail():
            if lead.nurture is None:
                raise LeadRuleError("not_nurtured", "the lead is in no nurture sequence")
            return [
                NurtureEmailSent(lead_id=i, sequence_id=lead.nurture, step=command.step, message_id=command.message_id)
            ]
        case ExtendOffer():
            return [OfferExtended(lead_id=i, offer_id=command.offer_id, expires_on=command.expires_on)]
        case StartTrial():
            if command.ends_on < now.date():
                raise LeadRuleError("trial_in_past", "a trial ends today or later")
            return [TrialStarted(lead_id=i, product=command.product, ends_on=command.ends_on)]
        case Qualify():
            if command.level == "mql" and lead.status == Status.MQL:
                raise LeadRuleError("already_mql", "the lead is already an MQL")
            return [LeadQualified(lead_id=i, level=command.level, by=actor, score=lead.score, at=now)]
        case Disqualify():
            return [LeadDisqualified(lead_id=i, reason=command.reason, note=command.note, at=now)]
        case Convert():
            owner = command.owner_id or lead.owner_id
            if owner is None:
                raise LeadRuleError("owner_required", "assign the lead (or name the deal's owner) before converting")
            assert lead.attribution is not None
            return [
                LeadConverted(
                    lead_id=i,
                    customer=command.customer,
                    contact=None if lead.erased else contact,
                    owner_id=owner,
                    team_id=command.team_id or lead.team_id,
                    title=command.title,
                    estimated_value=command.estimated_value,
                    expected_close_date=command.expected_close_date,
                    product_interest=command.product_interest,
                    attribution=lead.attribution,
                )
            ]
        case Recycle():
            return [LeadRecycled(lead_id=i, reason=command.reason)]
        case RecordOutcome():
            if command.won:
                if command.value is None:
                    raise LeadRuleError("value_required", "a won outcome carries the deal's value")
                if lead.outcome == "won":
                    return []
                return [LeadBecameCustomer(lead_id=i, deal_id=command.deal_id, value=command.value, won_at=command.at)]
            if lead.outcome == "lost":
                return []
            return [
                LeadOpportunityLost(lead_id=i, deal_id=command.deal_id, reason=command.reason or "", lost_at=command.at)
            ]
        case Erase():
            return [LeadPersonalDataErased(lead_id=i, requested_by=actor, reason=command.reason)]
    raise AssertionError(f"no decision for {command!r}")


# ---------------------------------------------------------------------------------------------- campaigns
@dataclass(frozen=True)
class Campaign:
    campaign_id: uuid.UUID | None = None
    status: str = "none"  # none, draft, active, paused, ended
    name: str = ""
    channel: str = ""
    code: str | None = None
    budget: Money | None = None
    spend: Mapping[date, Money] = field(default_factory=dict)


def evolve_campaign(c: Campaign, event: DomainEvent) -> Campaign:
    if not isinstance(event, CampaignEvent):
        return c
    match event:
        case CampaignCreated():
            return Campaign(event.campaign_id, "draft", event.name, event.channel, event.code, event.budget)
        case CampaignStatusChanged():
            return replace(c, status=event.status)
        case CampaignBudgetChanged():
            return replace(c, budget=event.new)
        case CampaignSpendRecorded():
            return replace(c, spend={**c.spend, event.day: event.amount})
        case CampaignSpendCorrected():
            return replace(c, spend={**c.spend, event.day: event.new})
    return c


campaign_decider = Decider(initial=Campaign(), evolve=evolve_campaign)


class CreateCampaign(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    name: Annotated[str, Field(min_length=1, max_length=200)]
    channel: Annotated[str, Field(min_length=1, max_length=60)]
    code: Code | None = None
    budget: MoneyField
    starts_on: date | None = None
    ends_on: date | None = None


class ChangeCampaignStatus(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    status: Annotated[str, Field(pattern=r"^(active|paused|ended)$")]
    reason: str | None = None


class ChangeBudget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    budget: MoneyField


class RecordSpend(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    amount: MoneyField
    impressions: Count = 0
    clicks: Count = 0
    source: Code = "manual"
    correction_reason: str | None = None  # to change a day already recorded


STATUS_MOVES = {"active": {"draft", "paused"}, "paused": {"active"}, "ended": {"draft", "active", "paused"}}


def decide_campaign(
    c: Campaign, command: BaseModel, campaign_id: uuid.UUID, day: date | None = None
) -> list[DomainEvent]:
    match command:
        case CreateCampaign():
            if c.status != "none":
                raise LeadRuleError("campaign_exists", "the campaign exists already")
            if command.ends_on and command.starts_on and command.ends_on < command.starts_on:
                raise LeadRuleError("ends_before_start", "a campaign ends after it starts")
            return [
                CampaignCreated(
                    campaign_id=campaign_id,
                    name=command.name,
                    channel=command.channel,
                    code=command.code,
                    budget=command.budget,
                    starts_on=command.starts_on,
                    ends_on=command.ends_on,
                )
            ]
    if c.status == "none":
        raise NotFoundError("campaign_not_found", "no such campaign")
    match command:
        case ChangeCampaignStatus():
            if c.status == command.status:
                return []
            if c.status not in STATUS_MOVES[command.status]:
                raise LeadRuleError("campaign_status", f"a {c.status} campaign cannot become {command.status}")
            return [CampaignStatusChanged(campaign_id=campaign_id, status=command.status, reason=command.reason)]
        case ChangeBudget():
            assert c.budget is not None
            if command.budget.currency != c.budget.currency:
                raise LeadRuleError("currency_mismatch", f"the campaign's budget is in {c.budget.currency}")
            if command.budget == c.budget:
                return []
            return [CampaignBudgetChanged(campaign_id=campaign_id, old=c.budget, new=command.budget)]
        case RecordSpend():
            assert day is not None and c.budget is not None
            if command.amount.currency != c.budget.currency:
                raise LeadRuleError("currency_mismatch", f"the campaign's spend is in {c.budget.currency}")
            if command.amount.amount < 0:
                raise LeadRuleError("negative_spend", "spend is zero or more")
            if c.status == "draft":
                raise LeadRuleError("campaign_not_launched", "spend is recorded once the campaign runs")
            previous = c.spend.get(day)
            if previous is None:
                return [
                    CampaignSpendRecorded(
                        campaign_id=campaign_id,
                        day=day,
                        amount=command.amount,
                        impressions=command.impressions,
                        clicks=command.clicks,
                        source=command.source,
                    )
                ]
            if previous == command.amount and command.correction_reason is None:
                return []  # the same day imported again
            if command.correction_reason is None:
                raise LeadRuleError("spend_recorded", f"spend for {day} is recorded: send a correction_reason")
            return [
                CampaignSpendCorrected(
                    campaign_id=campaign_id,
                    day=day,
                    old=previous,
                    new=command.amount,
                    impressions=command.impressions,
                    clicks=command.clicks,
                    reason=command.correction_reason,
                )
            ]
    raise AssertionError(f"no decision for {command!r}")


COMMANDS: dict[str, type[Command]] = {c.name: c for c in Command.__subclasses__()}


def state_as_json(lead: Lead) -> dict[str, Any]:
    return {
        "lead_id": str(lead.lead_id) if lead.lead_id else None,
        "status": lead.status.value,
        "source": lead.source,
        "attribution": lead.attribution.model_dump(mode="json") if lead.attribution else None,
        "captured_at": lead.captured_at.isoformat() if lead.captured_at else None,
        "owner_id": lead.owner_id,
        "team_id": lead.team_id,
        "segments": list(lead.segments),
        "nurture": lead.nurture,
        "first_contacted_at": lead.first_contacted_at.isoformat() if lead.first_contacted_at else None,
        "score": format(lead.score, "f") if lead.score is not None else None,
        "engagements": len(lead.engagements),
        "outcome": lead.outcome,
        "erased": lead.erased,
        "duplicate_of": str(lead.duplicate_of) if lead.duplicate_of else None,
        "merged_into": str(lead.merged_into) if lead.merged_into else None,
    }
