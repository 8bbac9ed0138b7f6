"""The production read models against the oracle, on 1,000 generated orders with QA failures, holds, re-dated
promises and partial shipments."""

from __future__ import annotations

import math
import os
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.production import domain
from services.production import main as production_main
from shared.store.commands import Context
from testkit.production_sim import DAYS, START, Action, command, generate
from testkit.services import (
    Serve,
    applied_everything,
    bearer,
)
from testkit.snapshots import assert_snapshots_round_trip
from testkit.waiting import wait_until
from tests.oracle.production import Production

# a correctness oracle over thousands of commands, not a timing: on a shared, loaded machine it may take minutes
pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(900)]
N_ORDERS = int(os.environ.get("PIPELINES_SIM_ORDERS", "1000"))
TZ = "Asia/Ho_Chi_Minh"
AUDITOR = bearer("u-audit", "auditor", team=None)


def near(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), abs_tol=1e-3)


async def test_floor_read_models_match_the_oracle(serve: Serve) -> None:
    served = await serve(production_main.build, start=START, projections={"floor"})
    service, clock, http = served.service, served.clock, served.http
    actions = generate(N_ORDERS)
    products: dict[uuid.UUID, str] = {}
    ctx = Context(actor="sim")
    for a in actions:
        clock.now = a.at
        await service.production.handle(a.order, command(a, products), ctx)
    await wait_until(lambda: applied_everything(service, "floor"), timeout=600, interval=0.5)
    clock.now = START + timedelta(days=DAYS)
    oracle = Production(actions)
    zone = ZoneInfo(TZ)
    window = {"from": "2026-06-01", "to": "2026-11-01"}
    start, end = datetime(2026, 6, 1, tzinfo=zone), datetime(2026, 11, 1, tzinfo=zone)

    board = (await http.get("/board", headers=AUDITOR)).json()
    want = oracle.board(clock.now, TZ)
    assert (board["open_orders"], board["wip"], board["late"]) == (want["open_orders"], want["wip"], want["late"])
    for column in board["stages"]:
        w = want["stages"][column["stage"]]
        assert (column["orders"], float(column["quantity"]), column["late"], column["oldest_age_days"]) == (
            w["orders"],
            w["quantity"],
            w["late"],
            w["oldest_age_days"],
        ), column["stage"]
    assert len(board["stages"]) == len(want["stages"])

    cycle = (await http.get("/analytics/cycle-times", params=window, headers=AUDITOR)).json()
    want_cycle = oracle.cycle_times(start, end)
    assert [s["stage"] for s in cycle["stages"]] == [s["stage"] for s in want_cycle["stages"]]
    for got, w in zip(cycle["stages"], want_cycle["stages"], strict=True):
        assert got["visits"] == w["visits"], got
        assert near(got["median_days"], w["median_days"]) and near(got["p90_days"], w["p90_days"]), (got, w)
    assert cycle["lead_time"]["orders"] == want_cycle["lead_time"]["orders"]
    assert near(cycle["lead_time"]["median_days"], want_cycle["lead_time"]["median_days"])
    assert near(cycle["lead_time"]["p90_days"], want_cycle["lead_time"]["p90_days"])
    assert sum(b["orders"] for b in cycle["lead_time_histogram"]) == want_cycle["lead_time"]["orders"]

    assert (await http.get("/analytics/quality", params=window, headers=AUDITOR)).json() == oracle.quality(start, end)
    assert (await http.get("/analytics/delivery", params=window, headers=AUDITOR)).json() == oracle.delivery(
        start, end, TZ
    )
    q = oracle.quality(start, end)
    d = oracle.delivery(start, end, TZ)
    assert (
        int(q["reworked"]) > 50
        and int(q["scrapped_before_inspection"]) > 10
        and d["completed"] > 300
        and d["otif_orders"] < d["on_time"]
    ), "a history worth checking"
    assert any(v[0] == "on_hold" for v in oracle.visits), "holds happened"
    # every stream's state survives a snapshot, and a new process deciding on it sees the same
    assert await assert_snapshots_round_trip(service.storage.store, "production-order-", domain.order_decider) > 0


async def test_first_pass_yield_counts_units_and_scrap_before_inspection_lowers_it(serve: Serve) -> None:
    """Issue 23, item 4: FPY is over units (DOMAIN.md §2.5: units passing their first inspection without rework
    or scrap / units inspected). Order A: 2 units, inspected together and passed. Order B: 2 units, one scrapped
    and made again before inspection, then the 2 inspected, failed, reworked and passed. Units in: 2 + 2 inspected
    + 1 scrapped before its first inspection = 5; passed the first time: 2; sent to rework: 2."""
    served = await serve(production_main.build, start=START, projections={"floor"})
    service, clock, http = served.service, served.clock, served.http
    a, b = uuid.uuid4(), uuid.uuid4()
    build = ["plan", "request_materials", "receive_materials", "start_assembly", "output"]
    steps: list[tuple[uuid.UUID, str, dict[str, Any]]] = [
        (a, "create", {"product": "Tủ đông 500L", "qty": 2, "due": date(2026, 7, 1)}),
        *[(a, kind, {"qty": 2} if kind == "output" else {}) for kind in build],
        (a, "complete_assembly", {}),
        (a, "inspect", {"passed": True, "qty": 2}),
        (b, "create", {"product": "Tủ mát 2 cánh", "qty": 2, "due": date(2026, 7, 1)}),
        *[(b, kind, {"qty": 2} if kind == "output" else {}) for kind in build],
        (b, "scrap", {"qty": 1}),
        (b, "output", {"qty": 1}),
        (b, "complete_assembly", {}),
        (b, "inspect", {"passed": False, "qty": 2}),
        (b, "rework", {}),
        (b, "inspect", {"passed": True, "qty": 2}),
    ]
    actions = [Action(START + timedelta(hours=i), order, kind, p) for i, (order, kind, p) in enumerate(steps)]
    products: dict[uuid.UUID, str] = {}
    for action in actions:
        clock.now = action.at
        await service.production.handle(action.order, command(action, products), Context(actor="sim"))
    await wait_until(lambda: applied_everything(service, "floor"), timeout=60, interval=0.2)
    got = (
        await http.get("/analytics/quality", params={"from": "2026-06-01", "to": "2026-07-01"}, headers=AUDITOR)
    ).json()
    assert (got["inspected"], got["first_pass"], got["reworked"]) == ("4", "2", "2"), got
    assert got["scrapped_before_inspection"] == "1", got
    assert (got["fpy"], got["rework_rate"]) == (0.4, 0.5), got
    zone = ZoneInfo(TZ)
    assert got == Production(actions).quality(datetime(2026, 6, 1, tzinfo=zone), datetime(2026, 7, 1, tzinfo=zone))
