"""The deal aggregate's state: ``Deal``, folded from its events by ``evolve``. Its commands are in ``commands``, what
they decide in ``decisions``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from services.deals.domain.errors import DealRuleError, InvalidCommandError
from services.deals.events import (
    ActivityLogged,
    CustomerFeedbackRecorded,
    DealContactErased,
    DealCustomerLinked,
    DealEvent,
    DealLinesChanged,
    DealLost,
    DealOpened,
    DealProbabilityOverridden,
    DealProbabilityOverrideCleared,
    DealReassigned,
    DealReopened,
    DealValueChanged,
    DealWon,
    DeliveryRiskFlagged,
    ExpectedCloseDateChanged,
    FollowUpCompleted,
    FollowUpContactRecorded,
    FollowUpDueChanged,
    FollowUpStarted,
    ProductLine,
    QuoteAccepted,
    QuoteRejected,
    QuoteRevised,
    QuoteSent,
    StageChanged,
    StageSnapshot,
)
from shared.core.decider import Decider, replace
from shared.core.events import DomainEvent
from shared.core.money import Money


class Status(StrEnum):
    NONE = "none"  # no such deal yet
    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True)
class Quote:
    quote_id: uuid.UUID
    version: int
    lines: tuple[ProductLine, ...]
    total: Money
    valid_until: date
    status: str = "sent"  # sent, accepted, rejected


@dataclass(frozen=True)
class FollowUp:
    follow_up_id: uuid.UUID
    kind: str
    due_on: date
    order_id: uuid.UUID | None
    completed: bool = False
    contacts: int = 0
    csat: int | None = None
    nps: int | None = None


@dataclass(frozen=True)
class Deal:
    deal_id: uuid.UUID | None = None
    status: Status = Status.NONE
    pipeline_id: str = ""
    pipeline_version: int = 0
    stage: StageSnapshot | None = None
    entered_stage_at: datetime | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    title: str = ""
    customer: str = ""
    contact_id: str | None = None
    owner_id: str = ""
    team_id: str | None = None
    value: Money = field(default_factory=Money.zero)
    lines: tuple[ProductLine, ...] = ()
    expected_close_date: date | None = None
    close_date_pushes: int = 0
    probability_override: Decimal | None = None
    source_lead_id: uuid.UUID | None = None
    source: str | None = None
    campaign_id: str | None = None
    quotes: Mapping[uuid.UUID, Quote] = field(default_factory=dict)
    follow_ups: Mapping[uuid.UUID, FollowUp] = field(default_factory=dict)
    activities: int = 0
    lost_reason: str | None = None
    delivery_risk: str | None = None
    contact_erased: bool = False
    organisation_id: uuid.UUID | None = None  # the directory's organisation the deal was linked to
    person_ids: tuple[uuid.UUID, ...] = ()

    @property
    def probability(self) -> Decimal:
        """Won: 1, lost: 0 (a closed deal weighs what it brought); open: the deal's override if set, else its
        stage's probability when it entered the stage."""
        if self.status is Status.WON:
            return Decimal(1)
        if self.status is Status.LOST:
            return Decimal(0)
        if self.probability_override is not None:
            return self.probability_override
        return self.stage.probability if self.stage else Decimal(0)

    @property
    def weighted_value(self) -> Money:
        return self.value.times(self.probability)

    def accepted_quote(self) -> Quote | None:
        return next((q for q in self.quotes.values() if q.status == "accepted"), None)

    def quote(self, quote_id: uuid.UUID) -> Quote:
        """The deal's quote, for a command that names it."""
        try:
            return self.quotes[quote_id]
        except KeyError:
            raise InvalidCommandError("unknown_quote", f"the deal has no quote {quote_id}") from None

    def open_follow_up(self, follow_up_id: uuid.UUID) -> FollowUp:
        """The deal's follow-up, for a command that changes it: not completed."""
        f = self.follow_ups.get(follow_up_id)
        if f is None:
            raise InvalidCommandError("unknown_follow_up", f"the deal has no follow-up {follow_up_id}")
        if f.completed:
            raise DealRuleError("follow_up_completed", f"follow-up {follow_up_id} is completed")
        return f


