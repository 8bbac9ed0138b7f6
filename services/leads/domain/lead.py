"""The lead: captured → contacted → nurturing → MQL → SQL → converted; disqualified, recycled, merged.

``RULES`` says which commands each lead status allows (tested pair by pair); ``decide`` checks it, then hands the
command to its decision, one named function per command (``DECISIONS``, read as a table). Pure: ``now``, the
lead's id and the actor come in as arguments.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from services.leads.domain.commands import (
    Absorb,
    Assign,
    CaptureLead,
    Command,
    Convert,
    Disqualify,
    Erase,
    ExtendOffer,
    MergeInto,
    Qualify,
    RecordContact,
    RecordDuplicate,
    RecordEngagement,
    RecordNurtureEmail,
    RecordOutcome,
    Recycle,
    Score,
    Segment,
    StartNurture,
    StartTrial,
    StopNurture,
    UpdateContact,
)
from services.leads.domain.errors import LeadRuleError, NotFoundError
from services.leads.domain.scoring import DEFAULT_RULES, ScoringRules, score
from services.leads.events import (
    Attribution,
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
from shared.core.decider import Decider, replace
from shared.core.events import DomainEvent


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


def evolve(lead: Lead, event: DomainEvent) -> Lead:  # noqa: C901 - a flat table: one arm per event type
    if not isinstance(event, LeadEvent):
        return lead
    match event:
        case LeadCaptured():  # the contact is not state: stored sealed, it is opened where it is needed
            return Lead(
                lead_id=event.lead_id,
                status=Status.NEW,
                source=event.source,
                attribution=event.attribution,
                captured_at=event.captured_at,
            )
        case LeadDuplicateDetected():
            return replace(lead, duplicate_of=event.duplicate_of)
        case LeadMergedInto():
            return replace(lead, status=Status.MERGED, merged_into=event.survivor_id)
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
            return replace(lead, erased=True)
        case _:
            return lead


# version 2: the contact's company, title and email domain left the state (they were never read back from the store)
lead_decider = Decider(initial=Lead(), evolve=evolve, snapshot_every=50, snapshot_version=2)


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


# ---------------------------------------------------------------------------------------------- decisions
@dataclass(frozen=True)
class Given:
    """What a decision has besides the lead and the command: the lead's id, the time, who asks, the scoring rules,
    and the lead's opened contact (for a conversion and a score)."""

    lead_id: uuid.UUID
    now: datetime
    actor: str
    rules: ScoringRules
    contact: LeadContact | None


def _capture(lead: Lead, command: CaptureLead, g: Given) -> list[LeadEvent]:
    return [
        LeadCaptured(
            lead_id=g.lead_id,
            source=command.source,
            external_id=command.external_id,
            attribution=command.attribution or Attribution(source=command.source),
            contact=command.contact,
            answers=command.answers,
            raw_payload=command.raw_payload,
            consent=command.consent,
            captured_at=command.captured_at or g.now,
        )
    ]


def _record_duplicate(lead: Lead, command: RecordDuplicate, g: Given) -> list[LeadEvent]:
    if command.duplicate_of == g.lead_id:
        raise LeadRuleError("self_duplicate", "a lead is not its own duplicate")
    return [LeadDuplicateDetected(lead_id=g.lead_id, duplicate_of=command.duplicate_of, match_keys=command.match_keys)]


def _merge_into(lead: Lead, command: MergeInto, g: Given) -> list[LeadEvent]:
    if command.survivor_id == g.lead_id:
        raise LeadRuleError("self_merge", "a lead cannot be merged into itself")
    return [LeadMergedInto(lead_id=g.lead_id, survivor_id=command.survivor_id)]


def _absorb(lead: Lead, command: Absorb, g: Given) -> list[LeadEvent]:
    if command.other_lead_id == g.lead_id:
        raise LeadRuleError("self_merge", "a lead cannot absorb itself")
    return [LeadMerged(lead_id=g.lead_id, other_lead_id=command.other_lead_id)]


def _update_contact(lead: Lead, command: UpdateContact, g: Given) -> list[LeadEvent]:
    return [LeadContactDetailsUpdated(lead_id=g.lead_id, contact=command.contact, reason=command.reason)]


def _assign(lead: Lead, command: Assign, g: Given) -> list[LeadEvent]:
    if (command.owner_id, command.team_id) == (lead.owner_id, lead.team_id):
        return []
    return [LeadAssigned(lead_id=g.lead_id, owner_id=command.owner_id, team_id=command.team_id, rule=command.rule)]


def _record_engagement(lead: Lead, command: RecordEngagement, g: Given) -> list[LeadEvent]:
    return [
        LeadEngagementRecorded(
            lead_id=g.lead_id,
            kind=command.kind,
            channel=command.channel,
            campaign_id=command.campaign_id,
            asset_id=command.asset_id,
            at=command.at or g.now,
        )
    ]


def _segment(lead: Lead, command: Segment, g: Given) -> list[LeadEvent]:
    segments = tuple(sorted(set(command.segments)))
    if segments == lead.segments:
        return []
    return [LeadSegmented(lead_id=g.lead_id, segments=segments, criteria_version=command.criteria_version)]


def _score(lead: Lead, command: Score, g: Given) -> list[LeadEvent]:
    fit, engagement, reasons = score(lead, g.now, g.rules, contact=None if lead.erased else g.contact)
    return [
        LeadScored(
            lead_id=g.lead_id,
            fit=fit,
            engagement=engagement,
            total=fit + engagement,
            model_version=g.rules.version,
            top_reasons=tuple(reasons),
            at=g.now,
        )
    ]


