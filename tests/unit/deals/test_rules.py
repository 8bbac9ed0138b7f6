"""The rule table, pair by pair: in each deal status, each command is allowed (and produces events) or refused
with a named rule. The expected table is written out here, independently of services.deals.domain.RULES."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.deals import domain as d
from services.deals.events import ActivityType, Channel, ProductLine, StageKind
from shared.core.money import Money
from shared.edge.problems import status_of

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DEAL = uuid.UUID("00000000-0000-0000-0000-00000000d001")
Q1 = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
F1 = uuid.UUID("00000000-0000-0000-0000-0000000000f1")
F2 = uuid.UUID("00000000-0000-0000-0000-0000000000f2")
Q2 = uuid.UUID("00000000-0000-0000-0000-0000000000a2")
A1 = uuid.UUID("00000000-0000-0000-0000-0000000000c1")
ORDER = uuid.UUID("00000000-0000-0000-0000-0000000000b1")
PIPELINE = d.Pipeline(d.DEFAULT_PIPELINE_ID, "Sales", 1, d.DEFAULT_STAGES)
LINE = ProductLine(product="Tủ lạnh 300L", quantity=Decimal(2), unit_price=Money.of(9_000_000))


def run(state: d.Deal, command: d.Command) -> list:
    return d.decide(state, command, PIPELINE, NOW, DEAL)


def build(*commands: d.Command) -> d.Deal:
    state = d.Deal()
    for c in commands:
        state = d.deal_decider.fold(run(state, c), state)
    return state


OPENED = d.OpenDeal(
    title="Tủ lạnh cho chuỗi cửa hàng",
    customer="Điện máy An Phát",
    owner_id="u-sales",
    team_id="north",
    value=Money.of(20_000_000),
    expected_close_date=date(2026, 12, 20),
    contact_id="c-42",
)
QUOTED = d.SendQuote(quote_id=Q1, lines=(LINE,), valid_until=date(2026, 12, 31))
STATES = {
    "none": d.Deal(),
    "open": build(OPENED, QUOTED, d.OverrideProbability(probability=Decimal("0.5"), reason="CEO met them")),
    "won": build(
        OPENED,
        QUOTED,
        d.WinDeal(quote_id=Q1),
        d.StartFollowUp(follow_up_id=F1, due_on=date(2026, 12, 5), order_id=ORDER),
    ),
    "lost": build(OPENED, d.LoseDeal(reason="price", competitor="Rival Co")),
}
COMMANDS: dict[str, d.Command] = {
    "open_deal": OPENED,
    "move_stage": d.MoveStage(stage_id="negotiation"),
    "change_value": d.ChangeValue(value=Money.of(25_000_000)),
    "change_lines": d.ChangeLines(lines=(LINE,)),
    "change_close_date": d.ChangeCloseDate(expected_close_date=date(2027, 1, 15)),
    "override_probability": d.OverrideProbability(probability=Decimal("0.7"), reason="signed LOI"),
    "clear_probability_override": d.ClearProbabilityOverride(),
    "reassign": d.Reassign(owner_id="u-other", team_id="north"),
    "log_activity": d.LogActivity(activity_id=A1, activity_type=ActivityType.MEETING, channel=Channel.MEETING),
    "record_needs": d.RecordNeeds(needs=("giao hàng trong 2 tuần",)),
    "send_quote": d.SendQuote(quote_id=Q2, lines=(LINE,), valid_until=date(2026, 12, 31)),
    "revise_quote": d.ReviseQuote(quote_id=Q1, lines=(LINE,), valid_until=date(2027, 1, 10)),
    "accept_quote": d.AcceptQuote(quote_id=Q1),
    "reject_quote": d.RejectQuote(quote_id=Q1, reason="too expensive"),
    "win": d.WinDeal(quote_id=Q1),
    "lose": d.LoseDeal(reason="no budget"),
    "reopen": d.ReopenDeal(reason="customer came back"),
    "start_follow_up": d.StartFollowUp(follow_up_id=F2, due_on=date(2026, 12, 10)),
    "reschedule_follow_up": d.RescheduleFollowUp(follow_up_id=F1, due_on=date(2026, 12, 9), reason="delivered late"),
    "record_follow_up_contact": d.RecordFollowUpContact(follow_up_id=F1, channel=Channel.PHONE),
    "record_feedback": d.RecordFeedback(follow_up_id=F1, csat=5),
    "complete_follow_up": d.CompleteFollowUp(follow_up_id=F1, outcome="happy customer"),
    "flag_delivery_risk": d.FlagDeliveryRisk(order_id=ORDER, reason="material shortage"),
    "erase_contact": d.EraseContact(reason="data subject request"),
    "link_customer": d.LinkCustomer(organisation_id=uuid.UUID(int=0x0A), person_ids=(uuid.UUID(int=0x0B),)),
}
A = "allowed"
# status:          none               open               won                lost
TABLE = {
    "open_deal": (A, "deal_exists", "deal_exists", "deal_exists"),
    "move_stage": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "change_value": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "change_lines": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "change_close_date": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "override_probability": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "clear_probability_override": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "reassign": ("deal_not_found", A, A, A),
    "log_activity": ("deal_not_found", A, A, "deal_closed"),
    "record_needs": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "send_quote": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "revise_quote": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "accept_quote": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "reject_quote": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "win": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "lose": ("deal_not_found", A, "deal_closed", "deal_closed"),
    "reopen": ("deal_not_found", "deal_not_closed", A, A),
    "start_follow_up": ("deal_not_found", "deal_not_won", A, "deal_not_won"),
    "reschedule_follow_up": ("deal_not_found", "deal_not_won", A, "deal_not_won"),
    "record_follow_up_contact": ("deal_not_found", "deal_not_won", A, "deal_not_won"),
    "record_feedback": ("deal_not_found", "deal_not_won", A, "deal_not_won"),
    "complete_follow_up": ("deal_not_found", "deal_not_won", A, "deal_not_won"),
    "flag_delivery_risk": ("deal_not_found", A, A, "deal_closed"),
    "erase_contact": ("deal_not_found", A, A, A),
    "link_customer": ("deal_not_found", A, A, A),
}
PAIRS = [(s, c, TABLE[c][i]) for c in TABLE for i, s in enumerate(("none", "open", "won", "lost"))]


def test_the_table_covers_every_command_and_matches_the_code() -> None:
    assert set(TABLE) == set(d.RULES) == set(COMMANDS)
    for command, row in TABLE.items():
        allowed = {s for s, outcome in zip(("none", "open", "won", "lost"), row, strict=True) if outcome == A}
        assert {s.value for s in d.RULES[command]} == allowed, command


@pytest.mark.parametrize(("status", "command", "expected"), PAIRS, ids=[f"{s}-{c}" for s, c, _ in PAIRS])
def test_rule(status: str, command: str, expected: str) -> None:
    state = STATES[status]
    assert state.status.value == status
    if expected == A:
        events = run(state, COMMANDS[command])
        assert events, f"{command} on a {status} deal should produce events"
        assert all(e.deal_id == DEAL for e in events)
    else:
        with pytest.raises(d.DealRuleError) as refused:
            run(state, COMMANDS[command])
        assert refused.value.rule == expected
        assert status_of(refused.value) == (404 if expected == "deal_not_found" else 409)
        assert str(refused.value)


def test_pipeline_default_has_seed_001s_steps() -> None:
    ids = [s.stage_id for s in PIPELINE.open_stages()]
    assert ids == ["target_identified", "contacted", "needs_discussed", "quote_sent", "negotiation"]
    assert PIPELINE.of_kind(StageKind.WON).probability == 1
    assert PIPELINE.of_kind(StageKind.LOST).probability == 0
