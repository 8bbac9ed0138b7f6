"""The web board without servers: words and numbers in both languages, filters, CSV, live notices, and the app
against API answers faked at the HTTP transport (the real APIs are in tests/e2e/test_web_board.py)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.production.domain.order import STAGES
from services.web import catalogs, i18n, live, stream
from services.web.apis import Shown, refused
from services.web.app import COOKIE, create_app
from services.web.exports import csv_value
from services.web.pages import AUDIT, pages
from services.web.pages.production import ORDER_STAGES
from services.web.pages.sales import target_scope
from services.web.panels import FilterError, Filters
from services.web.session import safe_next
from shared.edge.auth import Principal
from shared.ops.settings import Settings
from testkit.services import TEST_JWKS
from tests.unit.web.signin_fake import PASSWORD, SIGNIN_PORT, FakeSignIn

SETTINGS = Settings(jwt_public_keys=TEST_JWKS, jwt_signing_keys={}, log_json=False)
SIGNIN = FakeSignIn()  # the sign-in service's answers (decision 0022)
ALL_PAGES = {**pages(ZoneInfo("Asia/Ho_Chi_Minh")), "audit": AUDIT}
VI_CATALOG = catalogs.read("vi")


def session(user: str, *roles: str, team: str | None = None) -> str:
    """The cookie of a user signed in (a session the fake sign-in service knows)."""
    return SIGNIN.session(user, *roles, team=team)


def test_every_label_has_both_languages() -> None:
    labels: set[str] = set()
    for page in ALL_PAGES.values():
        labels |= {page.title} | {p.title for p in page.panels}
        for panel in page.panels:
            labels |= {c.label for c in (*panel.columns, *panel.card_columns)}
    for label in labels:  # an English msgid (N_), translated by the vi catalog
        assert i18n.word(label, "en") == label, label
        assert label in {m.id for m in VI_CATALOG if m.string}, label  # the vi catalog translates it


@pytest.mark.parametrize(
    ("value", "kind", "en", "vi"),
    [
        ("145800000", "money", "₫145,800,000", "145.800.000\u00a0₫"),
        ({"VND": "116640000", "USD": "12.5"}, "money", "$12.50 · ₫116,640,000", "12,50\u00a0US$ · 116.640.000\u00a0₫"),
        (0.833333, "pct", "83.3%", "83,3%"),
        (1.0, "pct", "100.0%", "100,0%"),
        (3.5, "ratio", "3.50", "3,50"),
        (-1234, "int", "-1,234", "-1.234"),
        (None, "money", "—", "—"),
        (True, "bool", "yes", "có"),
        ("ready_to_ship", "stage", "Ready to ship", "Sẵn sàng giao"),
        ("target_identified", "stage", "Target identified", "Xác định mục tiêu"),
        ("2026-12-01T21:13:24.876439+00:00", "datetime", "2\u00a0Dec\u00a02026,\u00a004:13", "02/12/2026\u00a004:13"),
        ("2026-12-10", "date", "10\u00a0Dec\u00a02026", "10/12/2026"),
        ("not a number", "money", "not a number", "not a number"),
    ],
)
def test_numbers_are_written_as_each_language_writes_them(value: Any, kind: str, en: str, vi: str) -> None:
    tz = ZoneInfo("Asia/Ho_Chi_Minh")  # times are written in the business's time zone
    assert i18n.fmt(value, kind, "en", tz) == en
    assert i18n.fmt(value, kind, "vi", tz) == vi


def test_the_language_comes_from_the_query_then_the_cookie_then_the_browser() -> None:
    assert i18n.pick_lang("vi", "en", "en-US") == "vi"
    assert i18n.pick_lang(None, "en", "vi-VN,vi") == "en"
    assert i18n.pick_lang("xx", None, "vi-VN,vi;q=0.9") == "vi"
    assert i18n.pick_lang(None, None, None) == "en"


def test_filters_have_defaults_and_refuse_bad_input_by_name() -> None:
    today = date(2026, 12, 1)
    f = Filters.parse({}, today)
    assert (f.start, f.end, f.period) == (date(2026, 1, 1), date(2026, 12, 2), "2026-12")
    assert Filters.parse({"period": "2027-Q1", "team": "north"}, today).as_query()["team"] == "north"
    for query, message in [
        ({"from": "yesterday"}, "from: 'yesterday' is not a date"),
        ({"from": "2026-05-01", "to": "2026-04-01"}, "to: must be after from"),
        ({"period": "2026-13"}, "period:"),
        ({"as_of": "2027-01-01"}, "as_of: a date in the future"),
        ({"team": "north'; drop"}, "team:"),
        ({"deal": "<script>"}, "deal:"),
        ({"from": "0001-01-01"}, "days 1900-01-01 to 2199-12-31"),
    ]:
        with pytest.raises(FilterError, match=message.replace("(", r"\(")):
            Filters.parse(query, today)


def test_whose_target_plan_follows_the_role() -> None:
    f = Filters.parse({"team": "south"}, date(2026, 12, 1))
    assert target_scope(f, Principal("m", frozenset({"sales_manager"}), "north")) == {
        "period": "2026-12",
        "team_id": "north",  # a manager's own team, whatever was typed
    }
    assert target_scope(f, Principal("u-lan", frozenset({"sales"}), "north"))["owner_id"] == "u-lan"
    assert target_scope(f, Principal("a", frozenset({"auditor"})))["team_id"] == "south"
    assert target_scope(Filters.parse({}, date(2026, 12, 1)), Principal("a", frozenset({"auditor"}))) is None


def test_csv_values_are_plain_and_never_formulas() -> None:
    assert csv_value({"VND": "10", "USD": "2"}) == "USD 2; VND 10"
    assert csv_value("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_value("-12.5") == "-12.5"
    assert csv_value(None) == "" and csv_value(False) == "false"


def test_sign_in_goes_only_to_this_sites_pages() -> None:
    assert safe_next("/sales?team=north") == "/sales?team=north"
    for bad in ("https://evil.example/", "//evil.example", "/\\evil", "javascript:alert(1)"):
        assert safe_next(bad) == "/sales"


def test_a_live_notice_names_the_pipeline_and_position_only() -> None:
    topics = {"pipelines.deals.events": "deals", "pipelines.alerts": "alerts"}
    envelope = {"source": "/pipelines/deals", "position": 41, "data": {"customer": "Sen Vàng"}}
    assert live.notice("pipelines.deals.events", json.dumps(envelope).encode(), topics) == {
        "service": "deals",
        "position": 41,
    }
    alert = {"source": "/pipelines/production", "position": 3}
    assert live.notice("pipelines.alerts", json.dumps(alert).encode(), topics) == {
        "service": "alerts",
        "of": "production",
    }
    assert live.notice("pipelines.deals.events", b"\xff not json", topics) == {"service": "deals"}
    assert live.notice("other.topic", b"{}", topics) is None


async def test_a_slow_page_is_told_to_refresh_everything_instead_of_piling_up() -> None:
    hub = live.Hub()
    async with hub.subscribe() as q:
        for n in range(live.QUEUE + 5):
            hub.publish({"service": "deals", "position": n})
        assert q.qsize() < live.QUEUE and {"service": "*"} in [q.get_nowait() for _ in range(q.qsize())]
    assert hub.listeners == 0


BOARD = {
    "stages": [
        {
            "stage_id": "quote_sent",
            "name": "Quote sent",
            "count": 1,
            "stuck_count": 1,
            "no_next_step_count": 0,
            "overdue_count": 1,
            "value": {"VND": "5000000"},
            "weighted_value": {"VND": "3000000"},
            "deals": [
                {
                    "deal_id": "d-1",
                    "title": "Tủ đông",
                    "customer": "=cmd|' /C calc'!A0",
                    "owner_id": "u-lan",
                    "value": "5000000",
                    "weighted_value": "3000000",
                    "days_in_stage": 21,
                    "stuck": True,
                    "next_step": {"kind": "call", "title": "Gọi chốt giá", "due_at": "2026-12-01T21:13:24+00:00"},
                    "no_next_step": False,
                    "overdue": True,
                    "delivery_risk": None,
                    "expected_close_date": "2026-12-20",
                }
            ],
        }
    ]
}


def problem(status: int, detail: str, rule: str, **members: Any) -> httpx.Response:
    """An API's error answer (RFC 9457, as shared.edge.problems writes it)."""
    body = {"type": f"urn:pipelines:problem:{rule}", "title": "…", "status": status, "detail": detail, "rule": rule}
    return httpx.Response(
        status, content=json.dumps(body | members).encode(), headers={"Content-Type": "application/problem+json"}
    )


