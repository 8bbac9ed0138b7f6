"""The demo's year of history (tools/demo_history.py): deterministic for a seed, its distributions within the bounds
the issue asks for, and every row one the services' real batch routes take (in memory: testkit/import_world.py)."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from testkit.import_world import ADMIN, IMPORTER, NOW, World
from tools.demo_history import OWNERS, SOURCE, STAGE_MEDIAN_DAYS, History, generate


@pytest.fixture(scope="module")
def year() -> History:
    return generate(NOW, seed=2026)


def times(row: dict) -> list[datetime]:
    return [datetime.fromisoformat(f["occurred_at"]) for f in row["facts"]]


def test_the_same_seed_gives_the_same_history_and_another_seed_another(year: History) -> None:
    again = generate(NOW, seed=2026)
    assert again.rows == year.rows and again.scripts == year.scripts and again.figures == year.figures
    assert generate(NOW, seed=7).rows["leads"] != year.rows["leads"]


def test_nothing_happens_after_now_and_each_row_goes_forward_in_time(year: History) -> None:
    for rows in year.rows.values():
        for row in rows:
            at = times(row)
            assert at == sorted(at) and at[-1] <= NOW and at[0] >= year.start - timedelta(days=61), row["key"]
    for script in year.scripts:
        at = [s.at for s in (*script.steps, *script.order)]
        assert at == sorted(at) and (not at or at[-1] <= NOW)


def test_distributions_are_within_their_bounds(year: History) -> None:
    """Win rate 20–35 % of closed deals; stage lengths in days (median of visits between the stages' own medians);
    some deals stuck, leads never contacted, orders reworked and scrapped; a Tết peak and a summer low."""
    f = year.figures
    assert 0.20 <= f.won / (f.won + f.lost) <= 0.35
    assert min(STAGE_MEDIAN_DAYS.values()) <= statistics.median(f.stage_days) <= max(STAGE_MEDIAN_DAYS.values())
    assert f.stuck >= 10 and f.open > f.stuck / 2
    assert 0.03 <= 1 - f.contacted / f.leads <= 0.2  # some leads never contacted (the response-time alerts)
    assert f.reworked >= 3 and f.scrapped >= 1 and f.delivered >= f.orders // 2
    by_month = Counter(r["facts"][0]["occurred_at"][:7] for r in year.rows["leads"] if r["kind"] == "lead")
    assert by_month["2026-01"] > 1.5 * by_month["2026-07"]  # before Tết 2026 (17 Feb) vs the summer
    assert len(by_month) == 13 and min(by_month[m] for m in sorted(by_month)[1:]) >= 40  # every month has leads
    assert 1000 <= f.leads <= 2200 and 0.08 <= f.converted / f.leads <= 0.25


def test_repeat_customers_and_leads_by_campaign(year: History) -> None:
    deals_of = Counter(r["key"].split("/")[0] for r in year.rows["deals"])
    assert len(deals_of) >= 10 and min(deals_of.values()) >= 2
    campaigns = Counter(
        r["facts"][0]["body"]["attribution"].get("campaign_id") for r in year.rows["leads"] if r["kind"] == "lead"
    )
    assert {c.code for c in year.campaigns} <= set(campaigns)
    spend = [r for r in year.rows["leads"] if r["kind"] == "spend"]
    assert len(spend) == 365 * len(year.campaigns)
    late = [s for s in year.scripts if s.order and s.order[-1].path == "confirm-delivery"]
    assert late  # delivered orders (their promised dates: some missed, the live figures show)


async def test_every_row_is_taken_by_the_services_batch_routes() -> None:
    """Two months at a small scale through the real routes in memory: every row created, none refused."""
    history = generate(NOW, months=2, scale=0.3, seed=11)
    world = await World().start()
    try:
        user = {"user_id": "u-dung", "name": "Đặng Dũng", "email": "dung@example.vn", "team_id": "south",
                "roles": ["sales"], "reason": "the demo's"}  # fmt: skip
        assert (await world.clients["directory"].post("/users", json=user, headers=ADMIN)).status_code == 201
        await world.sync()
        assert {o for o, _ in OWNERS} <= {"u-lan", "u-binh", "u-dung"}
        for c in history.campaigns:
            body = {"name": c.name, "channel": c.channel, "code": c.code, "budget": {"amount": "1", "currency": "VND"}}
            at = {"X-Occurred-At": c.created_at.isoformat()}
            r = await world.clients["leads"].post("/campaigns", json=body, headers=ADMIN | at)
            assert r.status_code == 201, r.text
            r = await world.clients["leads"].post(
                f"/campaigns/{r.json()['id']}/status", json={"status": "active"}, headers=ADMIN | at
            )
            assert r.status_code == 200, r.text
        for service in ("directory", "leads", "deals", "agenda"):
            rows = history.rows[service]
            for kind in sorted({r["kind"] for r in rows}):
                batch = {"source": SOURCE, "rows": [r for r in rows if r["kind"] == kind]}
                r = await world.clients[service].post("/imports/batches", json=batch, headers=IMPORTER)
                assert r.status_code == 200, r.text
                refused = [x for x in r.json()["results"] if x["status"] != "created"]
                assert not refused, refused[:3]
                await world.sync()
        assert history.rows["agenda"] and history.rows["deals"] and history.figures.converted
    finally:
        await world.close()


def test_times_are_utc_and_the_year_ends_now(year: History) -> None:
    assert year.now == NOW and year.now.tzinfo == UTC
    assert timedelta(days=360) <= year.now - year.start <= timedelta(days=370)


def test_batches_stay_within_the_batch_routes_bounds(year: History) -> None:
    """≤ 500 rows (the routes' MAX_BATCH_ROWS) and about 400 KB of JSON each, every row sent once, in order."""
    from tools.demo_load import BATCH_BYTES, BATCH_ROWS, chunked

    rows = year.rows["leads"]
    chunks = chunked(rows)
    assert [r for c in chunks for r in c] == rows
    assert all(0 < len(c) <= BATCH_ROWS <= 500 for c in chunks)
    assert all(len(json.dumps(c, ensure_ascii=False).encode()) <= BATCH_BYTES + 2_000 for c in chunks)
