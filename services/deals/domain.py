"""The sales pipeline's rules, pure: no I/O, no clock, no id generation. ``now`` and ids come in.

- ``Pipeline``: stage definitions, versioned (each ``PipelineDefined`` is a version).
- ``Deal``: state folded from its events by ``evolve``; ``decide(deal, command, pipeline, now)`` returns the
  new events or raises a ``DealRuleError`` naming the rule.
- ``RULES``: which commands each deal status allows — the table managers read, tested pair by pair.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.deals.events import (
    ActivityLogged,
    ActivityType,
    Address,
    Channel,
    Contact,
    CustomerFeedbackRecorded,
    CustomerNeedsRecorded,
    DealContactErased,
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
    Name,
    PipelineDefined,
    Probability,
    ProductLine,
    QuoteAccepted,
    QuoteRejected,
    QuoteRevised,
    QuoteSent,
    SalesTargetSet,
    StageChanged,
    StageDefinition,
    StageKind,
    StageSnapshot,
    Text,
)
from shared.core.decider import AbsentError, Decider, InvalidError, RuleError, replace
from shared.core.events import DomainEvent
from shared.core.limits import (
    MAX_COUNT,
    MAX_ITEMS,
    MAX_TEXT_CHARS,
    Code,
    DecimalText,
    Email,
    ExternalId,
    Identifier,
    Label,
    MoneyField,
    Quantity,
    ValidatedAs,
)
from shared.core.money import Money, totals


# ---------------------------------------------------------------------------------------------- errors
class DealRuleError(RuleError):
    """A sales rule refused the command."""


class InvalidCommandError(DealRuleError, InvalidError):
    """The command names something that does not exist in this context (HTTP 422)."""


class NotFoundError(DealRuleError, AbsentError):
    """No such aggregate, or part of one (HTTP 404)."""


# ---------------------------------------------------------------------------------------------- request forms
# The event contract's values as a request gives them: the same fields, each bounded (shared.core.limits). A command
# field holds the plain value (``ValidatedAs``), so events and states never see these classes.
class StageDefinitionInput(StageDefinition):
    order: int = Field(ge=0, le=MAX_COUNT)
    probability: Annotated[Probability, DecimalText()]


class ContactInput(Contact):
    email: Email | None = None


class AddressInput(Address):
    line2: Label | None = None
    region: Label | None = None


class ProductLineInput(ProductLine):
    quantity: Quantity
    unit_price: MoneyField
    discount_pct: Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2), DecimalText()] = Decimal(0)


StageField = Annotated[StageDefinition, ValidatedAs(StageDefinitionInput)]
ContactField = Annotated[Contact, ValidatedAs(ContactInput)]
AddressField = Annotated[Address, ValidatedAs(AddressInput)]
LineField = Annotated[ProductLine, ValidatedAs(ProductLineInput)]


# ---------------------------------------------------------------------------------------------- pipeline
DEFAULT_PIPELINE_ID = "default"
DEFAULT_STAGES = (
    StageDefinition(
        stage_id="target_identified",
        name="Target identified",
        order=10,
        probability=Decimal("0.10"),
        stuck_after_days=14,
    ),
    StageDefinition(stage_id="contacted", name="Contacted", order=20, probability=Decimal("0.20"), stuck_after_days=10),
    StageDefinition(
        stage_id="needs_discussed", name="Needs discussed", order=30, probability=Decimal("0.40"), stuck_after_days=14
    ),
    StageDefinition(
        stage_id="quote_sent", name="Quote sent", order=40, probability=Decimal("0.60"), stuck_after_days=10
    ),
    StageDefinition(
        stage_id="negotiation", name="Negotiation", order=50, probability=Decimal("0.80"), stuck_after_days=14
    ),
    StageDefinition(stage_id="won", name="Won", order=60, probability=Decimal(1), kind=StageKind.WON),
    StageDefinition(stage_id="lost", name="Lost", order=70, probability=Decimal(0), kind=StageKind.LOST),
)


@dataclass(frozen=True)
class Pipeline:
    pipeline_id: str = ""
    name: str = ""
    version: int = 0
    stages: tuple[StageDefinition, ...] = ()

    @property
    def exists(self) -> bool:
        return self.version > 0

    def stage(self, stage_id: str) -> StageDefinition:
        for s in self.stages:
            if s.stage_id == stage_id:
                return s
        raise InvalidCommandError("unknown_stage", f"pipeline {self.pipeline_id} has no stage {stage_id!r}")

    def open_stages(self) -> list[StageDefinition]:
        return sorted((s for s in self.stages if s.kind == StageKind.OPEN), key=lambda s: s.order)

    def of_kind(self, kind: StageKind) -> StageDefinition:
        return next(s for s in self.stages if s.kind == kind)


def snapshot(stage: StageDefinition) -> StageSnapshot:
    return StageSnapshot(
        stage_id=stage.stage_id, name=stage.name, order=stage.order, probability=stage.probability, kind=stage.kind
    )


def evolve_pipeline(state: Pipeline, event: DomainEvent) -> Pipeline:
    if isinstance(event, PipelineDefined):
        return Pipeline(event.pipeline_id, event.name, state.version + 1, event.stages)
    return state


pipeline_decider = Decider(initial=Pipeline(), evolve=evolve_pipeline)


class DefinePipeline(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    name: Name
    stages: tuple[StageField, ...] = Field(min_length=3, max_length=30)
    reason: str | None = None


def define_pipeline(state: Pipeline, pipeline_id: str, cmd: DefinePipeline) -> list[DomainEvent]:
    if state.exists and state.name == cmd.name and state.stages == cmd.stages:
        return []  # the same definition again changes nothing
    return [PipelineDefined(pipeline_id=pipeline_id, name=cmd.name, stages=cmd.stages, reason=cmd.reason)]


# ---------------------------------------------------------------------------------------------- deal state
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

    @property
    def probability(self) -> Decimal:
        """The deal's override if set, else its stage's probability when it entered the stage."""
        if self.probability_override is not None:
            return self.probability_override
        return self.stage.probability if self.stage else Decimal(0)

    @property
    def weighted_value(self) -> Money:
        return self.value.times(self.probability)

    def accepted_quote(self) -> Quote | None:
        return next((q for q in self.quotes.values() if q.status == "accepted"), None)


def evolve(deal: Deal, event: DomainEvent) -> Deal:
    if not isinstance(event, DealEvent):
        return deal
    match event:
        case DealOpened():
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
            return replace(
                deal, quotes={**deal.quotes, event.quote_id: replace(deal.quotes[event.quote_id], status="accepted")}
            )
        case QuoteRejected():
            return replace(
                deal, quotes={**deal.quotes, event.quote_id: replace(deal.quotes[event.quote_id], status="rejected")}
            )
        case DealWon():
            return replace(deal, status=Status.WON, value=event.value, lines=event.lines, closed_at=event.won_at)
        case DealLost():
            return replace(deal, status=Status.LOST, closed_at=event.lost_at, lost_reason=event.reason)
        case DealReopened():
            return replace(
                deal,
                status=Status.OPEN,
                stage=event.to_stage,
                entered_stage_at=event.reopened_at,
                closed_at=None,
                lost_reason=None,
            )
        case FollowUpStarted():
            f = FollowUp(event.follow_up_id, event.kind, event.due_on, event.order_id)
            return replace(deal, follow_ups={**deal.follow_ups, event.follow_up_id: f})
        case FollowUpDueChanged():
            f = replace(deal.follow_ups[event.follow_up_id], due_on=event.due_on)
            return replace(deal, follow_ups={**deal.follow_ups, event.follow_up_id: f})
        case FollowUpContactRecorded():
            f = deal.follow_ups[event.follow_up_id]
            return replace(deal, follow_ups={**deal.follow_ups, f.follow_up_id: replace(f, contacts=f.contacts + 1)})
        case CustomerFeedbackRecorded():
            f = deal.follow_ups[event.follow_up_id]
            f = replace(
                f,
                csat=event.csat if event.csat is not None else f.csat,
                nps=event.nps if event.nps is not None else f.nps,
            )
            return replace(deal, follow_ups={**deal.follow_ups, f.follow_up_id: f})
        case FollowUpCompleted():
            f = replace(deal.follow_ups[event.follow_up_id], completed=True)
            return replace(deal, follow_ups={**deal.follow_ups, f.follow_up_id: f})
        case DeliveryRiskFlagged():
            return replace(deal, delivery_risk=event.reason)
        case DealContactErased():
            return replace(deal, contact_erased=True)
        case _:  # CustomerNeedsRecorded and events that do not change what decisions need
            return deal


deal_decider = Decider(initial=Deal(), evolve=evolve, snapshot_every=50, snapshot_version=2)  # 2: contact_erased


# ---------------------------------------------------------------------------------------------- commands
MAX_LINES = 200  # lines of a deal or a quote


class Command(BaseModel):
    """A command on a deal. Its strings are at most MAX_TEXT_CHARS unless a field says less (shared.core.limits)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    name: ClassVar[str]