def fake_apis(request: httpx.Request) -> httpx.Response:
    """The deals API's board; 403 for marketing's funnel, 422 for the stage analytics; everything else answers an
    empty list. The sign-in service: ``SIGNIN``."""
    if request.url.port == SIGNIN_PORT:
        return SIGNIN(request)
    if request.url.path == "/board" and request.url.port == 8102:
        return httpx.Response(200, json=BOARD)
    if request.url.path == "/funnel":
        return problem(403, "no role allows this", "forbidden")
    if request.url.path == "/analytics/stages":
        errors = [
            {"loc": ["query", "from"], "msg": "Input should be a valid date", "type": "date_from_datetime_parsing"}
        ]
        return problem(422, "the request does not match this API: query.from", "invalid_input", errors=errors)
    if request.url.path == "/campaigns":
        raise httpx.ConnectError("refused")
    return httpx.Response(200, json=[])


async def csrf_field(web: httpx.AsyncClient) -> str:
    """The login form's hidden ``csrf`` value (its cookie is now in the client)."""
    found = re.search(r'name="csrf" value="([^"]+)"', (await web.get("/login")).text)
    assert found, "no csrf field in the login form"
    return found.group(1)


@pytest.fixture
async def web() -> Any:
    app = create_app(SETTINGS, transport=httpx.MockTransport(fake_apis), live_feed=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web")
    async with app.router.lifespan_context(app), client:
        yield client


async def test_sign_in_keeps_only_the_session_in_an_http_only_cookie(web: httpx.AsyncClient) -> None:
    SIGNIN.users["lan@example.vn"] = ("u-lan", ("sales",), "north")
    form = {"csrf": await csrf_field(web)}  # the login form's (tests/unit/web/test_sessions.py)
    r = await web.post("/login", data={"email": "lan@example.vn", "password": "nope", "next": "/sales"} | form)
    assert r.status_code == 401 and "Wrong email or password" in r.text
    login = {"email": "lan@example.vn", "password": PASSWORD, "next": "/production"}
    r = await web.post("/login", data=login | form)
    assert r.status_code == 303 and r.headers["location"] == "/production"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(COOKIE) and "HttpOnly" in cookie and "SameSite=lax" in cookie
    secret = web.cookies[COOKIE]
    assert secret in SIGNIN.sessions and "." not in secret  # the session's secret, not a token
    page = await web.get("/sales")
    csrf = SIGNIN.sessions[secret]["csrf"]
    assert f'name="csrf" value="{csrf}"' in page.text and "eyJ" not in page.text  # the session's CSRF token
    r = await web.post("/logout", data={"csrf": csrf})
    assert r.status_code == 303 and 'pipelines_session=""' in r.headers["set-cookie"]
    assert SIGNIN.sessions[secret]["ended"]


async def test_a_page_shows_the_api_values_and_says_what_it_could_not_show(web: httpx.AsyncClient) -> None:
    web.cookies.set(COOKIE, session("u-lan", "sales"))
    r = await web.get("/sales?lang=vi")
    assert r.status_code == 200 and r.headers["content-security-policy"].startswith("default-src 'self'")
    assert 'data-value="21"' in r.text and "Số ngày ở giai đoạn" in r.text and "5.000.000" in r.text
    assert 'class="card hl"' in r.text  # stuck
    assert "Gọi chốt giá" in r.text and "02/12/2026\u00a004:13" in r.text  # the next step, due in the business's zone
    assert "Quá hạn" in r.text and 'data-key="overdue" data-value="true"' in r.text  # flagged overdue
    assert "=cmd|" in r.text and "<script" not in r.text.split("</head>")[1]
    r = await web.get("/marketing")
    assert 'data-panel="funnel_source"' in r.text and 'data-state="forbidden"' in r.text
    assert 'data-state="unavailable"' in r.text and r.status_code == 200  # one API down, the page still shows
    r = await web.get("/export/sales/board.csv?lang=en")
    lines = r.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("Stage,Deals,Stuck,No next step,Overdue,Value,Weighted,Deal,Customer")
    assert "Next step,Next step due,No next step,Overdue" in lines[0]
    assert "'=cmd|" in lines[1] and "VND 5000000" in lines[1]
    assert (await web.get("/export/marketing/funnel_source.csv")).status_code == 403
    assert (await web.get("/panel/sales/board?from=nope")).status_code == 422


async def test_event_streams_carry_notices_and_end_when_the_process_stops() -> None:
    stop = asyncio.Event()
    app = create_app(SETTINGS, transport=httpx.MockTransport(fake_apis), live_feed=False, stop=stop)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web")
    async with app.router.lifespan_context(app), client:
        client.cookies.set(COOKIE, session("u-lan", "sales"))
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, app.state.board.hub.publish, {"service": "deals", "position": 7})
        loop.call_later(0.8, stop.set)  # SIGTERM: an open page must not hold the shutdown
        r = await asyncio.wait_for(client.get("/events"), 10)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.text.startswith("retry: 2000") and 'data: {"service": "deals", "position": 7}' in r.text


