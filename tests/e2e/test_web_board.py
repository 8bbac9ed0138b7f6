"""The web board in headless Chromium, against the three services, the directory, the sign-in service and the
board as processes on the real Kafka and PostgreSQL, with demo data from the simulation (tests/e2e/web_world.py):
every page loads and every figure it shows equals what the API answers for the same query; a deal moved through the
API moves on the open page without a reload; alerts appear as they are raised; each role sees what the APIs let it
see; CSV exports; a phone's screen; bad input. Each test signs in through the login form with a password.
Screenshots are kept under .run/test-artefacts/web/."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Page

from services.web import charts, domain_words, i18n
from services.web.pages import AUDIT, pages
from services.web.panels import CARDS_SHOWN, ROWS_SHOWN, rows_of, value_at
from shared.ops.settings import PIPELINES
from testkit.a11y import page_scrolls_sideways, severe_violations, top_of, wrapped_figures
from testkit.browser import panels, screenshot
from testkit.waiting import wait_until
from tests.e2e.offline_docs import api_docs_offline
from tests.e2e.web_world import ADMIN, Board, email, new_page, password, session_token, signed_in, token

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]
TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # the settings' default: the board writes times in it
PAGES = {**pages(TZ), "audit": AUDIT}


async def api_answer(board: Board, source: str, tok: str) -> Any:
    service, _, path = source.partition(" ")
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(board.urls[service] + path, headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, (source, r.status_code, r.text)
    return r.json()


def same_cells(cells: list[dict[str, str]], row: dict[str, Any], columns: Any, lang: i18n.Lang, where: str) -> None:
    assert [c["key"] for c in cells] == [c.key for c in columns], where
    for cell, column in zip(cells, columns, strict=True):
        expected = value_at(row, column.key)
        assert json.loads(cell["value"]) == expected, (where, column.key)
        if column.kind != "json":
            assert cell["text"] == i18n.fmt(expected, column.kind, lang, TZ, row=row), (where, column.key, cell["text"])


async def figures_equal_the_api(board: Board, page: Page, tok: str, lang: i18n.Lang = "en") -> list[dict[str, Any]]:
    """Every panel on the page shows, cell by cell, what its API query answers (value and its writing).

    A read model may still move between the page's load and the test's own query (a reaction from another
    service arriving late): then the page is loaded again, three times at most. A page that shows other
    figures than its API stays wrong however often it is loaded. A panel whose API did not answer (the
    board says "unavailable", with the API's reason) is loaded again the same way, and named if it stays so."""
    for attempt in range(3):
        try:
            shown = await _figures_equal_the_api(board, page, tok, lang)
            unanswered = [(p["id"], p["text"]) for p in shown if p["state"] == "unavailable"]
            assert not unanswered, f"panels whose API did not answer: {unanswered}"
            return shown
        except AssertionError:
            if attempt == 2:
                raise
            await page.wait_for_timeout(2000)
            await page.reload()
    raise AssertionError("unreachable")


async def chart_equals_its_rows(page: Page, page_id: str, panel_id: str, rows: list[dict[str, Any]]) -> None:
    """A panel's chart (services/web/charts.py) is an SVG whose marks read back are its API query's rows."""
    chart = charts.chart_of(page_id, panel_id)
    if chart is None:
        return
    marks = await page.eval_on_selector_all(  # a mark per point, or (many points) a path per series with a list
        f"#panel-{panel_id} figure.chart svg[role=img] :is(.pt, .pts)",
        "els => els.flatMap(e => e.dataset.data === undefined ? [[Number(e.dataset.point), e.dataset.series,"
        " e.dataset.datum]] : JSON.parse(e.dataset.data).map((v, i) => [i, e.dataset.series, JSON.stringify(v)]))",
    )
    assert bool(marks) == bool(rows), (panel_id, "a chart when, and only when, there are rows")
    found = {(i, key): json.loads(value) for i, key, value in marks}
    want = {(i, c.key): value_at(r, c.key) for i, r in enumerate(rows) for c in chart.series}
    if chart.by:  # one point per value of the key (a month): the sum of its rows
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(json.dumps(value_at(r, chart.by)), []).append(r)
        want = {}
        for i, group in enumerate(groups.values()):
            for c in chart.series:
                values = [Decimal(str(v)) for r in group if (v := value_at(r, c.key)) is not None]
                want[(i, c.key)] = float(sum(values)) if values else None
    assert len(found) == len(marks) == len(want), panel_id
    assert found == want, panel_id


async def _figures_equal_the_api(board: Board, page: Page, tok: str, lang: i18n.Lang) -> list[dict[str, Any]]:
    shown = await panels(page)
    assert shown, "no panel on the page"
    for p in shown:
        if p["state"] != "ok" or p["id"] == "timeline":
            continue
        panel = PAGES[p["page"]].by_id[p["id"]]
        rows = rows_of(await api_answer(board, p["source"], tok), panel)
        assert p["total"] == len(rows), (p["id"], p["source"])
        await chart_equals_its_rows(page, p["page"], p["id"], rows)
        rows = rows if panel.kind == "kanban" else rows[:ROWS_SHOWN]  # a table: its first rows and "n more"
        assert len(p["rows"]) == len(rows), (p["id"], p["source"])
        for i, (dom, row) in enumerate(zip(p["rows"], rows, strict=True)):
            same_cells(dom["cells"], row, panel.columns, lang, f"{p['id']} row {i}")
            if panel.kind == "kanban":  # a column shows its first cards and "n more" (the page has no ?more=)
                everyone = value_at(row, panel.cards or "") or []  # the sales board's API lists the first only
                cards = everyone[:CARDS_SHOWN]
                total = row.get("count", len(everyone)) if panel.first_cards else len(everyone)
                assert len(dom["cards"]) == len(cards) and dom["total"] == total, (p["id"], i)
                for j, (card, item) in enumerate(zip(dom["cards"], cards, strict=True)):
                    same_cells(card["cells"], item, panel.card_columns, lang, f"{p['id']} row {i} card {j}")
                    assert card["hl"] == bool(panel.highlight and item.get(panel.highlight))
    return shown


async def test_every_page_loads_with_the_api_figures_and_is_kept_as_a_screenshot(board: Board) -> None:
    tok = token("u-audit", "auditor")
    ctx, page = await signed_in(board, "u-audit")
    try:
        for path in ("/sales?team=north", "/marketing", "/production", "/alerts", f"/audit?deal={board.won_deal}"):
            response = await page.goto(board.urls["web"] + path)
            assert response is not None and response.status == 200, path
            shown = await figures_equal_the_api(board, page, tok)
            assert {p["state"] for p in shown} == {"ok"}, [(p["id"], p["state"], p["text"]) for p in shown]
            await screenshot(page, "desktop-" + path.strip("/").split("?")[0])
        # the forecast as it stood on a past date (the date picker): yesterday, before the demo's deals existed
        day = datetime.now(UTC).astimezone(ZoneInfo(board.settings.timezone)).date()
        for as_of, has_rows in ((day - timedelta(days=1), False), (day, True)):
            await page.goto(f"{board.urls['web']}/sales?as_of={as_of}")
            assert await page.locator("input[name=as_of]").input_value() == str(as_of)
            forecast = next(p for p in await figures_equal_the_api(board, page, tok) if p["id"] == "forecast")
            assert "as_of=" in forecast["source"] and bool(forecast["rows"]) == has_rows, as_of
        # the sales page carries demo data in every panel (the target plan for the team chosen too)
        await page.goto(board.urls["web"] + "/sales?team=north")
        sales = {p["id"]: p for p in await panels(page)}
        assert all(sales[k]["rows"] for k in ("board", "forecast", "stages", "velocity", "scorecard", "target"))
        # each page has its charts, drawn (no script) from the rows of the table beside them (chart_equals_its_rows)
        for path, ids in (
            ("/sales?team=north", ("forecast", "stages", "scorecard")),
            ("/marketing", ("funnel_source", "funnel_month", "campaigns")),
            ("/production", ("floor", "flow", "cycle", "lead_time_histogram")),
        ):
            await page.goto(board.urls["web"] + path)
            drawn = await page.eval_on_selector_all("section.panel:has(figure.chart svg)", "els => els.map(e => e.id)")
            with_rows = {f"panel-{p['id']}" for p in await panels(page) if p["id"] in ids and p["rows"]}
            assert drawn and with_rows <= set(drawn), (path, drawn, with_rows)
        # an API's Swagger UI 5 and ReDoc draw from the API's own assets under its strict CSP (shared/edge/docs.py),
        # with every other host cut off: each operation of its OpenAPI 3.1 document listed, read as 3.1
        await api_docs_offline(page, board.urls["deals"])
        assert sum(len(r["cards"]) for r in sales["board"]["rows"]) > 0 or sales["board"]["rows"]
    finally:
        await ctx.close()


async def test_the_audit_timeline_tells_the_deals_whole_story(board: Board) -> None:
    tok = token("u-audit", "auditor")
    ctx, page = await signed_in(board, "u-audit")
    try:
        await page.goto(f"{board.urls['web']}/audit?deal={board.won_deal}")
        (timeline,) = [p for p in await panels(page) if p["id"] == "timeline"]
        events = [json.loads(next(c["value"] for c in r["cells"] if c["key"] == "event")) for r in timeline["rows"]]
        deal = await api_answer(board, f"deals /deals/{board.won_deal}", tok)
        order = await api_answer(board, f"production /orders/for-deal/{board.won_deal}", tok)
        histories = [
            await api_answer(board, f"deals /deals/{board.won_deal}/history?limit=200", tok),
            await api_answer(board, f"leads /leads/{deal['source_lead_id']}/history?limit=200", tok),
            await api_answer(board, f"production /orders/{order['order_id']}/history?limit=200", tok),
        ]
        assert sorted(events) == sorted(e["type"].rsplit(".", 1)[-1] for h in histories for e in h["items"])
        for first, then in [
            ("LeadCaptured", "LeadConverted"),
            ("LeadConverted", "DealOpened"),
            ("DealOpened", "DealWon"),
        ]:
            assert events.index(first) < events.index(then)
        assert events.index("DealWon") < events.index("ProductionOrderCreated")
        assert "OrderShipped" in events or order["stage"] not in ("shipped", "delivered")
        await page.click("#panel-timeline details >> nth=0")  # each event's details open in place
        assert await page.locator("#panel-timeline details[open] pre").count() == 1
    finally:
        await ctx.close()


async def test_a_deal_moved_through_the_api_moves_on_the_open_board_without_a_reload(board: Board) -> None:
    tok = token("u-mgr", "sales_manager", team="north")
    ctx, page = await signed_in(board, "u-mgr")
    try:
        await page.wait_for_selector("body[data-live='1']")  # the page listens before anything moves
        await page.evaluate("window.__kept = 'this page was not reloaded'")
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.post(
                f"{board.urls['deals']}/deals",
                headers=ADMIN,
                json={
                    "title": "Tủ đông 1000L",
                    "customer": "Nhà hàng Phố Cổ",
                    "owner_id": "u-binh",
                    "team_id": "north",
                },
            )
            assert r.status_code == 201, r.text
            deal = r.json()["id"]
            card = f"#panel-board .column[data-stage='{{}}'] article[data-id='{deal}']"
            await page.wait_for_selector(card.format("target_identified"), timeout=30_000)
            await screenshot(page, "live-1-opened")
            r = await http.post(
                f"{board.urls['deals']}/deals/{deal}/move-stage", headers=ADMIN, json={"stage_id": "quote_sent"}
            )
            assert r.status_code == 200, r.text
            await page.wait_for_selector(card.format("quote_sent"), timeout=30_000)
            assert await page.locator(card.format("target_identified")).count() == 0
        assert await page.evaluate("window.__kept") == "this page was not reloaded"
        await screenshot(page, "live-2-moved")
        await figures_equal_the_api(board, page, tok)  # the refreshed panels still equal the API
    finally:
        await ctx.close()


async def test_alerts_appear_as_they_are_raised(board: Board) -> None:
    tok = token("u-audit", "auditor")
    ctx, page = await signed_in(board, "u-audit")
    try:
        await page.goto(board.urls["web"] + "/alerts")
        await page.wait_for_selector("body[data-live='1']")
        await page.evaluate("window.__kept = true")
        before = int(await page.locator("#alert-count").get_attribute("data-count") or 0)
        customer = f"Khách {uuid.uuid4().hex[:6]}"
        due = (datetime.now(UTC) + timedelta(days=1)).date()  # promised tomorrow and not built: at risk
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.post(
                f"{board.urls['production']}/orders",
                headers=ADMIN,
                json={"customer": customer, "lines": [{"product": "Tủ mát", "quantity": "1"}], "due_date": str(due)},
            )
            assert r.status_code == 201, r.text
        await page.wait_for_selector(f"#panel-alerts_production td:has-text('{customer}')", timeout=45_000)
        # the nav's badge, on every page, counts it too
        # a function, not an expression: Playwright evals a bare expression inside the page, which the CSP forbids
        await page.wait_for_function(
            "(before) => Number(document.getElementById('alert-count').dataset.count) > before",
            arg=before,
            timeout=30_000,
        )
        assert await page.evaluate("window.__kept") is True
        await figures_equal_the_api(board, page, tok)
        await screenshot(page, "live-alert")
        # in Vietnamese: the alert's kind and its sentence from its parameters, not the API's English summary
        await page.goto(board.urls["web"] + "/alerts?lang=vi")
        shown = await figures_equal_the_api(board, page, tok, lang="vi")
        cells = next(
            {c["key"]: c for c in row["cells"]}
            for p in shown
            for row in p["rows"]
            if any(customer in c["text"] for c in row["cells"])
        )
        assert cells["kind"]["text"] == i18n.gettext("vi", domain_words.ALERT_KINDS["order_at_risk"])
        assert cells["summary"]["text"].startswith(f"{customer}: vẫn ở công đoạn ")
        assert cells["summary"]["text"].endswith(f"đã hẹn giao ngày {due:%d/%m/%Y}")
    finally:
        await ctx.close()


async def test_signing_out_revokes_the_token_in_every_api(board: Board) -> None:
    ctx, page = await signed_in(board, "u-out")
    try:
        tok = await session_token(board, ctx)  # the session's token, as the board holds it
        await page.click("form[action='/logout'] button")
        await page.wait_for_url("**/login")
        signed_out = time.monotonic()
        async with httpx.AsyncClient(timeout=30) as http:

            async def refused_everywhere() -> bool:
                for s in PIPELINES:
                    r = await http.get(f"{board.urls[s]}/alerts", headers={"Authorization": f"Bearer {tok}"})
                    if r.status_code != 401:
                        return False
                return True

            await wait_until(refused_everywhere, timeout=5, interval=0.1)  # issue 20: within 5 s
            assert time.monotonic() - signed_out < 5
            fresh = {"Authorization": f"Bearer {token('u-out', 'auditor')}"}
            for s in PIPELINES:  # another token of the user works
                assert (await http.get(f"{board.urls[s]}/alerts", headers=fresh)).status_code == 200, s
        await page.goto(f"{board.urls['web']}/sales")
        assert "/login" in page.url  # signed out of the board too
    finally:
        await ctx.close()


async def test_each_role_sees_what_the_apis_let_it_see(board: Board) -> None:
    # a salesperson: only their own deals on the board, and the target plan is their own
    tok = token("u-lan", "sales", team="north")
    ctx, page = await signed_in(board, "u-lan")
    try:
        shown = {p["id"]: p for p in await figures_equal_the_api(board, page, tok)}
        owners = {
            json.loads(c["value"])
            for r in shown["board"]["rows"]
            for a in r["cards"]
            for c in a["cells"]
            if c["key"] == "owner_id"
        }
        assert owners <= {"u-lan"}
        assert "owner_id=u-lan" in shown["target"]["source"]
        await page.goto(board.urls["web"] + "/production")  # production's API refuses a salesperson
        assert {p["state"] for p in await panels(page)} == {"forbidden"}
    finally:
        await ctx.close()
    # a won deal's owner sees its story, but not the order's part: production's API does not let salespeople read
    async with httpx.AsyncClient(timeout=30) as http:
        owner = (await http.get(f"{board.urls['deals']}/deals/{board.won_deal}", headers=ADMIN)).json()["owner_id"]
    ctx, page = await signed_in(board, owner)
    try:
        await page.goto(f"{board.urls['web']}/audit?deal={board.won_deal}")
        (timeline,) = [p for p in await panels(page) if p["id"] == "timeline"]
        assert timeline["state"] == "ok" and timeline["rows"] and "production" in timeline["text"]
    finally:
        await ctx.close()
    # a manager of the south team: no north deal anywhere on the board
    tok = token("u-south", "sales_manager", team="south")
    ctx, page = await signed_in(board, "u-south")
    try:
        shown = {p["id"]: p for p in await figures_equal_the_api(board, page, tok)}
        assert "team_id=south" in shown["target"]["source"]
        deals = [a["id"] for r in shown["board"]["rows"] for a in r["cards"]]
        async with httpx.AsyncClient(timeout=30) as http:
            for d in deals:
                assert (await http.get(f"{board.urls['deals']}/deals/{d}", headers=ADMIN)).json()["team_id"] == "south"
    finally:
        await ctx.close()
    # marketing: the funnel yes, the sales board no
    tok = token("u-mkt", "marketing")
    ctx, page = await signed_in(board, "u-mkt")
    try:
        assert {p["state"] for p in await panels(page)} <= {"forbidden", "choose"}
        await page.goto(board.urls["web"] + "/marketing")
        assert {p["state"] for p in await figures_equal_the_api(board, page, tok)} == {"ok"}
    finally:
        await ctx.close()


async def test_vietnamese_pages_and_csv_exports(board: Board) -> None:
    tok = token("u-audit", "auditor")
    ctx, page = await signed_in(board, "u-audit", lang="vi")
    try:
        await page.goto(board.urls["web"] + "/marketing")
        assert await page.locator("h1").text_content() == i18n.word("Marketing", "vi")
        assert await page.locator("#panel-campaigns h2").text_content() == i18n.word("Campaign ROI and ROAS", "vi")
        shown = await figures_equal_the_api(board, page, tok, lang="vi")  # numbers written 1.234.567,5
        await screenshot(page, "desktop-marketing-vi")
        for p in shown:
            link = page.locator(f"#panel-{p['id']} a.csv")
            href = await link.get_attribute("href")
            assert href is not None
            r = await page.request.get(board.urls["web"] + href)
            assert r.ok and r.headers["content-type"].startswith("text/csv"), href
            lines = (await r.text()).lstrip("\ufeff").splitlines()
            assert lines[0].split(",")[0] == i18n.word(PAGES["marketing"].by_id[p["id"]].columns[0].label, "vi")
            assert len(lines) - 1 == p["total"], href
        # the kanban's CSV has a line per card
        await page.goto(board.urls["web"] + "/sales")
        board_panel = next(p for p in await panels(page) if p["id"] == "board")
        r = await page.request.get(board.urls["web"] + "/export/sales/board.csv")
        cards = sum(max(1, row["total"]) for row in board_panel["rows"])
        assert len((await r.text()).splitlines()) - 1 == cards
        # stage names, money, the time zone and the alerts in Vietnamese: never an id or the API's English sentence
        heads = [c["text"] for row in board_panel["rows"] for c in row["cells"] if c["key"] == "name"]
        assert i18n.gettext("vi", "Target identified") in heads and not [h for h in heads if "_" in h], heads
        values = [c["text"] for row in board_panel["rows"] for c in row["cells"] if c["key"] == "value"]
        assert any(re.fullmatch(r"[\d.]+\u00a0₫", v) for v in values), values  # 88.000.000 ₫
        assert await page.locator("#zone").text_content() == i18n.gettext("vi", "Times in %(zone)s") % {
            "zone": i18n.zone(TZ, "vi")
        }
    finally:
        await ctx.close()


async def test_the_layout_fits_a_laptop_and_a_phone_and_axe_finds_nothing_serious(board: Board) -> None:
    """At 1366×768 the sales page's first screen shows the board and the forecast; no figure wraps; axe-core finds
    no serious or critical violation on any page (the login form too); at 390×844 no page scrolls sideways."""
    web = board.urls["web"]
    paths = ("/sales?team=north", "/marketing", "/production", "/alerts", f"/audit?deal={board.won_deal}")
    ctx, page = await new_page(board, viewport={"width": 1366, "height": 768})
    try:
        for path in ("/login", "/reset?token=not-a-link"):  # the reset page says the link is no good
            await page.goto(web + path)
            assert await severe_violations(page) == [], path
    finally:
        await ctx.close()
    # without the actions' script, an action's form posts as a plain form and the answer is a page of its own (the
    # API's refusal, here the production API's to an auditor, and the form to try again)
    ctx, page = await signed_in(board, "u-audit")
    try:
        await ctx.route("**/actions.js*", lambda route: route.abort())
        await page.goto(f"{web}/act/order.hold?order_id={uuid.uuid4()}&back=/production")
        await page.fill("textarea[name=reason]", "thử")
        async with page.expect_navigation():
            await page.click('form[action="/act/order.hold"] button[type=submit]')
        assert await page.locator(".act-result.refused, .action-result").count() >= 1
        assert await severe_violations(page) == [], "POST /act/order.hold"
    finally:
        await ctx.close()
    ctx, page = await signed_in(board, "u-audit", viewport={"width": 1366, "height": 768})
    try:
        for path in paths:
            await page.goto(web + path)
            await page.wait_for_selector("body[data-live='1']")
            assert await severe_violations(page) == [], path
            assert await wrapped_figures(page) == [], path
            assert not await page_scrolls_sideways(page), path
        for path in (  # the action pages (decision 0023); an unknown deal; a filter the page refuses
            "/agenda",
            f"/deal/{board.won_deal}",
            "/act/deal.open",
            f"/deal/{uuid.uuid4()}",
            "/sales?from=yesterday",
        ):
            response = await page.goto(web + path)
            assert response is not None and response.status < 500, path
            assert await severe_violations(page) == [], path
        await page.goto(web + "/sales?team=north")
        for box in ("#panel-board", "#panel-forecast"):
            assert await top_of(page, box) < 768, box  # the first screen
        await screenshot(page, "laptop-sales-first-screen")
        # "n more" is a link to the whole column (the board's unit tests: without a script too)
        more = page.locator("#panel-board a.more").first
        if await more.count():
            column = page.locator("#panel-board .column", has=more)
            total = int(await column.get_attribute("data-total") or 0)
            await more.click()
            await page.wait_for_url("**more=*")
            stage = parse_qs(urlsplit(page.url).query)["more"][0]
            assert await page.locator(f"#panel-board .column[data-stage='{stage}'] article").count() == total
    finally:
        await ctx.close()
    ctx, page = await signed_in(
        board, "u-audit", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        for path in paths:
            await page.goto(web + path)
            # the page itself never scrolls sideways: wide tables and the kanban scroll inside their panel
            assert not await page_scrolls_sideways(page), path
            assert await wrapped_figures(page) == [], path
            await screenshot(page, "phone-" + path.strip("/").split("?")[0])
    finally:
        await ctx.close()


async def test_bad_input_gets_a_clear_answer(board: Board) -> None:
    web = board.urls["web"]
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as http:
        form = re.search(r'name="csrf" value="([^"]+)"', (await http.get(f"{web}/login")).text)
        assert form, "the login form carries its token (tests/unit/web/test_sessions.py)"
        login = {"email": email("u-audit"), "csrf": form.group(1)}
        r = await http.post(f"{web}/login", data=login | {"password": "not the password", "next": "/sales"})
        assert r.status_code == 401 and "Wrong email or password" in r.text
        assert (await http.get(f"{web}/sales")).status_code == 303  # not signed in: to the login page
        for path in ("/panel/sales/board", "/export/sales/board.csv", "/events"):
            assert (await http.get(f"{web}{path}")).status_code == 401, path
        r = await http.post(
            f"{web}/login", data=login | {"password": password("u-audit"), "next": "https://evil.example/"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/sales"  # no open redirect
        r = await http.get(f"{web}/sales", params={"from": "yesterday"})
        assert r.status_code == 422 and "from: &#39;yesterday&#39; is not a date" in r.text
        r = await http.get(f"{web}/sales", params={"from": "2026-05-01", "to": "2026-04-01"})
        assert r.status_code == 422 and "to: must be after from" in r.text
        r = await http.get(f"{web}/audit", params={"deal": "<script>"})
        assert r.status_code == 422 and "<script>" not in r.text
        r = await http.get(f"{web}/panel/sales/nothing")
        assert r.status_code == 404
        r = await http.get(f"{web}/audit", params={"deal": str(uuid.uuid4())})
        assert r.status_code == 200 and 'data-state="not_found"' in r.text
        r = await http.get(f"{web}/sales")
        assert "default-src 'self'" in r.headers["content-security-policy"]