def _record_contact(lead: Lead, command: RecordContact, g: Given) -> list[LeadEvent]:
    return [LeadContacted(lead_id=g.lead_id, channel=command.channel, by=g.actor, at=g.now)]


def _start_nurture(lead: Lead, command: StartNurture, g: Given) -> list[LeadEvent]:
    if lead.nurture == command.sequence_id:
        return []
    return [LeadNurtureStarted(lead_id=g.lead_id, sequence_id=command.sequence_id)]


def _nurture_of(lead: Lead) -> str:
    if lead.nurture is None:
        raise LeadRuleError("not_nurtured", "the lead is in no nurture sequence")
    return lead.nurture


def _stop_nurture(lead: Lead, command: StopNurture, g: Given) -> list[LeadEvent]:
    return [LeadNurtureStopped(lead_id=g.lead_id, sequence_id=_nurture_of(lead), reason=command.reason)]


def _record_nurture_email(lead: Lead, command: RecordNurtureEmail, g: Given) -> list[LeadEvent]:
    sequence_id = _nurture_of(lead)
    return [
        NurtureEmailSent(lead_id=g.lead_id, sequence_id=sequence_id, step=command.step, message_id=command.message_id)
    ]


def _extend_offer(lead: Lead, command: ExtendOffer, g: Given) -> list[LeadEvent]:
    return [OfferExtended(lead_id=g.lead_id, offer_id=command.offer_id, expires_on=command.expires_on)]


def _start_trial(lead: Lead, command: StartTrial, g: Given) -> list[LeadEvent]:
    if command.ends_on < g.now.date():
        raise LeadRuleError("trial_in_past", "a trial ends today or later")
    return [TrialStarted(lead_id=g.lead_id, product=command.product, ends_on=command.ends_on)]


def _qualify(lead: Lead, command: Qualify, g: Given) -> list[LeadEvent]:
    if command.level == "mql" and lead.status == Status.MQL:
        raise LeadRuleError("already_mql", "the lead is already an MQL")
    return [LeadQualified(lead_id=g.lead_id, level=command.level, by=g.actor, score=lead.score, at=g.now)]


def _disqualify(lead: Lead, command: Disqualify, g: Given) -> list[LeadEvent]:
    return [LeadDisqualified(lead_id=g.lead_id, reason=command.reason, note=command.note, at=g.now)]


def _convert(lead: Lead, command: Convert, g: Given) -> list[LeadEvent]:
    owner = command.owner_id or lead.owner_id
    if owner is None:
        raise LeadRuleError("owner_required", "assign the lead (or name the deal's owner) before converting")
    assert lead.attribution is not None
    return [
        LeadConverted(
            lead_id=g.lead_id,
            customer=command.customer,
            contact=None if lead.erased else g.contact,
            owner_id=owner,
            team_id=command.team_id or lead.team_id,
            title=command.title,
            estimated_value=command.estimated_value,
            expected_close_date=command.expected_close_date,
            product_interest=command.product_interest,
            attribution=lead.attribution,
        )
    ]


def _recycle(lead: Lead, command: Recycle, g: Given) -> list[LeadEvent]:
    return [LeadRecycled(lead_id=g.lead_id, reason=command.reason)]


def _record_outcome(lead: Lead, command: RecordOutcome, g: Given) -> list[LeadEvent]:
    if command.won:
        if command.value is None:
            raise LeadRuleError("value_required", "a won outcome carries the deal's value")
        if lead.outcome == "won":
            return []
        return [LeadBecameCustomer(lead_id=g.lead_id, deal_id=command.deal_id, value=command.value, won_at=command.at)]
    if lead.outcome == "lost":
        return []
    reason = command.reason or ""
    return [LeadOpportunityLost(lead_id=g.lead_id, deal_id=command.deal_id, reason=reason, lost_at=command.at)]


def _erase(lead: Lead, command: Erase, g: Given) -> list[LeadEvent]:
    return [LeadPersonalDataErased(lead_id=g.lead_id, requested_by=g.actor, reason=command.reason)]


Decision = Callable[[Lead, Any, Given], list[LeadEvent]]
DECISIONS: dict[type[Command], Decision] = {
    CaptureLead: _capture,
    RecordDuplicate: _record_duplicate,
    MergeInto: _merge_into,
    Absorb: _absorb,
    UpdateContact: _update_contact,
    Assign: _assign,
    RecordEngagement: _record_engagement,
    Segment: _segment,
    Score: _score,
    RecordContact: _record_contact,
    StartNurture: _start_nurture,
    StopNurture: _stop_nurture,
    RecordNurtureEmail: _record_nurture_email,
    ExtendOffer: _extend_offer,
    StartTrial: _start_trial,
    Qualify: _qualify,
    Disqualify: _disqualify,
    Convert: _convert,
    Recycle: _recycle,
    RecordOutcome: _record_outcome,
    Erase: _erase,
}


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
    """The events a command produces on a lead. ``contact``: the lead's opened contact (for a conversion and a
    score)."""
    check_allowed(lead, command)
    decision = DECISIONS.get(type(command))
    if decision is None:
        raise AssertionError(f"no decision for {command!r}")
    return decision(lead, command, Given(lead_id, now, actor, rules, contact))