def test_a_panel_says_why_an_api_refused_with_its_problems_detail() -> None:
    panel = AUDIT.panels[1]
    shown = refused(Shown(panel, "deals /deals"), problem(404, "no deal d-1", "not_found"))
    assert (shown.state, shown.detail) == ("not_found", "no deal d-1")
    errors = [{"loc": ["query", "limit"], "msg": "too big"}]  # a 422: a sentence in detail, the fields in errors
    sentence = "the request does not match this API: query.limit"
    shown = refused(Shown(panel, ""), problem(422, sentence, "invalid_input", errors=errors))
    assert (shown.state, shown.detail) == ("invalid", sentence)
    shown = refused(Shown(panel, ""), httpx.Response(502, text="<html>bad gateway</html>"))
    assert (shown.state, shown.detail) == ("unavailable", None)


async def test_pages_answer_html_and_a_panels_refusal_is_a_problem(web: httpx.AsyncClient) -> None:
    web.cookies.set(COOKIE, session("u-lan", "sales"))
    r = await web.get("/sales?from=nope")  # a browser's page: HTML, the filter named
    assert (
        r.status_code == 422 and r.headers["content-type"].startswith("text/html") and "from: &#39;nope&#39;" in r.text
    )
    r = await web.get("/sales")  # an API's 422 problem: the panel says why, with its detail
    assert 'data-panel="stages"' in r.text and "the request does not match this API: query.from" in r.text
    r = await web.get("/panel/sales/nope")  # the page's script fetches panels: a problem
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "no panel sales/nope" and r.json()["rule"] == "not_found"
    r = await web.get("/export/marketing/funnel_source.csv")
    assert r.status_code == 403 and r.json()["detail"] == "no role allows this"
    web.cookies.delete(COOKIE)
    for path in ("/panel/sales/board", "/alerts/count", "/events"):
        r = await web.get(path)
        assert r.status_code == 401 and r.json()["rule"] == "unauthenticated", path
    r = await web.get("/sales?team=north")  # a page signed out: to the sign-in form, back here after
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fsales%3Fteam%3Dnorth"