class OpenDeal(Command):
    name: ClassVar[str] = "open_deal"
    title: Name
    customer: Name
    owner_id: Annotated[Identifier, Field(min_length=1)]
    team_id: Identifier | None = None
    stage_id: Identifier | None = None  # default: the pipeline's first open stage
    pipeline_id: Identifier = DEFAULT_PIPELINE_ID
    contact_id: Identifier | None = None
    contact: ContactField | None = None
    value: MoneyField | None = None
    lines: tuple[LineField, ...] = Field((), max_length=MAX_LINES)
    expected_close_date: date | None = None
    source_lead_id: uuid.UUID | None = None
    source: Code | None = None
    campaign_id: ExternalId | None = None
    previous_deal_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _contact_needs_subject(self) -> OpenDeal:
        if self.contact is not None and not (self.contact_id or self.source_lead_id):
            raise ValueError("contact details need a contact_id (their data subject) or a source_lead_id")
        return self


class MoveStage(Command):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"stage_id": "quote_sent", "note": "demo went well"}]},
    )
    name: ClassVar[str] = "move_stage"
    stage_id: Identifier
    note: str | None = None


class ChangeValue(Command):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"value": {"amount": "120000000", "currency": "VND"}, "reason": "scope grew"}]},
    )
    name: ClassVar[str] = "change_value"
    value: MoneyField
    reason: str | None = None


