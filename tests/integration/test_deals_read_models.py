"""The sales read models against the oracle, on a generated history of 1,000 deals under an injected clock.

The history runs through the deals service into PostgreSQL, the relay takes it to Kafka, the projector builds
the read models; the oracle (tests/oracle/sales.py) recomputes every figure from the plan alone.
"""

from __future__ import annotations

import asyncio
import math
import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.deals import domain
from services.deals import main as deals_main
from shared.core.money import Money
from shared.messaging.projections import request_rebuild
from shared.store.commands import Context
from testkit.sales_sim import DAYS, START, commands, generate
from testkit.services import (
    Serve,
    applied_everything,
    bearer,
)
from testkit.snapshots import assert_snapshots_round_trip
from testkit.waiting import wait_until
from tests.oracle.sales import Sales

# a correctness oracle over thousands of commands, not a timing: on a shared, loaded machine it may take minutes
pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(900)]

TZ = "Asia/Ho_Chi_Minh"
AUDITOR = bearer("u-audit", "auditor", team=None)
N_DEALS = int(os.environ.get("PIPELINES_SIM_DEALS", "1000"))
TARGETS = {"u-an": Decimal(400_000_000), "u-dung": Decimal(250_000_000), "u-hoa": Decimal(900_000_000)}
PERIOD = "2026-09"


def close(a: Any, b: Any, tol: float = 1e-3) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=tol)


def assert_rows(got: list[dict[str, Any]], want: list[dict[str, Any]], float_keys: tuple[str, ...] = ()) -> None:
    assert len(got) == len(want), f"{len(got)} rows, the oracle has {len(want)}"
    for g, w in zip(got, want, strict=True):
        for key, expected in w.items():
            if key in float_keys:
                assert close(g[key], expected), (key, g, w)
            else:
                assert g[key] == expected, (key, g[key], expected, g)


async def test_read_models_match_the_oracle(serve: Serve) -> None:
    served = await serve(deals_main.build, start=START, projections={"board", "analytics"})
    service, clock, http = served.service, served.clock, served.http

    async def settled() -> None:
        async def done() -> bool:
            return await applied_everything(service, "board") and await applied_everything(service, "analytics")

        await wait_until(done, timeout=600, interval=0.2)

    for owner, amount in TARGETS.items():
        await service.deals.set_target(
            uuid.uuid4(),
            domain.SetSalesTarget(owner_id=owner, period=PERIOD, amount=Money.of(amount)),
            Context(actor="u-boss"),
        )
    actions = generate(N_DEALS)
    assert len({a.deal for a in actions}) == N_DEALS
    capture_at = START + timedelta(days=75)
    captured: dict[str, Any] | None = None
    for action in actions:
        if captured is None and action.at > capture_at:
            await settled()
            live = (await http.get("/forecast", headers=AUDITOR)).json()
            captured = {"at": datetime.now(UTC), "rows": live["rows"], "oracle": Sales(actions, until=capture_at)}
            await asyncio.sleep(0.05)  # what follows is recorded strictly later
        clock.now = action.at
        await service.deals.handle(action.deal, commands(action), Context(actor="sim"))
    assert captured is not None
    await settled()
    clock.now = START + timedelta(days=DAYS)
    oracle = Sales(actions)
    await check_everything(http, oracle, captured, clock.now)

    # a rebuild of the analytics replays the topic and gives the same answers
    await request_rebuild(service.storage.pool, service.storage.store.schema, "analytics")

    async def rebuilt() -> bool:
        async with service.storage.pool.acquire() as conn:
            return (
                await conn.fetchval(
                    f"SELECT generation FROM {service.storage.store.schema}.projection_generations "
                    "WHERE projection = 'analytics' AND state = 'active'"
                )
                == 2
            )

    await wait_until(rebuilt, timeout=600, interval=0.5)
    await check_everything(http, oracle, captured, clock.now)
    # every stream's state survives a snapshot, and a new process deciding on it sees the same
    assert await assert_snapshots_round_trip(service.storage.store, "deal-", domain.deal_decider) > 0


