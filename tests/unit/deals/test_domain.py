"""Given past events → decide → new events or a named refusal (pure: fixed clock, fixed ids)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.deals import domain as d
from services.deals.events import DealWon, ProductLine, QuoteRevised, StageChanged
from shared.core.money import Money
from shared.edge.problems import status_of
from tests.unit.deals.test_rules import DEAL, LINE, NOW, OPENED, PIPELINE, build, run


def test_stage_change_carries_both_stages_as_they_were_and_what_was_skipped() -> None:
    deal = build(OPENED)
    (event,) = run(deal, d.MoveStage(stage_id="quote_sent", note="jumped after the demo"))
    assert isinstance(event, StageChanged)
    assert (event.from_stage.stage_id, event.to_stage.stage_id) == ("target_identified", "quote_sent")
    assert event.to_stage.probability == Decimal("0.60")
    assert event.direction == "forward"
    assert event.skipped_stage_ids == ("contacted", "needs_discussed")
    assert event.entered_from_at == NOW
    back = d.deal_decider.fold([event], deal)
    (event,) = run(back, d.MoveStage(stage_id="contacted"))
    assert event.direction == "backward"
    assert event.skipped_stage_ids == ()


def test_moving_to_won_lost_or_the_same_stage_is_refused() -> None:
    deal = build(OPENED)
    for stage, rule in (
        ("won", "use_win_or_lose"),
        ("lost", "use_win_or_lose"),
        ("target_identified", "already_in_stage"),
    ):
        with pytest.raises(d.DealRuleError) as e:
            run(deal, d.MoveStage(stage_id=stage))
        assert e.value.rule == rule
    with pytest.raises(d.InvalidCommandError) as e:
        run(deal, d.MoveStage(stage_id="nowhere"))
    assert (e.value.rule, status_of(e.value)) == ("unknown_stage", 422)


def test_effective_probability_is_the_stage_value_unless_overridden() -> None:
    deal = build(OPENED, d.MoveStage(stage_id="negotiation"))
    assert deal.probability == Decimal("0.80")
    assert deal.weighted_value == Money.of(16_000_000)
    deal = d.deal_decider.fold(run(deal, d.OverrideProbability(probability=Decimal("0.25"), reason="budget cut")), deal)
    assert deal.weighted_value == Money.of(5_000_000)


def test_close_date_pushes_are_counted_and_pull_ins_are_not() -> None:
    deal = build(
        OPENED,
        d.ChangeCloseDate(expected_close_date=date(2027, 1, 10)),
        d.ChangeCloseDate(expected_close_date=date(2026, 12, 1)),
        d.ChangeCloseDate(expected_close_date=date(2027, 2, 1)),
    )
    assert deal.close_date_pushes == 2
    assert run(deal, d.ChangeCloseDate(expected_close_date=date(2027, 2, 1))) == [], "same date: nothing happens"


def test_a_revision_supersedes_the_quote_and_winning_carries_its_lines() -> None:
    q = uuid.uuid4()
    bigger = ProductLine(
        product="Tủ lạnh 300L", quantity=Decimal(3), unit_price=Money.of(9_000_000), discount_pct=Decimal(5)
    )
    deal = build(
        OPENED,
        d.SendQuote(quote_id=q, lines=(LINE,), valid_until=date(2026, 12, 31)),
        d.RejectQuote(quote_id=q, reason="need 3 units"),
    )
    (revised,) = run(deal, d.ReviseQuote(quote_id=q, lines=(bigger,), valid_until=date(2027, 1, 5)))
    assert isinstance(revised, QuoteRevised)
    assert revised.version == 2
    assert revised.total == Money.of(25_650_000)  # 3 × 9,000,000 × 0.95
    deal = build(
        OPENED,
        d.SendQuote(quote_id=q, lines=(LINE,), valid_until=date(2026, 12, 31)),
        d.RejectQuote(quote_id=q, reason="need 3 units"),
        d.ReviseQuote(quote_id=q, lines=(bigger,), valid_until=date(2027, 1, 5)),
        d.AcceptQuote(quote_id=q),
    )
    (won,) = run(deal, d.WinDeal(requested_delivery_date=date(2027, 1, 20)))
    assert isinstance(won, DealWon)
    assert (won.lines, won.value, won.quote_id) == ((bigger,), Money.of(25_650_000), q)
    assert won.customer == "Điện máy An Phát"
    assert won.won_at == NOW


def test_a_deal_without_lines_cannot_be_won_and_expired_quotes_cannot_be_accepted() -> None:
    with pytest.raises(d.DealRuleError, match="production needs them"):
        run(build(OPENED), d.WinDeal())
    q = uuid.uuid4()
    deal = build(OPENED, d.SendQuote(quote_id=q, lines=(LINE,), valid_until=NOW.date()))
    with pytest.raises(d.DealRuleError) as e:
        d.decide(deal, d.AcceptQuote(quote_id=q), PIPELINE, NOW + timedelta(days=2), DEAL)
    assert e.value.rule == "quote_expired"


def test_amounts_in_another_currency_are_refused() -> None:
    usd = ProductLine(product="Máy nén", quantity=Decimal(1), unit_price=Money.of("120.50", "USD"))
    with pytest.raises(d.DealRuleError) as e:
        run(build(OPENED), d.ChangeLines(lines=(usd,)))
    assert e.value.rule == "currency_mismatch"
    with pytest.raises(d.DealRuleError) as e:
        run(build(OPENED), d.ChangeLines(lines=(LINE, usd)))
    assert "mix currencies" in str(e.value)


def test_reopening_a_lost_deal_returns_it_to_an_open_stage() -> None:
    deal = build(
        OPENED,
        d.LoseDeal(reason="timing", competitor=None),
        d.ReopenDeal(reason="budget approved", stage_id="contacted"),
    )
    assert deal.status == d.Status.OPEN
    assert deal.stage.stage_id == "contacted"
    assert deal.lost_reason is None


def test_follow_up_started_twice_by_a_reaction_is_one_follow_up() -> None:
    f = uuid.uuid4()
    deal = build(
        OPENED, d.ChangeLines(lines=(LINE,)), d.WinDeal(), d.StartFollowUp(follow_up_id=f, due_on=date(2026, 12, 8))
    )
    assert run(deal, d.StartFollowUp(follow_up_id=f, due_on=date(2026, 12, 8))) == []
    deal = build(
        OPENED,
        d.ChangeLines(lines=(LINE,)),
        d.WinDeal(),
        d.StartFollowUp(follow_up_id=f, due_on=date(2026, 12, 8)),
        d.CompleteFollowUp(follow_up_id=f, outcome="done"),
    )
    with pytest.raises(d.DealRuleError) as e:
        run(deal, d.RecordFeedback(follow_up_id=f, csat=4))
    assert e.value.rule == "follow_up_completed"


def test_contact_details_need_a_data_subject() -> None:
    with pytest.raises(ValueError, match="contact_id"):
        d.OpenDeal(title="x", customer="y", owner_id="u", contact={"email": "a@b.vn"})
