"""The board's calls for one page and the sales page's numbers by month, against API answers faked at the HTTP
transport (the real APIs: tests/integration/test_sales_months.py, tests/e2e/test_web_board.py).

A page asks each API query once, however many of its panels show it (the forecast and the forecast against target;
the stage conversion and the win rate and velocity; production's four panels on its cycle times), and asks them all
at once. The forecast against target and the win rate by month draw exactly the rows their table shows."""

from __future__ import annotations

import asyncio
import html
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

import httpx
import pytest

from services.web import charts
from services.web.app import COOKIE, create_app
from tests.unit.web.signin_fake import SIGNIN_PORT
from tests.unit.web.test_board_unit import SETTINGS, SIGNIN, session
from tests.unit.web.test_charts import expected, read_back

FORECAST = {
    "as_of": None,
    "rows": [
        {
            "period": "2026-11",
            "owner_id": "u-an",
            "currency": "VND",
            "won": "5000000",
            "open_count": 0,
            "potential": "0",
            "weighted": "0",
            "expected": "5000000",
        },
        {
            "period": "2026-12",
            "owner_id": "u-an",
            "currency": "VND",
            "won": "0",
            "open_count": 2,
            "potential": "30000000",
            "weighted": "12000000",
            "expected": "12000000",
        },
    ],
    "months": [
        {
            "period": "2026-11",
            "currency": "VND",
            "won": "5000000",
            "open_count": 0,
            "weighted": "0",
            "expected": "5000000",
            "target": "10000000",
            "target_from_quarters": "0",
            "expected_of_target": 0.5,
        },
        {
            "period": "2026-12",
            "currency": "VND",
            "won": "0",
            "open_count": 2,
            "weighted": "12000000",
            "expected": "12000000",
            "target": "<b>8000000</b>",
            "target_from_quarters": "3333333",
            "expected_of_target": 1.5,
        },
        {
            "period": "2027-01",
            "currency": "VND",
            "won": "0",
            "open_count": 0,
            "weighted": "0",
            "expected": "0",
            "target": None,
            "target_from_quarters": None,
            "expected_of_target": None,
        },
    ],
}
WIN_RATE = [
    {"month": "2026-10", "currency": "VND", "won": 3, "lost": 1, "win_rate": 0.75, "won_value": "30000000"},
    {"month": "2026-11", "currency": "VND", "won": 0, "lost": 0, "win_rate": None, "won_value": "0"},
    {"month": "2026-12", "currency": "VND", "won": 1, "lost": 2, "win_rate": 0.333333, "won_value": "9000000"},
]


class Apis:
    """The APIs' answers; every call counted by (port, path, query); each call held until ``expected`` calls are in
    flight together (or a second has passed), so the most in flight at once is how many the page asked together."""

    def __init__(self, expected: int) -> None:
        self.calls: Counter[tuple[int | None, str, str]] = Counter()
        self.in_flight = self.most = 0
        self.expected = expected
        self.all_in = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.port == SIGNIN_PORT:
            return SIGNIN(request)
        if request.url.path in ("/teams", "/users"):  # the filters' lists, checked before the panels are asked
            return answer(request)
        self.calls[(request.url.port, request.url.path, str(request.url.query))] += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= self.expected:
            self.all_in.set()
        try:
            await asyncio.wait_for(self.all_in.wait(), timeout=1)
        except TimeoutError:
            pass  # fewer at once than expected: the test says so, without hanging
        finally:
            self.in_flight -= 1
        return answer(request)


def answer(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/teams":
        return httpx.Response(200, json={"items": [{"team_id": "north", "name": "North"}]})
    if request.url.path == "/users":
        return httpx.Response(200, json={"items": []})
    if request.url.path == "/forecast":
        return httpx.Response(200, json=FORECAST)
    if request.url.path == "/analytics/win-rate":
        return httpx.Response(200, json=WIN_RATE)
    if request.url.path in ("/board", "/analytics/stages", "/analytics/cycle-times", "/analytics/target-plan"):
        return httpx.Response(200, json={})
    return httpx.Response(200, json=[])


async def page_of(path: str, apis: Apis, *who: str, team: str | None = None) -> str:
    app = create_app(SETTINGS, transport=httpx.MockTransport(apis), live_feed=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web")
    async with app.router.lifespan_context(app), client:
        client.cookies.set(COOKIE, session(who[0], *who[1:], team=team))
        r = await client.get(path)
        assert r.status_code == 200, r.text[:300]
        return r.text


def asked(apis: Apis, path: str) -> list[str]:
    return [query for (_, p, query) in apis.calls if p == path]


@pytest.mark.parametrize(
    ("page", "shared", "distinct"),
    [
        # board, forecast (2 panels), stages (2), win rate, scorecard, target plan (2); the badge's 3 alerts
        ("/sales?team=north", {"/forecast": 2, "/analytics/stages": 2, "/analytics/target-plan": 2}, 6 + 3),
        ("/production", {"/analytics/cycle-times": 4}, None),
    ],
)
async def test_a_page_asks_each_query_once_and_all_of_them_at_once(
    page: str, shared: dict[str, int], distinct: int | None
) -> None:
    probe = Apis(expected=1000)  # how many distinct queries the page makes (none held long: see below)
    probe.all_in.set()
    await page_of(page, probe, "u-boss", "auditor")
    for path in shared:
        assert len(asked(probe, path)) == 1, (path, probe.calls)
    assert all(n == 1 for n in probe.calls.values()), [k for k, n in probe.calls.items() if n > 1]
    if distinct is not None:
        assert len(probe.calls) == distinct, probe.calls
    apis = Apis(expected=len(probe.calls))  # now each call waits for all the others: only together do they finish
    await page_of(page, apis, "u-boss", "auditor")
    assert apis.most == len(probe.calls) and apis.calls == probe.calls


def chart_in(page: str, panel: str) -> str:
    section = page.split(f'data-panel="{panel}"', 1)[1].split("</section>", 1)[0]
    found = re.search(r"<svg.*?</svg>", section, re.S)
    assert found, f"no chart in {panel}"
    return found.group(0)


def table_in(page: str, panel: str) -> list[dict[str, Any]]:
    """The table's cells: each row's ``data-key`` and ``data-value`` (the API's value, as JSON or text)."""
    section = page.split(f'data-panel="{panel}"', 1)[1].split("</section>", 1)[0]
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S):
        cells = dict(re.findall(r'data-key="([^"]+)" data-value="([^"]*)"', tr))
        if cells:
            rows.append(cells)
    return rows


async def test_forecast_against_target_and_win_rate_draw_their_tables_rows() -> None:
    apis = Apis(expected=1)
    page = await page_of("/sales", apis, "u-an", "sales", team="north")
    assert len(asked(apis, "/forecast")) == 1 and len(asked(apis, "/analytics/win-rate")) == 1
    (win_query,) = asked(apis, "/analytics/win-rate")
    assert "from=" in win_query and "to=" in win_query
    for panel, rows in (("forecast_target", FORECAST["months"]), ("win_rate", WIN_RATE)):
        chart = charts.CHARTS[("sales", panel)]
        svg = chart_in(page, panel)
        ET.fromstring(svg)  # noqa: S314 - well-formed: the hostile target is escaped
        assert read_back(svg) == expected(chart, rows)
        table = table_in(page, panel)
        assert len(table) == len(rows)
        for shown, row in zip(table, rows, strict=True):
            for c in chart.series:
                assert json.loads(html.unescape(shown[c.key])) == row[c.key], (c.key, shown, row)
    assert "<b>8000000</b>" not in page and "spread evenly over its three months" in page