async def test_an_event_stream_sends_the_notices_until_stop() -> None:
    hub, stop = live.Hub(), asyncio.Event()
    lines = stream.notices(hub, stop)
    assert await anext(lines) == "retry: 2000\n\n"
    hub.publish({"service": "leads", "position": 3})
    assert await anext(lines) == 'data: {"service": "leads", "position": 3}\n\n'
    stop.set()
    with pytest.raises(StopAsyncIteration):
        await anext(lines)
    assert hub.listeners == 0


def directory(request: httpx.Request) -> httpx.Response:
    """The directory's lists as a director sees them (its own scoping: tests/integration/
    test_directory_users_and_teams.py)."""
    if request.url.path == "/teams":
        teams = [{"team_id": "north", "name": "Miền Bắc"}, {"team_id": "south", "name": "Miền Nam"}]
        return httpx.Response(200, json={"items": teams, "next_cursor": None})
    users = [
        {"user_id": "u-lan", "name": "Lan", "roles": ["sales"], "team_id": "north"},
        {"user_id": "u-binh", "name": "Bình", "roles": ["sales"], "team_id": "north"},
        {"user_id": "u-mai", "name": "Mai", "roles": ["sales_manager"], "team_id": "south"},
        {"user_id": "u-audit", "name": "Kiểm", "roles": ["auditor"], "team_id": None},
    ]
    return httpx.Response(200, json={"items": users, "next_cursor": None})