class ChangeLines(Command):
    name: ClassVar[str] = "change_lines"
    lines: tuple[LineField, ...] = Field(min_length=1, max_length=MAX_LINES)
    reason: str | None = None


class ChangeCloseDate(Command):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"expected_close_date": "2027-01-15", "reason": "budget approval after Tết"}]},
    )
    name: ClassVar[str] = "change_close_date"
    expected_close_date: date
    reason: str | None = None


class OverrideProbability(Command):
    name: ClassVar[str] = "override_probability"
    probability: Annotated[Probability, DecimalText()]
    reason: Text


class ClearProbabilityOverride(Command):
    name: ClassVar[str] = "clear_probability_override"
    reason: str | None = None


class Reassign(Command):
    name: ClassVar[str] = "reassign"
    owner_id: Annotated[Identifier, Field(min_length=1)]
    team_id: Identifier | None = None
    reason: str | None = None


class LogActivity(Command):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "activity_type": "meeting",
                    "channel": "meeting",
                    "outcome": "agreed on a trial",
                    "duration_minutes": 45,
                }
            ]
        },
    )
    name: ClassVar[str] = "log_activity"
    activity_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    activity_type: ActivityType
    channel: Channel
    direction: Annotated[str, Field(pattern=r"^(outbound|inbound)$")] = "outbound"
    outcome: str | None = None
    duration_minutes: int | None = Field(None, ge=0, le=24 * 60)
    note: str | None = None


class RecordNeeds(Command):
    name: ClassVar[str] = "record_needs"
    needs: tuple[Text, ...] = Field(min_length=1, max_length=MAX_ITEMS)
    budget: MoneyField | None = None
    decision_date: date | None = None
    note: str | None = None


class SendQuote(Command):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lines": [
                        {
                            "product": "Tủ lạnh 300L",
                            "quantity": "10",
                            "unit_price": {"amount": "9000000", "currency": "VND"},
                            "discount_pct": "5",
                        }
                    ],
                    "valid_until": "2026-12-31",
                    "offer": "year-end promotion",
                }
            ]
        },
    )
    name: ClassVar[str] = "send_quote"
    quote_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    lines: tuple[LineField, ...] = Field(min_length=1, max_length=MAX_LINES)
    valid_until: date
    offer: str | None = None


class ReviseQuote(Command):
    name: ClassVar[str] = "revise_quote"
    quote_id: uuid.UUID
    lines: tuple[LineField, ...] = Field(min_length=1, max_length=MAX_LINES)
    valid_until: date
    offer: str | None = None
    reason: str | None = None


class AcceptQuote(Command):
    name: ClassVar[str] = "accept_quote"
    quote_id: uuid.UUID


class RejectQuote(Command):
    name: ClassVar[str] = "reject_quote"
    quote_id: uuid.UUID
    reason: Text


class WinDeal(Command):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"examples": [{"requested_delivery_date": "2027-01-10"}]}
    )
    name: ClassVar[str] = "win"
    quote_id: uuid.UUID | None = None  # default: the accepted quote, if any
    requested_delivery_date: date | None = None
    delivery_address: AddressField | None = None


class LoseDeal(Command):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "price", "competitor": "Rival Co", "note": "they offered 8% less"}]},
    )
    name: ClassVar[str] = "lose"
    reason: Text
    competitor: Label | None = None
    note: str | None = None


