"""The marketing read models against the oracle, on 5,000 generated leads from 5 sources and 5 campaigns."""

from __future__ import annotations

import math
import os
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.leads import domain
from services.leads import main as leads_main
from shared.store.commands import Context
from testkit.marketing_sim import START, command, generate
from testkit.services import (
    Serve,
    applied_everything,
    bearer,
)
from testkit.snapshots import assert_snapshots_round_trip
from testkit.waiting import wait_until
from tests.oracle.marketing import Marketing

# a correctness oracle over thousands of commands, not a timing: on a shared, loaded machine it may take minutes
pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(900)]
N_LEADS = int(os.environ.get("PIPELINES_SIM_LEADS", "5000"))
TZ = "Asia/Ho_Chi_Minh"
AUDITOR = bearer("u-audit", "auditor", team=None)


def same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for k, v in w.items():
            if k == "median_minutes_to_contact" and v is not None:
                assert math.isclose(g[k], v, abs_tol=0.02), (k, g, w)
            else:
                assert g[k] == v, (k, g[k], v, g)


async def test_funnel_and_campaign_roi_match_the_oracle(serve: Serve) -> None:
    served = await serve(leads_main.build, start=START, projections={"marketing"})
    service, clock, http = served.service, served.clock, served.http
    actions = generate(N_LEADS)
    ctx = Context(actor="sim")
    for a in actions:
        clock.now = a.at
        kind, cmd, day = command(a)
        if kind == "campaign":
            await service.leads.campaign_command(a.target, cmd, ctx, day)
        elif a.kind == "capture":
            await service.leads.capture(cmd, ctx, lead_id=a.target)
        else:
            await service.leads.handle(a.target, cmd, ctx)
    await wait_until(lambda: applied_everything(service, "marketing"), timeout=600, interval=0.5)
    oracle = Marketing(actions)
    zone = ZoneInfo(TZ)
    start, end = datetime(2026, 7, 1, tzinfo=zone), datetime(2026, 11, 1, tzinfo=zone)
    window = {"from": "2026-07-01", "to": "2026-11-01"}
    for by in ("source", "campaign", "month"):
        got = (await http.get("/funnel", params=window | {"by": by}, headers=AUDITOR)).json()
        same(got, oracle.funnel(by, start, end, TZ))
    got = (await http.get("/campaigns", params=window, headers=AUDITOR)).json()
    same(got, oracle.campaign_performance(start, end, TZ))
    part = {"from": "2026-08-15", "to": "2026-09-20"}
    got = (await http.get("/campaigns", params=part, headers=AUDITOR)).json()
    same(got, oracle.campaign_performance(datetime(2026, 8, 15, tzinfo=zone), datetime(2026, 9, 20, tzinfo=zone), TZ))
    same((await http.get("/nurture", headers=AUDITOR)).json(), oracle.nurture())
    same((await http.get("/segments", headers=AUDITOR)).json(), oracle.segments())
    by_source = oracle.funnel("source", start, end, TZ)
    assert len(by_source) == 5
    assert sum(r["captured"] for r in by_source) >= N_LEADS * 0.95
    assert sum(r["customers"] for r in by_source) > 100 or N_LEADS < 5000
    # every stream's state survives a snapshot, and a new process deciding on it sees the same
    assert await assert_snapshots_round_trip(service.storage.store, "lead-", domain.lead_decider) > 0
