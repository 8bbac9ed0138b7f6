"""What a command decides on a deal: ``decide`` checks the rule table (``rules``), then hands the command to its
named decision, one per command. Each returns the new events or raises a ``DealRuleError`` naming the rule;
``now``, the pipeline and the deal's id come in."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, tzinfo

from services.deals.domain.amounts import lines_total, same_currency
from services.deals.domain.commands import (
    AcceptQuote,
    ChangeCloseDate,
    ChangeLines,
    ChangeValue,
    ClearProbabilityOverride,
    Command,
    CompleteFollowUp,
    EraseContact,
    FlagDeliveryRisk,
    LinkCustomer,
    LogActivity,
    LoseDeal,
    MoveStage,
    OpenDeal,
    OverrideProbability,
    Reassign,
    RecordFeedback,
    RecordFollowUpContact,
    RecordNeeds,
    RejectQuote,
    ReopenDeal,
    RescheduleFollowUp,
    ReviseQuote,
    SendQuote,
    StartFollowUp,
    WinDeal,
)
from services.deals.domain.customer_link import link_customer, opening_link
from services.deals.domain.deal import Deal
from services.deals.domain.errors import DealRuleError, InvalidCommandError
from services.deals.domain.pipeline import Pipeline, snapshot
from services.deals.domain.rules import check_allowed
from services.deals.events import (
    ActivityLogged,
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
    QuoteAccepted,
    QuoteRejected,
    QuoteRevised,
    QuoteSent,
    StageChanged,
    StageKind,
)
from shared.core.money import Money


# ---------------------------------------------------------------------------------------------- the dispatcher
def decide(  # noqa: C901 - a flat table: one arm per command
    deal: Deal, command: Command, pipeline: Pipeline, now: datetime, deal_id: uuid.UUID, *, tz: tzinfo = UTC
) -> list[DealEvent]:
    """The events a command produces on a deal, or the rule it breaks; ``tz``: the business zone dates are in."""
    check_allowed(deal, command)
    d = deal_id
    match command:
        case OpenDeal():
            return open_deal(deal, command, pipeline, now, d)
        case MoveStage():
            return move_stage(deal, command, pipeline, now, d)
        case ChangeValue():
            return change_value(deal, command, d)
        case ChangeLines():
            return change_lines(deal, command, d)
        case ChangeCloseDate():
            return change_close_date(deal, command, d)
        case OverrideProbability():
            return override_probability(command, d)
        case ClearProbabilityOverride():
            return clear_probability_override(deal, command, d)
        case Reassign():
            return reassign(deal, command, d)
        case LinkCustomer():
            return link_customer(deal, command, d)
        case LogActivity():
            return log_activity(deal, command, d)
        case RecordNeeds():
            return record_needs(command, d)
        case SendQuote():
            return send_quote(deal, command, now, d)
        case ReviseQuote():
            return revise_quote(deal, command, now, d)
        case AcceptQuote():
            return accept_quote(deal, command, now, d)
        case RejectQuote():
            return reject_quote(deal, command, d)
        case WinDeal():
            return win(deal, command, now, d, tz)
        case LoseDeal():
            return lose(deal, command, now, d)
        case ReopenDeal():
            return reopen(deal, command, pipeline, now, d)
        case StartFollowUp():
            return start_follow_up(deal, command, d)
        case RescheduleFollowUp():
            return reschedule_follow_up(deal, command, d)
        case RecordFollowUpContact():
            return record_follow_up_contact(deal, command, d)
        case RecordFeedback():
            return record_feedback(deal, command, d)
        case CompleteFollowUp():
            return complete_follow_up(deal, command, d)
        case FlagDeliveryRisk():
            return flag_delivery_risk(command, d)
        case EraseContact():
            return erase_contact(deal, command, now, d)
    raise AssertionError(f"no decision for {command!r}")


# ---------------------------------------------------------------------------------------------- opening and stages
def open_deal(deal: Deal, command: OpenDeal, pipeline: Pipeline, now: datetime, d: uuid.UUID) -> list[DealEvent]:
    """The deal opens; linked to its customer after the opening when the command (or a conversion's link that came
    first) names one (``customer_link.opening_link``)."""
    if not pipeline.exists:
        raise InvalidCommandError("unknown_pipeline", f"no pipeline {command.pipeline_id!r}")
    stage = pipeline.stage(command.stage_id) if command.stage_id else pipeline.open_stages()[0]
    if stage.kind != StageKind.OPEN:
        raise DealRuleError("use_win_or_lose", "a deal opens in an open stage")
    value = command.value
    if command.lines:
        total = lines_total(command.lines, "the lines")
        if value is not None and value != total:
            raise DealRuleError("value_differs_from_lines", f"value {value} differs from the lines' {total}")
        value = total
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
        ),
        *opening_link(deal, command, d),
    ]


def move_stage(deal: Deal, command: MoveStage, pipeline: Pipeline, now: datetime, d: uuid.UUID) -> list[DealEvent]:
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


# ---------------------------------------------------------------------------------------------- terms
def change_value(deal: Deal, command: ChangeValue, d: uuid.UUID) -> list[DealEvent]:
    same_currency(deal.value.currency, [command.value], "the new value")
    if command.value.amount < 0:
        raise DealRuleError("negative_value", "a deal's value cannot be negative")
    if deal.lines:
        raise DealRuleError("value_from_lines", "this deal's value is the total of its lines: change the lines")
    if command.value == deal.value:
        return []
    return [DealValueChanged(deal_id=d, old=deal.value, new=command.value, reason=command.reason)]


def change_lines(deal: Deal, command: ChangeLines, d: uuid.UUID) -> list[DealEvent]:
    total = lines_total(command.lines, "the lines")
    same_currency(deal.value.currency, [total], "the lines")
    if command.lines == deal.lines:
        return []
    return [DealLinesChanged(deal_id=d, lines=command.lines, value=total, reason=command.reason)]


def change_close_date(deal: Deal, command: ChangeCloseDate, d: uuid.UUID) -> list[DealEvent]:
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


def override_probability(command: OverrideProbability, d: uuid.UUID) -> list[DealEvent]:
    return [DealProbabilityOverridden(deal_id=d, probability=command.probability, reason=command.reason)]


def clear_probability_override(deal: Deal, command: ClearProbabilityOverride, d: uuid.UUID) -> list[DealEvent]:
    if deal.probability_override is None:
        raise DealRuleError("no_override", "the deal's probability is not overridden")
    return [DealProbabilityOverrideCleared(deal_id=d, reason=command.reason)]


def reassign(deal: Deal, command: Reassign, d: uuid.UUID) -> list[DealEvent]:
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


# ---------------------------------------------------------------------------------------------- selling
def log_activity(deal: Deal, command: LogActivity, d: uuid.UUID) -> list[DealEvent]:
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


def record_needs(command: RecordNeeds, d: uuid.UUID) -> list[DealEvent]:
    return [
        CustomerNeedsRecorded(
            deal_id=d,
            needs=command.needs,
            budget=command.budget,
            decision_date=command.decision_date,
            note=command.note,
        )
    ]


def send_quote(deal: Deal, command: SendQuote, now: datetime, d: uuid.UUID) -> list[DealEvent]:
    if command.quote_id in deal.quotes:
        raise DealRuleError("quote_exists", f"quote {command.quote_id} was already sent: revise it")
    total = lines_total(command.lines, "the quote's lines")
    same_currency(deal.value.currency, [total], "the quote")
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


def revise_quote(deal: Deal, command: ReviseQuote, now: datetime, d: uuid.UUID) -> list[DealEvent]:
    quote = deal.quote(command.quote_id)
    if quote.status == "accepted":
        raise DealRuleError("quote_accepted", "an accepted quote cannot be revised: send a new one")
    total = lines_total(command.lines, "the quote's lines")
    same_currency(deal.value.currency, [total], "the quote")
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


def accept_quote(deal: Deal, command: AcceptQuote, now: datetime, d: uuid.UUID) -> list[DealEvent]:
    quote = deal.quote(command.quote_id)
    if quote.status != "sent":
        raise DealRuleError("quote_not_open", f"quote {quote.quote_id} is {quote.status}")
    if quote.valid_until < now.date():
        raise DealRuleError("quote_expired", f"quote {quote.quote_id} expired on {quote.valid_until}")
    if (other := deal.accepted_quote()) is not None:
        raise DealRuleError("other_quote_accepted", f"quote {other.quote_id} is already accepted")
    return [QuoteAccepted(deal_id=d, quote_id=quote.quote_id, version=quote.version, total=quote.total)]


def reject_quote(deal: Deal, command: RejectQuote, d: uuid.UUID) -> list[DealEvent]:
    quote = deal.quote(command.quote_id)
    if quote.status != "sent":
        raise DealRuleError("quote_not_open", f"quote {quote.quote_id} is {quote.status}")
    return [QuoteRejected(deal_id=d, quote_id=quote.quote_id, version=quote.version, reason=command.reason)]


# ---------------------------------------------------------------------------------------------- closing
def win(deal: Deal, command: WinDeal, now: datetime, d: uuid.UUID, tz: tzinfo = UTC) -> list[DealEvent]:
    assert deal.stage is not None
    assert deal.opened_at is not None
    # winning with a named quote signs it (sent or accepted); without one, the accepted quote or the lines
    chosen = deal.quote(command.quote_id) if command.quote_id else deal.accepted_quote()
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
        raise DealRuleError("contact_required", "a delivery address needs the deal's contact (its data subject)")
    if command.delivery_address is not None and deal.contact_erased:
        raise DealRuleError("contact_erased", "the deal's contact was erased: no address is kept for them")
    check_delivery_date(command.requested_delivery_date, now, tz)
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


def check_delivery_date(day: date | None, now: datetime, tz: tzinfo) -> None:
    """The order's due date, never before the command's time (as production's ``change-due-date``): ``now`` is the
    occurred time of a back-dated or imported win, not the wall clock; the day is the business zone's."""
    if day is not None and day < (today := now.astimezone(tz).date()):
        raise DealRuleError("delivery_date_past", f"the requested delivery date {day} is before the win's day {today}")


def lose(deal: Deal, command: LoseDeal, now: datetime, d: uuid.UUID) -> list[DealEvent]:
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


def reopen(deal: Deal, command: ReopenDeal, pipeline: Pipeline, now: datetime, d: uuid.UUID) -> list[DealEvent]:
    stage = pipeline.stage(command.stage_id) if command.stage_id else pipeline.open_stages()[0]
    if stage.kind != StageKind.OPEN:
        raise DealRuleError("use_win_or_lose", "a deal reopens in an open stage")
    return [
        DealReopened(deal_id=d, was=deal.status.value, to_stage=snapshot(stage), reason=command.reason, reopened_at=now)
    ]


# ---------------------------------------------------------------------------------------------- after the sale
def start_follow_up(deal: Deal, command: StartFollowUp, d: uuid.UUID) -> list[DealEvent]:
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


def reschedule_follow_up(deal: Deal, command: RescheduleFollowUp, d: uuid.UUID) -> list[DealEvent]:
    f = deal.open_follow_up(command.follow_up_id)
    if f.due_on == command.due_on:
        return []
    return [FollowUpDueChanged(deal_id=d, follow_up_id=f.follow_up_id, due_on=command.due_on, reason=command.reason)]


def record_follow_up_contact(deal: Deal, command: RecordFollowUpContact, d: uuid.UUID) -> list[DealEvent]:
    f = deal.open_follow_up(command.follow_up_id)
    return [FollowUpContactRecorded(deal_id=d, follow_up_id=f.follow_up_id, channel=command.channel, note=command.note)]


def record_feedback(deal: Deal, command: RecordFeedback, d: uuid.UUID) -> list[DealEvent]:
    f = deal.open_follow_up(command.follow_up_id)
    return [
        CustomerFeedbackRecorded(
            deal_id=d, follow_up_id=f.follow_up_id, csat=command.csat, nps=command.nps, comment=command.comment
        )
    ]


def complete_follow_up(deal: Deal, command: CompleteFollowUp, d: uuid.UUID) -> list[DealEvent]:
    f = deal.open_follow_up(command.follow_up_id)
    return [
        FollowUpCompleted(
            deal_id=d, follow_up_id=f.follow_up_id, outcome=command.outcome, next_opportunity=command.next_opportunity
        )
    ]


def flag_delivery_risk(command: FlagDeliveryRisk, d: uuid.UUID) -> list[DealEvent]:
    return [DeliveryRiskFlagged(deal_id=d, order_id=command.order_id, reason=command.reason, new_eta=command.new_eta)]


def erase_contact(deal: Deal, command: EraseContact, now: datetime, d: uuid.UUID) -> list[DealEvent]:
    if deal.contact_id is None:
        raise DealRuleError("no_contact", "the deal has no contact to erase")
    if deal.contact_erased:
        raise DealRuleError("contact_erased", "the deal's contact was erased already")
    return [DealContactErased(deal_id=d, contact_id=deal.contact_id, reason=command.reason, erased_at=now)]