async def test_team_and_salesperson_are_dropdowns_of_what_the_user_may_see() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.port == 8104:
            return directory(request)
        return fake_apis(request)

    app = create_app(SETTINGS, transport=httpx.MockTransport(answer), live_feed=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web") as web,
    ):

        def filter_options(page: str) -> list[str]:  # the filters' dropdowns (a card's "Move to…" has options too)
            return re.findall(r'<option value="([^"]*)"', page.split('class="filters"', 1)[1].split("</form>", 1)[0])

        # a director: every team, every salesperson (not the auditor: no deals of their own)
        web.cookies.set(COOKIE, session("u-dir", "sales_director"))
        r = await web.get("/sales?team=south&owner=u-mai")
        assert r.status_code == 200
        assert filter_options(r.text) == ["", "north", "south", "", "u-binh", "u-lan", "u-mai"]
        assert '<option value="south" selected>Miền Nam</option>' in r.text
        # a salesperson: their own team and themself; another team or person is refused, not shown empty
        web.cookies.set(COOKIE, session("u-lan", "sales", team="north"))
        r = await web.get("/sales")
        assert filter_options(r.text) == ["", "north", "", "u-lan"]
        for query, field in (("team=south", "team"), ("owner=u-binh", "owner")):
            r = await web.get(f"/sales?{query}")
            assert r.status_code == 422 and f"{field}: &#39;" in r.text and "is not one you may see" in r.text
            assert (await web.get(f"/panel/sales/board?{query}")).status_code == 422
            assert (await web.get(f"/export/sales/board.csv?{query}")).status_code == 422
        assert (await web.get("/sales?team=north&owner=u-lan")).status_code == 200
        assert (await web.get("/marketing")).status_code == 200  # a page without those filters asks no directory


async def test_without_the_directory_no_team_can_be_chosen(web: httpx.AsyncClient) -> None:
    web.cookies.set(COOKIE, session("u-dir", "sales_director"))
    r = await web.get("/sales?team=north")  # the fake answers no list: as if the directory were down
    assert r.status_code == 422 and "team: the directory does not answer" in r.text
    r = await web.get("/sales")
    assert r.status_code == 200 and '<input type="text" name="team"' in r.text


def test_the_boards_order_stages_are_the_production_orders() -> None:
    """The board knows production by its API only (an import contract), so it names the order's stages itself (the
    cumulative flow's columns): the same stages as production's domain, in the same order."""
    assert ORDER_STAGES == STAGES