class ReopenDeal(Command):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "the customer came back", "stage_id": "negotiation"}]},
    )
    name: ClassVar[str] = "reopen"
    reason: Text
    stage_id: Identifier | None = None  # default: the first open stage


class StartFollowUp(Command):
    name: ClassVar[str] = "start_follow_up"
    follow_up_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    kind: Annotated[str, Field(pattern=r"^(satisfaction_check|onboarding|next_opportunity)$")] = "satisfaction_check"
    due_on: date
    order_id: uuid.UUID | None = None
    shipment_id: uuid.UUID | None = None


class RescheduleFollowUp(Command):
    name: ClassVar[str] = "reschedule_follow_up"
    follow_up_id: uuid.UUID
    due_on: date
    reason: Text


class RecordFollowUpContact(Command):
    name: ClassVar[str] = "record_follow_up_contact"
    follow_up_id: uuid.UUID
    channel: Channel
    note: str | None = None


class RecordFeedback(Command):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "follow_up_id": "6f1f3c8e-2f4e-5b7a-9d0c-1a2b3c4d5e99",
                    "csat": 5,
                    "nps": 9,
                    "comment": "giao hàng nhanh",
                }
            ]
        },
    )
    name: ClassVar[str] = "record_feedback"
    follow_up_id: uuid.UUID
    csat: int | None = Field(None, ge=1, le=5)
    nps: int | None = Field(None, ge=0, le=10)
    comment: str | None = None

    @model_validator(mode="after")
    def _something(self) -> RecordFeedback:
        if self.csat is None and self.nps is None and not self.comment:
            raise ValueError("feedback needs a csat score, an nps score or a comment")
        return self


class CompleteFollowUp(Command):
    name: ClassVar[str] = "complete_follow_up"
    follow_up_id: uuid.UUID
    outcome: Text
    next_opportunity: bool = False


class FlagDeliveryRisk(Command):
    name: ClassVar[str] = "flag_delivery_risk"
    order_id: uuid.UUID
    reason: Text
    new_eta: date | None = None


