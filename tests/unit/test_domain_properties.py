"""Property tests of the three domains' invariants under random command sequences (Hypothesis, derandomized).

Commands are built from each domain's own command models: a field takes a value from a small pool (so that
commands meet each other: the same quote, shipment and product ids come back), the model validates it, and a
command the model refuses is skipped, as the API would answer 422. Every command then runs against the state
the ones before it made. A refused command must raise the domain's RuleError with a stable ``rule`` and change
nothing; any other exception is a bug. After each accepted one:

- deals (through the handler on the in-memory store): a closed deal's terms change only by reopening it; values,
  line quantities and totals, quote totals are never negative; the stream's versions are 1..n without gaps, and
  folding the stream gives the state the commands made step by step;
- leads: the status moves only along the lead's status machine;
- production: an order's stage moves only as the domain allows (a hold returns to the stage it left), its
  quantities are never negative and each step of the flow holds no more than the one before it.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from services.deals import domain as deals
from services.deals.handlers import Deals, deal_stream
from services.leads import domain as leads
from services.leads import events as leads_events
from services.production import domain as production
from shared.core.decider import RuleError
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
RULE = re.compile(r"^[a-z][a-z_]*[a-z]$")
PROPERTIES = settings(
    max_examples=100, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)
STEPS = 40  # commands per sequence


def fixed_ids(n: int, seed: str) -> list[uuid.UUID]:
    return [uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}-{i}") for i in range(n)]


# ---------------------------------------------------------------------------------------------- building commands
TEXT = st.sampled_from(["x", "Tủ đông 500L", "khách hẹn lại"])
DAYS = st.integers(-30, 400).map(lambda d: NOW.date() + timedelta(days=d))
# Mostly ordinary values, sometimes a zero, a negative, a fraction or a huge one.
ODD = [Decimal(0), Decimal(-1), Decimal("0.5"), Decimal("1e17")]
SMALL = st.sampled_from([Decimal(i) for i in range(1, 7)] * 4 + ODD)


def money(currencies: tuple[str, ...] = ("VND",) * 5 + ("USD",)) -> st.SearchStrategy[dict[str, Any]]:
    amounts = st.sampled_from([1000, 250000, 10**9] * 4 + [0, -1000, 10**21, -(10**21)])
    return st.fixed_dictionaries({"amount": amounts.map(str), "currency": st.sampled_from(currencies)})


@st.composite
def command(draw: st.DrawFn, models: list[type[BaseModel]], pools: dict[str, st.SearchStrategy[Any]]) -> Any:
    """One command of a random model, or None when its model refuses the drawn fields."""
    model = draw(st.sampled_from(models))
    data: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        if name not in pools:
            assert not f.is_required(), f"no pool for the required field {model.__name__}.{name}"
            continue
        if f.is_required() or draw(st.booleans()):
            data[name] = draw(pools[name])
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def next_command(
    data: st.DataObject, models: list[type[BaseModel]], pools: dict[str, st.SearchStrategy[Any]], allowed: set[str]
) -> Any:
    """Mostly a command the state allows (by the domain's RULES table), sometimes any: deep states get reached
    and refusals still tried."""
    fitting = [m for m in models if getattr(m, "name", None) in allowed - SIDEWAYS]
    return data.draw(command(fitting if fitting and data.draw(st.integers(0, 4)) else models, pools))


# Commands that end a story early or only go sideways: drawn less often, so that deep states get reached.
SIDEWAYS = {"cancel", "erase", "merge_into", "hold", "change_due_date", "report_shortage", "lose", "reassign"}


def allowed_by(rules: dict[str, frozenset[Any]], status: Any) -> set[str]:
    return {name for name, statuses in rules.items() if status in statuses}


def check_refusal(exc: RuleError) -> None:
    assert RULE.match(exc.rule), f"unstable rule name {exc.rule!r}"
    assert exc.message


# ---------------------------------------------------------------------------------------------- deals
QUOTES = fixed_ids(2, "quote")
FOLLOW_UPS = fixed_ids(2, "follow-up")
STAGES = [s.stage_id for s in deals.DEFAULT_STAGES] + ["nowhere"]
LINE = st.fixed_dictionaries(
    {
        "product": st.sampled_from(["Tủ đông", "Tủ mát"]),
        "quantity": SMALL.map(str),
        "unit_price": money(),
    },
    optional={"discount_pct": st.sampled_from(["0", "10", "10", "100", "101", "-5"])},
)
DEAL_POOLS: dict[str, st.SearchStrategy[Any]] = {
    "title": TEXT,
    "customer": TEXT,
    "owner_id": st.sampled_from(["u-lan", "u-minh"]),
    "team_id": st.sampled_from([None, "north", "south"]),
    "stage_id": st.sampled_from(STAGES),
    "value": money(),
    "budget": money(),
    "lines": st.lists(LINE, max_size=3).map(tuple),
    "expected_close_date": DAYS,
    "reason": TEXT,
    "note": TEXT,
    "probability": st.sampled_from(["0", "0.35", "1", "1.5", "-0.1"]),
    "activity_type": st.sampled_from(list(deals.ActivityType)),
    "channel": st.sampled_from(list(deals.Channel)),
    "direction": st.sampled_from(["outbound", "inbound"]),
    "duration_minutes": st.integers(-1, 120),
    "outcome": TEXT,
    "needs": st.lists(TEXT, max_size=2).map(tuple),
    "decision_date": DAYS,
    "quote_id": st.sampled_from(QUOTES),
    "valid_until": DAYS,
    "offer": TEXT,
    "requested_delivery_date": DAYS,
    "competitor": TEXT,
    "follow_up_id": st.sampled_from(FOLLOW_UPS),
    "kind": st.sampled_from(["satisfaction_check", "onboarding", "next_opportunity"]),
    "due_on": DAYS,
    "order_id": st.just(uuid.UUID(int=7)),
    "csat": st.integers(0, 6),
    "nps": st.integers(-1, 11),
    "comment": TEXT,
    "next_opportunity": st.booleans(),
    "organisation_id": st.sampled_from([uuid.UUID(int=0xA1), uuid.UUID(int=0xA2)]),
    "person_ids": st.lists(st.sampled_from([uuid.UUID(int=0xB1), uuid.UUID(int=0xB2)]), max_size=2).map(tuple),
    "new_eta": DAYS,
    "activity_id": st.uuids(),
}
DEAL_MODELS: list[type[BaseModel]] = sorted(deals.Command.__subclasses__(), key=lambda c: c.__name__)
# What a closed deal keeps until it is reopened.
TERMS = ("status", "stage", "value", "lines", "expected_close_date", "probability_override", "quotes", "closed_at")


def deal_amounts(d: deals.Deal) -> Iterator[Decimal]:
    yield d.value.amount
    for line in d.lines:
        yield line.quantity
        yield line.total().amount
    for q in d.quotes.values():
        yield q.total.amount
        yield from (line.quantity for line in q.lines)


def run(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    return loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop of this module's own (Hypothesis runs the examples synchronously)."""
    own = asyncio.new_event_loop()
    yield own
    own.close()


def test_deals_closed_deals_keep_their_terms_amounts_stay_positive_and_streams_have_no_gaps(
    loop: asyncio.AbstractEventLoop,
) -> None:
    @PROPERTIES
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        run(loop, deal_scenario(data))

    prop()


async def deal_scenario(data: st.DataObject) -> None:
    store = InMemoryEventStore()
    handler = Deals(store, lambda: NOW)
    await handler.ensure_default_pipeline()
    deal_id = uuid.UUID(int=1)
    for _ in range(STEPS):
        before = await handler.latest(deal_id)
        cmd = next_command(data, DEAL_MODELS, DEAL_POOLS, allowed_by(deals.RULES, before.state.status))
        if cmd is None:
            continue
        try:
            result = await handler.handle(deal_id, cmd, Context(actor="u-lan"))
        except RuleError as exc:
            check_refusal(exc)
            after = await handler.latest(deal_id)
            assert (after.state, after.version) == (before.state, before.version), f"{cmd!r} refused but changed"
            continue
        state = result.state
        if before.state.status in (deals.Status.WON, deals.Status.LOST) and not isinstance(cmd, deals.ReopenDeal):
            changed = [t for t in TERMS if getattr(state, t) != getattr(before.state, t)]
            assert changed == [], f"{cmd!r} changed a closed deal's {changed}"
        assert all(a >= 0 for a in deal_amounts(state)), f"a negative amount after {cmd!r}: {state}"
        recorded = await store.read_stream(deal_stream(deal_id))
        assert [r.version for r in recorded] == list(range(1, len(recorded) + 1))
        assert result.version == len(recorded)
        positions = [r.position for r in recorded]
        assert positions == sorted(set(positions))
        assert deals.deal_decider.fold([r.to_event() for r in recorded]) == state


# ---------------------------------------------------------------------------------------------- leads
LS = leads.Status
ACTIVE_MOVES = {LS.DISQUALIFIED, LS.MERGED, LS.NURTURING}
LEAD_MOVES: dict[leads.Status, set[leads.Status]] = {
    LS.NONE: {LS.NEW},
    LS.NEW: {LS.CONTACTED, LS.MQL, LS.SQL} | ACTIVE_MOVES,
    LS.CONTACTED: {LS.MQL, LS.SQL} | ACTIVE_MOVES,
    LS.NURTURING: {LS.MQL, LS.SQL} | ACTIVE_MOVES,
    LS.MQL: {LS.SQL, LS.CONVERTED, LS.DISQUALIFIED, LS.MERGED},
    LS.SQL: {LS.CONVERTED, LS.DISQUALIFIED, LS.MERGED},
    LS.CONVERTED: {LS.NURTURING},  # recycled
    LS.DISQUALIFIED: {LS.NURTURING},  # recycled
    LS.MERGED: set(),
}
LEAD_ID, OTHER_LEAD = uuid.UUID(int=2), uuid.UUID(int=3)
LEAD_POOLS: dict[str, st.SearchStrategy[Any]] = {
    "source": st.sampled_from(["manual", "website"]),
    "duplicate_of": st.sampled_from([LEAD_ID, OTHER_LEAD]),
    "match_keys": st.just(("email",)),
    "survivor_id": st.sampled_from([LEAD_ID, OTHER_LEAD]),
    "other_lead_id": st.sampled_from([LEAD_ID, OTHER_LEAD]),
    "contact": st.just({"name": "Bích", "company": "Cà phê Phố"}),
    "reason": st.sampled_from(["x", "no_budget", "spam"]),
    "owner_id": st.sampled_from(["u-mai", "u-nam"]),
    "team_id": st.sampled_from([None, "north"]),
    "kind": st.sampled_from(list(leads_events.EngagementKind)),
    "segments": st.lists(st.sampled_from(["smb", "horeca"]), max_size=2).map(tuple),
    "channel": st.sampled_from(["phone", "email", "fax"]),
    "sequence_id": st.sampled_from(["welcome", "winback"]),
    "step": st.integers(0, 3),
    "message_id": st.just("m-1"),
    "offer_id": st.just("o-1"),
    "product": TEXT,
    "ends_on": DAYS,
    "level": st.sampled_from(["mql", "sql", "vip"]),
    "customer": TEXT,
    "title": TEXT,
    "estimated_value": money(),
    "deal_id": st.just(uuid.UUID(int=9)),
    "won": st.booleans(),
    "value": money(),
    "at": st.just(NOW),
}
LEAD_MODELS: list[type[BaseModel]] = sorted(leads.Command.__subclasses__(), key=lambda c: c.__name__)


@PROPERTIES
@given(st.data())
def test_leads_status_moves_only_along_the_status_machine(data: st.DataObject) -> None:
    state, events = leads.lead_decider.initial, []
    for _ in range(STEPS):
        cmd = next_command(data, LEAD_MODELS, LEAD_POOLS, allowed_by(leads.RULES, state.status))
        if cmd is None:
            continue
        try:
            new = leads.decide(state, cmd, NOW, LEAD_ID)
        except RuleError as exc:
            check_refusal(exc)
            continue
        after = leads.lead_decider.fold(new, state)
        assert after.status == state.status or after.status in LEAD_MOVES[state.status], (
            f"{cmd!r} moved a lead from {state.status} to {after.status}"
        )
        state, events = after, [*events, *new]
        assert leads.lead_decider.fold(events) == state


# ---------------------------------------------------------------------------------------------- production
SHIPMENTS = fixed_ids(2, "shipment")
ORDER_LINE = st.fixed_dictionaries({"product": st.sampled_from(["A", "B"]), "quantity": SMALL.map(str)})
PRODUCTION_POOLS: dict[str, st.SearchStrategy[Any]] = {
    "customer": TEXT,
    "lines": st.lists(ORDER_LINE, max_size=2).map(tuple),
    "due_date": DAYS,
    "planned_start": DAYS,
    "planned_end": DAYS,
    "materials": st.lists(
        st.fixed_dictionaries({"component": st.just("thép"), "quantity": SMALL.map(str)}), max_size=2
    ).map(tuple),
    "complete": st.booleans(),
    "component": TEXT,
    "quantity_short": SMALL,
    "product": st.sampled_from(["A", "B", "C"]),
    "quantity": SMALL,
    "cause": TEXT,
    "passed": st.booleans(),
    "inspected_quantity": SMALL,
    "defects": st.lists(st.fixed_dictionaries({"code": st.just("D1"), "quantity": st.integers(0, 3)}), max_size=1).map(
        tuple
    ),
    "packages": st.integers(0, 3),
    "carrier": st.just("Viettel Post"),
    "shipment_id": st.sampled_from(SHIPMENTS),
    "delivered_at": st.sampled_from([NOW, NOW + timedelta(days=1)]),
    "reason": TEXT,
}
PRODUCTION_MODELS: list[type[BaseModel]] = sorted(production.Command.__subclasses__(), key=lambda c: c.__name__)
ACTIVE_ORDER_MOVES = {"on_hold", "cancelled"}
ORDER_MOVES: dict[str, set[str]] = {
    "none": {"new"},
    "new": {"planned"} | ACTIVE_ORDER_MOVES,
    "planned": {"in_design", "procuring"} | ACTIVE_ORDER_MOVES,
    "in_design": {"procuring"} | ACTIVE_ORDER_MOVES,
    "procuring": {"assembling"} | ACTIVE_ORDER_MOVES,
    "assembling": {"quality_check"} | ACTIVE_ORDER_MOVES,
    "quality_check": {"packing", "rework"} | ACTIVE_ORDER_MOVES,
    "rework": {"quality_check"} | ACTIVE_ORDER_MOVES,
    "packing": {"ready_to_ship"} | ACTIVE_ORDER_MOVES,
    "ready_to_ship": {"shipped"} | ACTIVE_ORDER_MOVES,
    "shipped": {"delivered"},
    "delivered": set(),
    "on_hold": {"cancelled"},  # and back to the stage it left (checked apart)
    "cancelled": set(),
}


def flow(o: production.Order) -> list[Decimal]:
    """What was produced, packed, shipped, delivered: never negative, each no more than the one before."""
    return [o.produced, o.packed, o.shipped, o.delivered]


@PROPERTIES
@given(st.data())
def test_production_stages_advance_only_as_allowed_and_quantities_stay_positive(data: st.DataObject) -> None:
    state, events = production.order_decider.initial, []
    order_id = uuid.UUID(int=4)
    for _ in range(STEPS):
        cmd = next_command(data, PRODUCTION_MODELS, PRODUCTION_POOLS, allowed_by(production.RULES, state.stage))
        if cmd is None:
            continue
        try:
            new = production.decide(state, cmd, NOW, order_id)
        except RuleError as exc:
            check_refusal(exc)
            continue
        after = production.order_decider.fold(new, state)
        moved = after.stage != state.stage
        back_from_hold = state.stage == "on_hold" and after.stage == state.held_from
        assert not moved or after.stage in ORDER_MOVES[state.stage] or back_from_hold, (
            f"{cmd!r} moved an order from {state.stage} to {after.stage}"
        )
        quantities = flow(after)
        assert all(q >= 0 for q in [*quantities, after.scrapped]), f"a negative quantity after {cmd!r}: {after}"
        assert all(b <= a for a, b in itertools.pairwise(quantities)), (
            f"more further down the flow than before it after {cmd!r}: {quantities}"
        )
        assert all(line.quantity > 0 for line in after.lines)
        state, events = after, [*events, *new]
        assert production.order_decider.fold(events) == state


def test_every_command_model_has_its_fields_in_a_pool() -> None:
    """A new command or a new required field needs a pool above, or the properties would never build it."""
    for models, pools in ((DEAL_MODELS, DEAL_POOLS), (LEAD_MODELS, LEAD_POOLS), (PRODUCTION_MODELS, PRODUCTION_POOLS)):
        for model in models:
            missing = [n for n, f in model.model_fields.items() if f.is_required() and n not in pools]
            assert missing == [], f"{model.__name__}: {missing}"