def evolve(deal: Deal, event: DomainEvent) -> Deal:  # noqa: C901 - a flat table: one arm per event type
    if not isinstance(event, DealEvent):
        return deal
    match event:
        case DealOpened():  # a conversion's link may come before the opening (customer_link.link_conversion)
            return replace(opened(event), organisation_id=deal.organisation_id, person_ids=deal.person_ids)
        case StageChanged():
            return replace(deal, stage=event.to_stage, entered_stage_at=event.changed_at)
        case DealValueChanged():
            return replace(deal, value=event.new)
        case DealLinesChanged():
            return replace(deal, lines=event.lines, value=event.value)
        case ExpectedCloseDateChanged():
            return replace(deal, expected_close_date=event.new, close_date_pushes=event.push_count)
        case DealProbabilityOverridden():
            return replace(deal, probability_override=event.probability)
        case DealProbabilityOverrideCleared():
            return replace(deal, probability_override=None)
        case DealReassigned():
            return replace(deal, owner_id=event.to_owner_id, team_id=event.to_team_id)
        case ActivityLogged():
            return replace(deal, activities=deal.activities + 1)
        case QuoteSent() | QuoteRevised():
            quote = Quote(event.quote_id, event.version, event.lines, event.total, event.valid_until)
            return replace(deal, quotes={**deal.quotes, event.quote_id: quote})
        case QuoteAccepted():
            return with_quote(deal, replace(deal.quotes[event.quote_id], status="accepted"))
        case QuoteRejected():
            return with_quote(deal, replace(deal.quotes[event.quote_id], status="rejected"))
        case DealWon():
            return replace(deal, status=Status.WON, value=event.value, lines=event.lines, closed_at=event.won_at)
        case DealLost():
            return replace(deal, status=Status.LOST, closed_at=event.lost_at, lost_reason=event.reason)
        case DealReopened():
            return reopened(deal, event)
        case FollowUpStarted():
            return with_follow_up(deal, FollowUp(event.follow_up_id, event.kind, event.due_on, event.order_id))
        case FollowUpDueChanged():
            return with_follow_up(deal, replace(deal.follow_ups[event.follow_up_id], due_on=event.due_on))
        case FollowUpContactRecorded():
            f = deal.follow_ups[event.follow_up_id]
            return with_follow_up(deal, replace(f, contacts=f.contacts + 1))
        case CustomerFeedbackRecorded():
            return with_follow_up(deal, feedback(deal.follow_ups[event.follow_up_id], event))
        case FollowUpCompleted():
            return with_follow_up(deal, replace(deal.follow_ups[event.follow_up_id], completed=True))
        case DeliveryRiskFlagged():
            return replace(deal, delivery_risk=event.reason)
        case DealContactErased():
            return replace(deal, contact_erased=True)
        case DealCustomerLinked():
            return replace(deal, organisation_id=event.organisation_id, person_ids=event.person_ids)
        case _:  # CustomerNeedsRecorded and events that do not change what decisions need
            return deal


def opened(event: DealOpened) -> Deal:
    return Deal(
        deal_id=event.deal_id,
        status=Status.OPEN,
        pipeline_id=event.pipeline_id,
        pipeline_version=event.pipeline_version,
        stage=event.stage,
        entered_stage_at=event.opened_at,
        opened_at=event.opened_at,
        title=event.title,
        customer=event.customer,
        contact_id=event.contact_id,
        owner_id=event.owner_id,
        team_id=event.team_id,
        value=event.value,
        lines=event.lines,
        expected_close_date=event.expected_close_date,
        source_lead_id=event.source_lead_id,
        source=event.source,
        campaign_id=event.campaign_id,
    )


def reopened(deal: Deal, event: DealReopened) -> Deal:
    return replace(
        deal,
        status=Status.OPEN,
        stage=event.to_stage,
        entered_stage_at=event.reopened_at,
        closed_at=None,
        lost_reason=None,
    )


def with_quote(deal: Deal, quote: Quote) -> Deal:
    return replace(deal, quotes={**deal.quotes, quote.quote_id: quote})


def with_follow_up(deal: Deal, follow_up: FollowUp) -> Deal:
    return replace(deal, follow_ups={**deal.follow_ups, follow_up.follow_up_id: follow_up})


def feedback(f: FollowUp, event: CustomerFeedbackRecorded) -> FollowUp:
    return replace(
        f, csat=event.csat if event.csat is not None else f.csat, nps=event.nps if event.nps is not None else f.nps
    )


deal_decider = Decider(initial=Deal(), evolve=evolve, snapshot_every=50, snapshot_version=3)  # 3: organisation