class EraseContact(Command):
    """Forget the deal's contact: the key of their data subject (``contact_id``) is destroyed, so their contact
    details and delivery address read as null in every service, store, topic and read model, and backups' copies
    within the erasure window (docs/OPERATIONS.md). A contact a lead brought is that lead's person: they are
    forgotten in the leads service too. The deal, its value and its history stay."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"examples": [{"reason": "data subject request #2026-118"}]}
    )
    name: ClassVar[str] = "erase_contact"
    reason: Text


# ---------------------------------------------------------------------------------------------- the rule table
OPEN, WON, LOST = Status.OPEN, Status.WON, Status.LOST
RULES: dict[str, frozenset[Status]] = {
    OpenDeal.name: frozenset({Status.NONE}),
    MoveStage.name: frozenset({OPEN}),
    ChangeValue.name: frozenset({OPEN}),
    ChangeLines.name: frozenset({OPEN}),
    ChangeCloseDate.name: frozenset({OPEN}),
    OverrideProbability.name: frozenset({OPEN}),
    ClearProbabilityOverride.name: frozenset({OPEN}),
    Reassign.name: frozenset({OPEN, WON, LOST}),  # a closed deal's follow-up or win-back changes hands too
    LogActivity.name: frozenset({OPEN, WON}),
    RecordNeeds.name: frozenset({OPEN}),
    SendQuote.name: frozenset({OPEN}),
    ReviseQuote.name: frozenset({OPEN}),
    AcceptQuote.name: frozenset({OPEN}),
    RejectQuote.name: frozenset({OPEN}),
    WinDeal.name: frozenset({OPEN}),
    LoseDeal.name: frozenset({OPEN}),
    ReopenDeal.name: frozenset({WON, LOST}),
    StartFollowUp.name: frozenset({WON}),
    RescheduleFollowUp.name: frozenset({WON}),
    RecordFollowUpContact.name: frozenset({WON}),
    RecordFeedback.name: frozenset({WON}),
    CompleteFollowUp.name: frozenset({WON}),
    FlagDeliveryRisk.name: frozenset({OPEN, WON}),
    EraseContact.name: frozenset({OPEN, WON, LOST}),
}


def check_allowed(deal: Deal, command: Command) -> None:
    allowed = RULES[command.name]
    if deal.status in allowed:
        return
    if deal.status == Status.NONE:
        raise NotFoundError("deal_not_found", "no such deal")
    if command.name == OpenDeal.name:
        raise DealRuleError("deal_exists", f"deal {deal.deal_id} is already open")
    if allowed == {WON}:
        raise DealRuleError("deal_not_won", f"{command.name} needs a won deal; this one is {deal.status}")
    if deal.status == OPEN:
        raise DealRuleError("deal_not_closed", f"{command.name} needs a won or lost deal; this one is open")
    raise DealRuleError("deal_closed", f"the deal is {deal.status}: reopen it before {command.name}")


# ---------------------------------------------------------------------------------------------- decisions
def _same_currency(deal_currency: str, amounts: list[Money], what: str) -> None:
    for m in amounts:
        if m.currency != deal_currency:
            raise DealRuleError("currency_mismatch", f"{what} is in {m.currency}, the deal in {deal_currency}")


def _lines_total(lines: tuple[ProductLine, ...], what: str) -> Money:
    if any(line.unit_price.amount < 0 for line in lines):
        raise InvalidCommandError("negative_price", f"{what} have a negative unit price")
    try:
        sums = totals(line.total() for line in lines)
    except (ValidationError, ArithmeticError):  # a total past Money's 22 digits or the decimal precision
        raise InvalidCommandError("amount_too_large", f"{what} add up to more than an amount can hold") from None
    if len(sums) != 1:
        raise DealRuleError("currency_mismatch", f"{what} mix currencies: {', '.join(sorted(sums))}")
    return next(iter(sums.values()))


def decide(deal: Deal, command: Command, pipeline: Pipeline, now: datetime, deal_id: uuid.UUID) -> list[DealEvent]:
    """The events a command produces on a deal, or the rule it breaks."""
    check_allowed(deal, command)
    d = deal_id
    match command:
        case OpenDeal():
            if not pipeline.exists:
                raise InvalidCommandError("unknown_pipeline", f"no pipeline {command.pipeline_id!r}")
            stage = pipeline.stage(command.stage_id) if command.stage_id else pipeline.open_stages()[0]
            if stage.kind != StageKind.OPEN:
                raise DealRuleError("use_win_or_lose", "a deal opens in an open stage")
            value = command.value
            if command.lines:
                lines_total = _lines_total(command.lines, "the lines")
                if value is not None and value != lines_total:
                    raise DealRuleError(
                        "value_differs_from_lines", f"value {value} differs from the lines' {lines_total}"
                    )
                value = lines_total
            value = value or Money.zero()
            if value.amount < 0:
                raise DealRuleError("negative_value", "a deal's value cannot be negative")
            return [
                DealOpened(
                    deal_id=d,
                    pipeline_id=pipeline.pipeline_id,
                    pipeline_version=pipeline.version,
                    stage=snapshot(stage),
                    title=command.title,
                    customer=command.customer,
                    contact_id=command.contact_id or (str(command.source_lead_id) if command.source_lead_id else None),
                    contact=command.contact,
                    owner_id=command.owner_id,
                    team_id=command.team_id,
                    value=value,
                    lines=command.lines,
                    expected_close_date=command.expected_close_date,
                    source_lead_id=command.source_lead_id,
                    source=command.source,
                    campaign_id=command.campaign_id,
                    previous_deal_id=command.previous_deal_id,
                    opened_at=now,
                )
            ]
        case MoveStage():
            assert deal.stage is not None
            assert deal.entered_stage_at is not None
            target = pipeline.stage(command.stage_id)
            if target.kind != StageKind.OPEN:
                raise DealRuleError("use_win_or_lose", f"move to {target.stage_id} by winning or losing the deal")
            if target.stage_id == deal.stage.stage_id:
                raise DealRuleError("already_in_stage", f"the deal is already in {target.name}")
            forward = target.order > deal.stage.order
            low, high = sorted((deal.stage.order, target.order))
            skipped = tuple(s.stage_id for s in pipeline.open_stages() if low < s.order < high) if forward else ()
            return [
                StageChanged(
                    deal_id=d,
                    from_stage=deal.stage,
                    to_stage=snapshot(target),
                    direction="forward" if forward else "backward",
                    skipped_stage_ids=skipped,
                    entered_from_at=deal.entered_stage_at,
                    changed_at=now,
                    note=command.note,
                )
            ]
        case ChangeValue():
            _same_currency(deal.value.currency, [command.value], "the new value")
            if command.value.amount < 0:
                raise DealRuleError("negative_value", "a deal's value cannot be negative")
            if deal.lines:
                raise DealRuleError("value_from_lines", "this deal's value is the total of its lines: change the lines")
            if command.value == deal.value:
                return []
            return [DealValueChanged(deal_id=d, old=deal.value, new=command.value, reason=command.reason)]
        case ChangeLines():
            total = _lines_total(command.lines, "the lines")
            _same_currency(deal.value.currency, [total], "the lines")
            if command.lines == deal.lines:
                return []
            return [DealLinesChanged(deal_id=d, lines=command.lines, value=total, reason=command.reason)]
        case ChangeCloseDate():
            if command.expected_close_date == deal.expected_close_date:
                return []
            pushed = deal.expected_close_date is not None and command.expected_close_date > deal.expected_close_date
            return [
                ExpectedCloseDateChanged(
                    deal_id=d,
                    old=deal.expected_close_date,
                    new=command.expected_close_date,
                    push_count=deal.close_date_pushes + (1 if pushed else 0),
                    reason=command.reason,
                )
            ]
        case OverrideProbability():
            return [DealProbabilityOverridden(deal_id=d, probability=command.probability, reason=command.reason)]
        case ClearProbabilityOverride():
            if deal.probability_override is None:
                raise DealRuleError("no_override", "the deal's probability is not overridden")
            return [DealProbabilityOverrideCleared(deal_id=d, reason=command.reason)]
        case Reassign():
            if (command.owner_id, command.team_id) == (deal.owner_id, deal.team_id):
                return []
            return [
                DealReassigned(
                    deal_id=d,
                    from_owner_id=deal.owner_id,
                    to_owner_id=command.owner_id,
                    from_team_id=deal.team_id,
                    to_team_id=command.team_id,
                    reason=command.reason,
                )
            ]
        case LogActivity():
            assert deal.stage is not None
            return [
                ActivityLogged(
                    deal_id=d,
                    activity_id=command.activity_id,
                    activity_type=command.activity_type,
                    direction=command.direction,
                    channel=command.channel,
                    stage_id=deal.stage.stage_id,
                    outcome=command.outcome,
                    duration_minutes=command.duration_minutes,
                    note=command.note,
                )
            ]
        case RecordNeeds():
            return [
                CustomerNeedsRecorded(
                    deal_id=d,
                    needs=command.needs,
                    budget=command.budget,
                    decision_date=command.decision_date,
                    note=command.note,
                )
            ]
        case SendQuote():
            if command.quote_id in deal.quotes:
                raise DealRuleError("quote_exists", f"quote {command.quote_id} was already sent: revise it")
            total = _lines_total(command.lines, "the quote's lines")
            _same_currency(deal.value.currency, [total], "the quote")
            if command.valid_until < now.date():
                raise DealRuleError("quote_validity_past", "a quote must be valid until today or later")
            return [
                QuoteSent(
                    deal_id=d,
                    quote_id=command.quote_id,
                    version=1,
                    lines=command.lines,
                    total=total,
                    valid_until=command.valid_until,
                    offer=command.offer,
                )
            ]
        case ReviseQuote():
            quote = _quote(deal, command.quote_id)
            if quote.status == "accepted":
                raise DealRuleError("quote_accepted", "an accepted quote cannot be revised: send a new one")
            total = _lines_total(command.lines, "the quote's lines")
            _same_currency(deal.value.currency, [total], "the quote")
            if command.valid_until < now.date():
                raise DealRuleError("quote_validity_past", "a quote must be valid until today or later")
            return [
                QuoteRevised(
                    deal_id=d,
                    quote_id=quote.quote_id,
                    version=quote.version + 1,
                    lines=command.lines,
                    total=total,
                    valid_until=command.valid_until,
                    offer=command.offer,
                    reason=command.reason,
                )
            ]
        case AcceptQuote():
            quote = _quote(deal, command.quote_id)
            if quote.status != "sent":
                raise DealRuleError("quote_not_open", f"quote {quote.quote_id} is {quote.status}")
            if quote.valid_until < now.date():
                raise DealRuleError("quote_expired", f"quote {quote.quote_id} expired on {quote.valid_until}")
            if (other := deal.accepted_quote()) is not None:
                raise DealRuleError("other_quote_accepted", f"quote {other.quote_id} is already accepted")
            return [QuoteAccepted(deal_id=d, quote_id=quote.quote_id, version=quote.version, total=quote.total)]
        case RejectQuote():
            quote = _quote(deal, command.quote_id)
            if quote.status != "sent":
                raise DealRuleError("quote_not_open", f"quote {quote.quote_id} is {quote.status}")
            return [QuoteRejected(deal_id=d, quote_id=quote.quote_id, version=quote.version, reason=command.reason)]
        case WinDeal():
            assert deal.stage is not None
            assert deal.opened_at is not None
            # winning with a named quote signs it (sent or accepted); without one, the accepted quote or the lines
            chosen = _quote(deal, command.quote_id) if command.quote_id else deal.accepted_quote()
            if chosen is not None and chosen.status == "rejected":
                raise DealRuleError("quote_rejected", f"quote {chosen.quote_id} was rejected: revise it first")
            if chosen is not None and chosen.valid_until < now.date() and chosen.status != "accepted":
                raise DealRuleError("quote_expired", f"quote {chosen.quote_id} expired on {chosen.valid_until}")
            lines = chosen.lines if chosen else deal.lines
            value = chosen.total if chosen else deal.value
            if not lines:
                raise DealRuleError("lines_required", "a deal is won with product lines: production needs them")
            if value.amount <= 0:
                raise DealRuleError("value_required", "a deal is won with a value above zero")
            if command.delivery_address is not None and deal.contact_id is None:
                raise DealRuleError(
                    "contact_required", "a delivery address needs the deal's contact (its data subject)"
                )
            if command.delivery_address is not None and deal.contact_erased:
                raise DealRuleError("contact_erased", "the deal's contact was erased: no address is kept for them")
            return [
                DealWon(
                    deal_id=d,
                    value=value,
                    lines=lines,
                    quote_id=chosen.quote_id if chosen else None,
                    customer=deal.customer,
                    owner_id=deal.owner_id,
                    team_id=deal.team_id,
                    stage_at_win=deal.stage,
                    opened_at=deal.opened_at,
                    won_at=now,
                    requested_delivery_date=command.requested_delivery_date,
                    contact_id=deal.contact_id,
                    delivery_address=command.delivery_address,
                    source_lead_id=deal.source_lead_id,
                )
            ]
        case LoseDeal():
            assert deal.stage is not None
            return [
                DealLost(
                    deal_id=d,
                    reason=command.reason,
                    competitor=command.competitor,
                    stage_at_loss=deal.stage,
                    value=deal.value,
                    lost_at=now,
                    source_lead_id=deal.source_lead_id,
                    note=command.note,
                )
            ]
        case ReopenDeal():
            stage = pipeline.stage(command.stage_id) if command.stage_id else pipeline.open_stages()[0]
            if stage.kind != StageKind.OPEN:
                raise DealRuleError("use_win_or_lose", "a deal reopens in an open stage")
            return [
                DealReopened(
                    deal_id=d, was=deal.status.value, to_stage=snapshot(stage), reason=command.reason, reopened_at=now
                )
            ]
        case StartFollowUp():
            if command.follow_up_id in deal.follow_ups:
                return []  # started already (reactions derive this id from the shipment)
            return [
                FollowUpStarted(
                    deal_id=d,
                    follow_up_id=command.follow_up_id,
                    order_id=command.order_id,
                    shipment_id=command.shipment_id,
                    kind=command.kind,
                    due_on=command.due_on,
                )
            ]
        case RescheduleFollowUp():
            f = _open_follow_up(deal, command.follow_up_id)
            if f.due_on == command.due_on:
                return []
            return [
                FollowUpDueChanged(deal_id=d, follow_up_id=f.follow_up_id, due_on=command.due_on, reason=command.reason)
            ]
        case RecordFollowUpContact():
            f = _open_follow_up(deal, command.follow_up_id)
            return [
                FollowUpContactRecorded(
                    deal_id=d, follow_up_id=f.follow_up_id, channel=command.channel, note=command.note
                )
            ]
        case RecordFeedback():
            f = _open_follow_up(deal, command.follow_up_id)
            return [
                CustomerFeedbackRecorded(
                    deal_id=d, follow_up_id=f.follow_up_id, csat=command.csat, nps=command.nps, comment=command.comment
                )
            ]
        case CompleteFollowUp():
            f = _open_follow_up(deal, command.follow_up_id)
            return [
                FollowUpCompleted(
                    deal_id=d,
                    follow_up_id=f.follow_up_id,
                    outcome=command.outcome,
                    next_opportunity=command.next_opportunity,
                )
            ]
        case FlagDeliveryRisk():
            return [
                DeliveryRiskFlagged(
                    deal_id=d, order_id=command.order_id, reason=command.reason, new_eta=command.new_eta
                )
            ]
        case EraseContact():
            if deal.contact_id is None:
                raise DealRuleError("no_contact", "the deal has no contact to erase")
            if deal.contact_erased:
                raise DealRuleError("contact_erased", "the deal's contact was erased already")
            return [DealContactErased(deal_id=d, contact_id=deal.contact_id, reason=command.reason, erased_at=now)]
    raise AssertionError(f"no decision for {command!r}")


def _quote(deal: Deal, quote_id: uuid.UUID) -> Quote:
    try:
        return deal.quotes[quote_id]
    except KeyError:
        raise InvalidCommandError("unknown_quote", f"the deal has no quote {quote_id}") from None


def _open_follow_up(deal: Deal, follow_up_id: uuid.UUID) -> FollowUp:
    f = deal.follow_ups.get(follow_up_id)
    if f is None:
        raise InvalidCommandError("unknown_follow_up", f"the deal has no follow-up {follow_up_id}")
    if f.completed:
        raise DealRuleError("follow_up_completed", f"follow-up {follow_up_id} is completed")
    return f


# ---------------------------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class SalesTarget:
    target_id: uuid.UUID | None = None
    owner_id: str | None = None
    team_id: str | None = None
    period: str = ""
    amount: Money | None = None


def evolve_target(state: SalesTarget, event: DomainEvent) -> SalesTarget:
    if isinstance(event, SalesTargetSet):
        return SalesTarget(event.target_id, event.owner_id, event.team_id, event.period, event.amount)
    return state


target_decider = Decider(initial=SalesTarget(), evolve=evolve_target)


class SetSalesTarget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    owner_id: Identifier | None = None
    team_id: Identifier | None = None
    period: Annotated[str, Field(pattern=r"^[12]\d{3}-(0[1-9]|1[0-2]|Q[1-4])$", examples=["2026-12", "2027-Q1"])]
    amount: MoneyField
    reason: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> SetSalesTarget:
        if (self.owner_id is None) == (self.team_id is None):
            raise ValueError("a target is for one owner or one team")
        if self.amount.amount <= 0:
            raise ValueError("a target is above zero")
        return self


def set_target(state: SalesTarget, target_id: uuid.UUID, cmd: SetSalesTarget) -> list[DomainEvent]:
    if state.target_id is not None and (state.owner_id, state.team_id, state.period) != (
        cmd.owner_id,
        cmd.team_id,
        cmd.period,
    ):
        raise DealRuleError("target_scope_fixed", "a target keeps its owner or team and period; set a new one")
    if state.amount == cmd.amount:
        return []
    return [
        SalesTargetSet(
            target_id=target_id,
            owner_id=cmd.owner_id,
            team_id=cmd.team_id,
            period=cmd.period,
            amount=cmd.amount,
            reason=cmd.reason,
        )
    ]


COMMANDS: dict[str, type[Command]] = {c.name: c for c in Command.__subclasses__()}


def state_as_json(deal: Deal) -> dict[str, Any]:
    """The deal as an API answer (personal data stays out: it lives in the events, sealed)."""
    return {
        "deal_id": str(deal.deal_id) if deal.deal_id else None,
        "status": deal.status.value,
        "pipeline_id": deal.pipeline_id,
        "stage": deal.stage.model_dump(mode="json") if deal.stage else None,
        "entered_stage_at": deal.entered_stage_at.isoformat() if deal.entered_stage_at else None,
        "opened_at": deal.opened_at.isoformat() if deal.opened_at else None,
        "closed_at": deal.closed_at.isoformat() if deal.closed_at else None,
        "title": deal.title,
        "customer": deal.customer,
        "owner_id": deal.owner_id,
        "team_id": deal.team_id,
        "value": deal.value.model_dump(mode="json"),
        "probability": format(deal.probability, "f"),
        "probability_overridden": deal.probability_override is not None,
        "weighted_value": deal.weighted_value.model_dump(mode="json"),
        "lines": [line.model_dump(mode="json") for line in deal.lines],
        "expected_close_date": deal.expected_close_date.isoformat() if deal.expected_close_date else None,
        "close_date_pushes": deal.close_date_pushes,
        "source_lead_id": str(deal.source_lead_id) if deal.source_lead_id else None,
        "source": deal.source,
        "quotes": [
            {
                "quote_id": str(q.quote_id),
                "version": q.version,
                "status": q.status,
                "total": q.total.model_dump(mode="json"),
                "valid_until": q.valid_until.isoformat(),
            }
            for q in deal.quotes.values()
        ],
        "follow_ups": [
            {
                "follow_up_id": str(f.follow_up_id),
                "kind": f.kind,
                "due_on": f.due_on.isoformat(),
                "order_id": str(f.order_id) if f.order_id else None,
                "completed": f.completed,
                "contacts": f.contacts,
                "csat": f.csat,
                "nps": f.nps,
            }
            for f in deal.follow_ups.values()
        ],
        "activities": deal.activities,
        "lost_reason": deal.lost_reason,
        "delivery_risk": deal.delivery_risk,
        "contact_erased": deal.contact_erased,
    }
