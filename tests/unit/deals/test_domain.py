"""Decisions that depend on a deal's history, as slices: given its past events → when a command → then the new
events, or a named refusal (testkit.slices; pure: a fixed clock, fixed ids)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from services.deals import domain as d
from services.deals.events import (
    CustomerFeedbackRecorded,
    DealEvent,
    DealLinesChanged,
    DealLost,
    DealReopened,
    DealWon,
    ExpectedCloseDateChanged,
    FollowUpCompleted,
    FollowUpStarted,
    ProductLine,
    QuoteAccepted,
    QuoteRejected,
    QuoteRevised,
    QuoteSent,
    StageChanged,
)
from shared.core.money import Money
from shared.edge.problems import status_of
from testkit.slices import Slice
from tests.unit.deals.test_rules import DEAL, LINE, NOW, OPENED, PIPELINE, run

Q = uuid.UUID("00000000-0000-0000-0000-0000000000a9")
F = uuid.UUID("00000000-0000-0000-0000-0000000000f9")
STAGE = {s.stage_id: d.snapshot(s) for s in PIPELINE.stages}


def deals_at(now: datetime) -> Slice[d.Deal]:
    return Slice(d.deal_decider, lambda deal, command: d.decide(deal, command, PIPELINE, now, DEAL))


DEALS = deals_at(NOW)
(OPENED_EVENT,) = run(d.Deal(), OPENED)  # in target_identified, 20,000,000 VND, no lines
WITH_LINE = DealLinesChanged(deal_id=DEAL, lines=(LINE,), value=Money.of(18_000_000))
WON = DealWon(
    deal_id=DEAL,
    value=Money.of(18_000_000),
    lines=(LINE,),
    quote_id=None,
    customer=OPENED.customer,
    owner_id=OPENED.owner_id,
    team_id=OPENED.team_id,
    stage_at_win=STAGE["target_identified"],
    opened_at=NOW,
    won_at=NOW,
    contact_id=OPENED.contact_id,
)
FOLLOW_UP = FollowUpStarted(
    deal_id=DEAL, follow_up_id=F, order_id=None, shipment_id=None, kind="satisfaction_check", due_on=date(2026, 12, 8)
)


def quote_sent(valid_until: date = date(2026, 12, 31)) -> QuoteSent:
    return QuoteSent(
        deal_id=DEAL, quote_id=Q, version=1, lines=(LINE,), total=Money.of(18_000_000), valid_until=valid_until
    )


def test_stage_change_carries_both_stages_as_they_were_and_what_was_skipped() -> None:
    forward = StageChanged(
        deal_id=DEAL,
        from_stage=STAGE["target_identified"],
        to_stage=STAGE["quote_sent"],
        direction="forward",
        skipped_stage_ids=("contacted", "needs_discussed"),
        entered_from_at=NOW,
        changed_at=NOW,
        note="jumped after the demo",
    )
    DEALS.given(OPENED_EVENT).when(d.MoveStage(stage_id="quote_sent", note="jumped after the demo")).then(forward)
    assert forward.to_stage.probability == Decimal("0.60")
    DEALS.given(OPENED_EVENT, forward).when(d.MoveStage(stage_id="contacted")).then(
        StageChanged(
            deal_id=DEAL,
            from_stage=STAGE["quote_sent"],
            to_stage=STAGE["contacted"],
            direction="backward",
            entered_from_at=NOW,
            changed_at=NOW,
        )
    )


@pytest.mark.parametrize(
    ("stage", "rule"),
    [("won", "use_win_or_lose"), ("lost", "use_win_or_lose"), ("target_identified", "already_in_stage")],
)
def test_moving_to_won_lost_or_the_same_stage_is_refused(stage: str, rule: str) -> None:
    refused = DEALS.given(OPENED_EVENT).when(d.MoveStage(stage_id=stage)).refused(rule)
    assert status_of(refused) == 409


def test_moving_to_a_stage_the_pipeline_lacks_is_invalid() -> None:
    refused = DEALS.given(OPENED_EVENT).when(d.MoveStage(stage_id="nowhere")).refused("unknown_stage")
    assert status_of(refused) == 422


def test_effective_probability_is_the_stage_value_unless_overridden() -> None:
    (moved,) = run(d.deal_decider.fold([OPENED_EVENT]), d.MoveStage(stage_id="negotiation"))
    deal = d.deal_decider.fold([OPENED_EVENT, moved])
    assert deal.probability == Decimal("0.80")
    assert deal.weighted_value == Money.of(16_000_000)
    deal = d.deal_decider.fold(run(deal, d.OverrideProbability(probability=Decimal("0.25"), reason="budget cut")), deal)
    assert deal.weighted_value == Money.of(5_000_000)


def test_a_won_deal_weighs_its_whole_value_and_a_lost_one_nothing() -> None:
    (moved,) = run(d.deal_decider.fold([OPENED_EVENT, WITH_LINE]), d.MoveStage(stage_id="negotiation"))
    open_deal = d.deal_decider.fold([OPENED_EVENT, WITH_LINE, moved])
    override = d.OverrideProbability(probability=Decimal("0.3"), reason="signed LOI")
    open_deal = d.deal_decider.fold(run(open_deal, override), open_deal)
    won = d.deal_decider.fold(run(open_deal, d.WinDeal()), open_deal)
    assert (won.status, won.probability, won.weighted_value) == (d.Status.WON, Decimal(1), won.value)
    lost = d.deal_decider.fold(run(open_deal, d.LoseDeal(reason="giá cao")), open_deal)
    assert (lost.status, lost.probability, lost.weighted_value) == (d.Status.LOST, Decimal(0), Money.of(0))
    reopened = d.deal_decider.fold(run(lost, d.ReopenDeal(reason="back", stage_id="contacted")), lost)
    assert reopened.probability == Decimal("0.3"), "reopened, the override counts again"


def test_close_date_pushes_are_counted_and_pull_ins_are_not() -> None:
    def changed(old: date | None, new: date, pushes: int) -> ExpectedCloseDateChanged:
        return ExpectedCloseDateChanged(deal_id=DEAL, old=old, new=new, push_count=pushes)

    history = (
        OPENED_EVENT,  # expected to close on 2026-12-20
        changed(date(2026, 12, 20), date(2027, 1, 10), 1),
        changed(date(2027, 1, 10), date(2026, 12, 1), 1),
        changed(date(2026, 12, 1), date(2027, 2, 1), 2),
    )
    DEALS.given(*history[:1]).when(d.ChangeCloseDate(expected_close_date=date(2027, 1, 10))).then(history[1])
    DEALS.given(*history[:2]).when(d.ChangeCloseDate(expected_close_date=date(2026, 12, 1))).then(history[2])
    DEALS.given(*history[:3]).when(d.ChangeCloseDate(expected_close_date=date(2027, 2, 1))).then(history[3])
    assert d.deal_decider.fold(history).close_date_pushes == 2
    DEALS.given(*history).when(d.ChangeCloseDate(expected_close_date=date(2027, 2, 1))).then()  # same date: nothing


def test_a_revision_supersedes_the_quote_and_winning_carries_its_lines() -> None:
    bigger = ProductLine(
        product="Tủ lạnh 300L", quantity=Decimal(3), unit_price=Money.of(9_000_000), discount_pct=Decimal(5)
    )
    rejected = QuoteRejected(deal_id=DEAL, quote_id=Q, version=1, reason="need 3 units")
    revised = QuoteRevised(
        deal_id=DEAL,
        quote_id=Q,
        version=2,
        lines=(bigger,),
        total=Money.of(25_650_000),  # 3 × 9,000,000 × 0.95
        valid_until=date(2027, 1, 5),
    )
    DEALS.given(OPENED_EVENT, quote_sent(), rejected).when(
        d.ReviseQuote(quote_id=Q, lines=(bigger,), valid_until=date(2027, 1, 5))
    ).then(revised)
    accepted = QuoteAccepted(deal_id=DEAL, quote_id=Q, version=2, total=Money.of(25_650_000))
    DEALS.given(OPENED_EVENT, quote_sent(), rejected, revised).when(d.AcceptQuote(quote_id=Q)).then(accepted)
    (won,) = (
        DEALS.given(OPENED_EVENT, quote_sent(), rejected, revised, accepted)
        .when(d.WinDeal(requested_delivery_date=date(2027, 1, 20)))
        .then_events()
    )
    assert isinstance(won, DealWon)
    assert (won.lines, won.value, won.quote_id) == ((bigger,), Money.of(25_650_000), Q)
    assert won.customer == "Điện máy An Phát"
    assert won.won_at == NOW


def test_a_deal_is_won_with_its_lines_and_not_without() -> None:
    refused = DEALS.given(OPENED_EVENT).when(d.WinDeal()).refused("lines_required")
    assert "production needs them" in refused.message
    DEALS.given(OPENED_EVENT).when(d.ChangeLines(lines=(LINE,))).then(WITH_LINE)
    DEALS.given(OPENED_EVENT, WITH_LINE).when(d.WinDeal()).then(WON)


def test_an_expired_quote_cannot_be_accepted() -> None:
    deals_at(NOW + timedelta(days=2)).given(OPENED_EVENT, quote_sent(valid_until=NOW.date())).when(
        d.AcceptQuote(quote_id=Q)
    ).refused("quote_expired")


def test_amounts_in_another_currency_are_refused() -> None:
    usd = ProductLine(product="Máy nén", quantity=Decimal(1), unit_price=Money.of("120.50", "USD"))
    DEALS.given(OPENED_EVENT).when(d.ChangeLines(lines=(usd,))).refused("currency_mismatch")
    refused = DEALS.given(OPENED_EVENT).when(d.ChangeLines(lines=(LINE, usd))).refused("currency_mismatch")
    assert "mix currencies" in refused.message


def test_reopening_a_lost_deal_returns_it_to_an_open_stage() -> None:
    lost = DealLost(
        deal_id=DEAL, reason="timing", stage_at_loss=STAGE["target_identified"], value=Money.of(20_000_000), lost_at=NOW
    )
    reopened = DealReopened(
        deal_id=DEAL, was="lost", to_stage=STAGE["contacted"], reason="budget approved", reopened_at=NOW
    )
    DEALS.given(OPENED_EVENT, lost).when(d.ReopenDeal(reason="budget approved", stage_id="contacted")).then(reopened)
    deal = d.deal_decider.fold([OPENED_EVENT, lost, reopened])
    assert deal.status == d.Status.OPEN
    assert deal.stage == STAGE["contacted"]
    assert deal.lost_reason is None


def test_follow_up_started_twice_by_a_reaction_is_one_follow_up() -> None:
    DEALS.given(OPENED_EVENT, WITH_LINE, WON).when(d.StartFollowUp(follow_up_id=F, due_on=date(2026, 12, 8))).then(
        FOLLOW_UP
    )
    DEALS.given(OPENED_EVENT, WITH_LINE, WON, FOLLOW_UP).when(
        d.StartFollowUp(follow_up_id=F, due_on=date(2026, 12, 8))
    ).then()


def test_a_completed_follow_up_takes_no_more_feedback() -> None:
    history: list[DealEvent] = [OPENED_EVENT, WITH_LINE, WON, FOLLOW_UP]
    DEALS.given(*history).when(d.RecordFeedback(follow_up_id=F, csat=4)).then(
        CustomerFeedbackRecorded(deal_id=DEAL, follow_up_id=F, csat=4)
    )
    done = FollowUpCompleted(deal_id=DEAL, follow_up_id=F, outcome="done")
    DEALS.given(*history, done).when(d.RecordFeedback(follow_up_id=F, csat=4)).refused("follow_up_completed")


def test_contact_details_need_a_data_subject() -> None:
    with pytest.raises(ValueError, match="contact_id"):
        d.OpenDeal(title="x", customer="y", owner_id="u", contact={"email": "a@b.vn"})