async def check_everything(http: Any, oracle: Sales, captured: dict[str, Any], now: datetime) -> None:
    get = lambda path, **params: http.get(path, params=params, headers=AUDITOR)  # noqa: E731

    board = (await get("/board")).json()
    want_board = oracle.board(now)
    for column in board["stages"]:
        w = want_board[column["stage_id"]]
        assert column["count"] == w["count"], column["stage_id"]
        assert column["value"] == ({"VND": w["value"]} if w["count"] else {})
        assert column["weighted_value"] == ({"VND": w["weighted_value"]} if w["count"] else {})
        assert column["stuck_count"] == w["stuck_count"], column["stage_id"]

    for status in ("open", "won", "lost"):  # each deal listed weighs its value by its probability: won 1, lost 0
        listed = (await get("/deals", status=status, limit=200)).json()["items"]
        assert listed, status
        for d in listed:
            want_deal = oracle.deals[d["deal_id"]]
            assert (d["status"], Decimal(d["probability"])) == (status, want_deal.probability), d["deal_id"]
            assert Decimal(d["weighted_value"]) == want_deal.weighted_value, d["deal_id"]

    forecast = (await get("/forecast")).json()
    assert forecast["rows"] == oracle.forecast(TZ)
    by_month = {m["period"]: m for m in forecast["months"]}  # the rows per month, beside the month's target
    for period in {r["period"] for r in forecast["rows"]}:
        rows = [r for r in forecast["rows"] if r["period"] == period]
        assert Decimal(by_month[period]["expected"]) == sum(Decimal(r["expected"]) for r in rows), period
    assert by_month[PERIOD]["target"] == str(sum(TARGETS.values()))  # no team has one: the salespeople's
    assert captured["rows"] == captured["oracle"].forecast(TZ), "the live forecast at day 75 was right then"
    as_of = (await get("/forecast", as_of=captured["at"].isoformat())).json()["rows"]
    assert as_of == captured["rows"], "the forecast as of day 75 equals the one captured live that day"
    changes = (await get("/forecast/changes", since=captured["at"].isoformat())).json()
    assert changes["summary"] == oracle.changes_since(captured["oracle"])

    zone = ZoneInfo(TZ)
    start, end = datetime(2026, 6, 1, tzinfo=zone), datetime(2026, 11, 1, tzinfo=zone)
    stages = (await get("/analytics/stages", **{"from": "2026-06-01", "to": "2026-11-01"})).json()
    want = oracle.stage_analytics(start, end, now)
    assert_rows(stages["stages"], want["stages"], float_keys=("mean_days", "median_days", "p90_days"))
    for key in ("won", "lost", "win_rate", "won_value", "average_deal_size", "open_now"):
        assert stages[key] == want[key], key
    for key in ("mean_cycle_days", "median_cycle_days"):
        assert close(stages[key], want[key]), key
    assert math.isclose(float(stages["velocity_per_day"]), want["velocity_per_day"], rel_tol=1e-4)
    assert want["won"] > 100 and want["lost"] > 100, "the generated history wins and loses enough to mean something"
    assert sum(s["backward_moves"] for s in want["stages"]) > 20
    assert sum(s["skipped"] for s in want["stages"]) > 20

    win = (await get("/analytics/win-rate", **{"from": "2026-06-01", "to": "2026-11-01"})).json()
    assert (sum(m["won"] for m in win), sum(m["lost"] for m in win)) == (want["won"], want["lost"])
    closed: dict[str, list[int]] = {}
    for d in oracle.deals.values():  # every deal by month of close, as the oracle has them
        for at, i in ((d.won_at, 0), (d.lost_at, 1)):
            if at is not None and start <= at < end:
                closed.setdefault(at.astimezone(zone).strftime("%Y-%m"), [0, 0])[i] += 1
    assert {m["month"]: [m["won"], m["lost"]] for m in win if m["won"] or m["lost"]} == closed

    m_start, m_end = datetime(2026, 9, 1, tzinfo=zone), datetime(2026, 10, 1, tzinfo=zone)
    card = (await get("/analytics/scorecard", period=PERIOD)).json()
    assert_rows(
        card, oracle.scorecard(m_start, m_end, now, TARGETS), float_keys=("mean_cycle_days", "avg_close_date_pushes")
    )

    lost = (await get("/analytics/lost-reasons", **{"from": "2026-06-01", "to": "2026-11-01"})).json()
    assert lost == oracle.lost_reasons(start, end)

    plan = (await get("/analytics/target-plan", period=PERIOD, owner_id="u-hoa")).json()
    want_plan = oracle.target_plan("u-hoa", TARGETS["u-hoa"], m_start, m_end)
    for key in ("won_so_far", "average_deal_size", "wins_needed"):
        assert plan[key] == want_plan[key], key
    for key in ("expected_wins_from_open", "gap"):
        assert close(plan[key], want_plan[key]), key
    assert plan["stages"] == want_plan["stages"]

    factors = (await get("/analytics/success-factors")).json()
    assert_rows(factors, oracle.success_factors())
    by_channel = (await get("/analytics/success-factors", by="channel")).json()
    assert_rows(by_channel, oracle.success_factors(by="channel"))
