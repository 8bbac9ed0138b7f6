"""The board's actions without servers (issue 28 item 1): each action route makes the API call it should, with the
user's own token; no post without the session's CSRF token; a stale version answers with the deal as it is now; a
refusal is said in the user's language. The real APIs: tests/e2e/test_web_board.py."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.web.actions.core import REGISTRY
from services.web.app import COOKIE, create_app
from services.web.domain_words import refusal
from shared.ops.settings import Settings
from testkit.services import TEST_JWKS
from tests.unit.web.signin_fake import SIGNIN_PORT, FakeSignIn

SETTINGS = Settings(jwt_public_keys=TEST_JWKS, jwt_signing_keys={}, log_json=False)
DEALS, DIRECTORY, AGENDA = 8102, 8104, 8105
DEAL = "7d0c5c8e-5f3c-4c55-9d7a-6f1d3c1e2a01"
ACTIVITY = "0b0e5c8e-5f3c-4c55-9d7a-6f1d3c1e2a02"
ORG = "1a0e5c8e-5f3c-4c55-9d7a-6f1d3c1e2a03"
STEP = {
    "activity_id": ACTIVITY,
    "kind": "phone",
    "subject_type": "deal",
    "subject_id": DEAL,
    "title": "Gọi chốt giá",
    "due_at": "2026-12-01T02:00:00+00:00",
    "version": 2,
}
NOW = {"deal_id": DEAL, "title": "Máy nén khí", "status": "open", "stage": {"stage_id": "proposal", "name": "Proposal"}}


def problem(status: int, rule: str, detail: str) -> httpx.Response:
    body = {"type": f"urn:pipelines:problem:{rule}", "title": "…", "status": status, "detail": detail, "rule": rule}
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"Content-Type": "application/problem+json"}
    )


class FakeApis:
    """The APIs' answers, and every call the board made (method, port, path, query, headers, JSON body)."""

    def __init__(self) -> None:
        self.signin = FakeSignIn()
        self.calls: list[dict[str, Any]] = []
        self.deal_version = 4

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.port == SIGNIN_PORT:
            return self.signin(request)
        call = {
            "method": request.method,
            "port": request.url.port,
            "path": request.url.path,
            "query": dict(request.url.params),
            "headers": request.headers,
            "body": json.loads(request.content) if request.content else None,
        }
        self.calls.append(call)
        return self.answer(call)

    def answer(self, call: dict[str, Any]) -> httpx.Response:
        path, port = call["path"], call["port"]
        if call["method"] == "GET":
            if path == f"/deals/{DEAL}":
                return httpx.Response(200, json=NOW | {"version": self.deal_version})
            if path == f"/organisations/{ORG}/360":
                won = {"deal_id": DEAL, "title": "Lò hơi", "status": "won", "value": "88000000", "currency": "VND"}
                return httpx.Response(
                    200, json={"organisation_id": ORG, "purchases": 1, "deals": {"won": {"count": 1, "listed": [won]}}}
                )
            if path == f"/organisations/{ORG}":
                return httpx.Response(200, json={"organisation_id": ORG, "name": "Công ty Thép Việt"})
            if path.startswith("/organisations/"):  # not one the user may see
                return problem(404, "not_found", "no such organisation")
            if path == "/agenda":
                return httpx.Response(200, json={"time_zone": "Asia/Ho_Chi_Minh", "overdue": [STEP], "today": []})
            if path == "/pipelines/default":
                stages = [{"stage_id": s, "name": s.title(), "kind": "open"} for s in ("qualified", "proposal")]
                return httpx.Response(200, json={"stages": stages})
            return httpx.Response(200, json={"items": []} if port in (DIRECTORY, AGENDA) else [])
        if path.endswith("/move-stage"):
            wanted = call["headers"].get("if-match")
            if wanted and wanted != f'"{self.deal_version}"':
                return problem(412, "stale_version", f"the stream is at version {self.deal_version}")
            if call["body"]["stage_id"] == "won":
                return problem(409, "use_win_or_lose", "a deal is closed by win or lose")
        if path.endswith("/lose"):
            return problem(403, "forbidden", "only the deal's owner, their team's manager, a director or an admin")
        return httpx.Response(200 if path != "/deals" else 201, json={"id": DEAL, "version": 5, "position": 77})


@pytest.fixture
async def board() -> AsyncIterator[tuple[httpx.AsyncClient, FakeApis, str]]:
    apis = FakeApis()
    app = create_app(SETTINGS, transport=httpx.MockTransport(apis), live_feed=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web")
    secret = apis.signin.session("u-lan", "sales", team="north")
    client.cookies.set(COOKIE, secret)
    async with app.router.lifespan_context(app), client:
        yield client, apis, apis.signin.sessions[secret]["csrf"]


SAME = {"Origin": "http://web", "Sec-Fetch-Site": "same-origin"}
SCRIPT = SAME | {"Accept": "application/json"}


def commands(apis: FakeApis) -> list[dict[str, Any]]:
    return [c for c in apis.calls if c["method"] != "GET"]


def user_of(call: dict[str, Any]) -> str:
    """Whose token the call carried (the JWT's claims; the fake sign-in service signed it)."""
    claims = call["headers"]["authorization"].removeprefix("Bearer ").split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"])


@pytest.mark.parametrize(
    ("action", "form", "port", "path", "body", "if_match"),
    [
        ("deal.move", {"deal_id": DEAL, "version": "4", "stage_id": "proposal"}, DEALS,
         f"/deals/{DEAL}/move-stage", {"stage_id": "proposal"}, '"4"'),
        ("deal.move", {"card": f"{DEAL}:4", "stage_id": "proposal"}, DEALS,  # a board card's "Move" button
         f"/deals/{DEAL}/move-stage", {"stage_id": "proposal"}, '"4"'),
        ("deal.win", {"deal_id": DEAL, "version": "4", "requested_delivery_date": "2027-01-15"}, DEALS,
         f"/deals/{DEAL}/win", {"requested_delivery_date": "2027-01-15"}, '"4"'),
        ("deal.reopen", {"deal_id": DEAL, "version": "6", "reason": "khách quay lại"}, DEALS,
         f"/deals/{DEAL}/reopen", {"reason": "khách quay lại"}, '"6"'),
        ("deal.value", {"deal_id": DEAL, "version": "4", "amount": "88000000", "currency": "VND"}, DEALS,
         f"/deals/{DEAL}/change-value", {"value": {"amount": "88000000", "currency": "VND"}}, '"4"'),
        ("deal.close_date", {"deal_id": DEAL, "version": "4", "expected_close_date": "2027-02-01"}, DEALS,
         f"/deals/{DEAL}/change-close-date", {"expected_close_date": "2027-02-01"}, '"4"'),
        ("activity.schedule", {"deal_id": DEAL, "kind": "phone", "title": "Gọi chốt giá", "due_at": "2026-12-10T09:30"},
         AGENDA, "/activities", {"kind": "phone", "title": "Gọi chốt giá", "due_at": "2026-12-10T09:30:00+07:00",
                                 "subject_type": "deal", "subject_id": DEAL}, None),
        ("activity.complete", {"activity_id": ACTIVITY, "version": "2", "outcome": "đã gọi"}, AGENDA,
         f"/activities/{ACTIVITY}/complete", {"outcome": "đã gọi"}, '"2"'),
        ("activity.reschedule", {"activity_id": ACTIVITY, "version": "2", "due_at": "2026-12-11T14:00"}, AGENDA,
         f"/activities/{ACTIVITY}/reschedule", {"due_at": "2026-12-11T14:00:00+07:00"}, '"2"'),
    ],
)  # fmt: skip
async def test_each_action_makes_its_api_call_with_the_users_token(
    board: tuple[httpx.AsyncClient, FakeApis, str],
    action: str,
    form: dict[str, str],
    port: int,
    path: str,
    body: dict[str, Any],
    if_match: str | None,
) -> None:
    web, apis, csrf = board
    r = await web.post(f"/act/{action}", data=form | {"csrf": csrf, "back": "/sales?team=north"}, headers=SAME)
    assert r.status_code == 303 and r.headers["location"] == "/sales?team=north"
    (call,) = commands(apis)
    assert (call["method"], call["port"], call["path"], call["body"]) == ("POST", port, path, body)
    assert user_of(call) == "u-lan" and call["headers"].get("if-match") == if_match
    assert action in REGISTRY


async def test_a_new_deal_is_the_users_own_with_the_chosen_customers_name(
    board: tuple[httpx.AsyncClient, FakeApis, str],
) -> None:
    web, apis, csrf = board
    form = {"title": "Dây chuyền sơn", "organisation_id": ORG, "amount": "88000000", "currency": "VND", "csrf": csrf}
    form |= {"_user": "u-boss", "owner_id": "u-boss", "idempotency_key": "k-0123456789"}  # neither is the form's
    r = await web.post("/act/deal.open", data=form, headers=SCRIPT)
    assert r.status_code == 200 and r.json()["ok"] and r.json()["answer"]["position"] == 77
    (call,) = commands(apis)
    assert call["path"] == "/deals" and call["headers"]["idempotency-key"] == "k-0123456789"
    assert call["body"] == {
        "title": "Dây chuyền sơn",
        "customer": "Công ty Thép Việt",  # the directory's name, read with the user's token
        "organisation_id": ORG,
        "owner_id": "u-lan",
        "team_id": "north",
        "value": {"amount": "88000000", "currency": "VND"},
    }
    assert "deal_id" in call["query"]  # a retry of the same form finds the deal it opened
    assert all(user_of(c) == "u-lan" for c in apis.calls)


async def test_no_action_runs_without_the_sessions_csrf_token_or_from_another_site(
    board: tuple[httpx.AsyncClient, FakeApis, str],
) -> None:
    web, apis, csrf = board
    form = {"deal_id": DEAL, "version": "4", "stage_id": "proposal"}
    assert (await web.post("/act/deal.move", data=form, headers=SAME)).status_code == 403
    assert (await web.post("/act/deal.move", data=form | {"csrf": "x" * 43}, headers=SCRIPT)).status_code == 403
    elsewhere = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert (await web.post("/act/deal.move", data=form | {"csrf": csrf}, headers=elsewhere)).status_code == 403
    r = await web.post("/act/deal.move", json=form, headers=SCRIPT | {"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["ok"]  # a script's token in the header
    assert len(commands(apis)) == 1


async def test_a_path_id_is_an_id_and_nothing_else(board: tuple[httpx.AsyncClient, FakeApis, str]) -> None:
    web, apis, csrf = board
    for bad in ("../pipelines/default", "a/b", "", "x" * 101):
        for form in ({"deal_id": bad}, {"card": f"{bad}:3"}):
            r = await web.post("/act/deal.move", data=form | {"stage_id": "proposal", "csrf": csrf}, headers=SCRIPT)
            assert r.status_code == 422 and r.json()["rule"] == "invalid_input"
    assert commands(apis) == []
    assert (await web.post("/act/nope", data={"csrf": csrf}, headers=SCRIPT)).status_code == 404
    big = {"deal_id": DEAL, "stage_id": "p" * 40_000, "csrf": csrf}
    assert (await web.post("/act/deal.move", data=big, headers=SCRIPT)).status_code == 413


async def test_a_stale_move_answers_with_the_deal_as_it_is_now_and_a_retry_works(
    board: tuple[httpx.AsyncClient, FakeApis, str],
) -> None:
    web, apis, csrf = board
    apis.deal_version = 5  # someone moved it meanwhile
    form = {"deal_id": DEAL, "version": "4", "stage_id": "proposal", "csrf": csrf}
    r = await web.post("/act/deal.move?lang=vi", data=form, headers=SCRIPT)
    assert r.status_code == 412
    answer = r.json()
    assert answer["rule"] == "stale_version" and answer["current"]["version"] == 5
    assert answer["current"]["stage"]["stage_id"] == "proposal"
    assert answer["message"] == refusal("stale_version", None, "vi") and answer["texts"]["retry"] == "Thử lại"
    r = await web.post("/act/deal.move", data=form | {"version": "5"}, headers=SCRIPT)
    assert r.status_code == 200 and r.json()["ok"]
    # without a script: the page says it, shows the deal now, and its retry form carries the new version
    page = await web.post("/act/deal.move", data=form, headers=SAME)
    assert page.status_code == 412 and 'data-rule="stale_version"' in page.text
    assert 'name="version" value="5"' in page.text and "Máy nén khí" in page.text


async def test_a_refusal_is_said_in_the_users_language_with_the_apis_reason(
    board: tuple[httpx.AsyncClient, FakeApis, str],
) -> None:
    web, _, csrf = board
    form = {"deal_id": DEAL, "version": "4", "reason": "giá", "csrf": csrf}
    r = await web.post("/act/deal.lose?lang=vi", data=form, headers=SCRIPT)
    assert r.status_code == 403 and r.json()["rule"] == "forbidden"
    assert r.json()["message"] == refusal("forbidden", None, "vi") and "owner" in r.json()["detail"]
    assert r.json()["message"].startswith("Vai trò của bạn")
    page = await web.post("/act/deal.lose?lang=vi", data=form, headers=SAME)
    assert page.status_code == 403 and "Vai trò của bạn" in page.text
    r = await web.post("/act/deal.move", data=form | {"stage_id": "won"}, headers=SCRIPT)
    assert r.status_code == 409 and r.json()["message"].startswith(
        "Hãy dùng Thắng hoặc Thua"
    )  # the language kept in its cookie


async def test_the_deal_agenda_and_customer_pages_show_the_apis_answers(
    board: tuple[httpx.AsyncClient, FakeApis, str],
) -> None:
    web, apis, _ = board
    page = await web.get(f"/deal/{DEAL}")
    assert page.status_code == 200 and "Máy nén khí" in page.text
    assert 'action="/act/deal.move"' in page.text and 'name="version" value="4"' in page.text
    assert 'value="qualified"' in page.text  # the pipeline's stages, as the deals API gave them
    agenda = await web.get("/agenda?lang=en")
    assert agenda.status_code == 200 and "Gọi chốt giá" in agenda.text and "09:00" in agenda.text
    assert 'action="/act/activity.complete"' in agenda.text and 'name="activity_id" value="' + ACTIVITY in agenda.text
    customer = await web.get(f"/customers/{ORG}")
    assert customer.status_code == 200 and "Công ty Thép Việt" in customer.text and "Lò hơi" in customer.text
    assert f'href="/deal/{DEAL}"' in customer.text
    assert (await web.get("/customers/..%2Fusers")).status_code == 404  # an id, nothing else
    assert (await web.get(f"/customers/{DEAL}")).status_code == 404  # the directory does not show it to this user
    assert (await web.get("/act/deal.open")).status_code == 200
    assert all(user_of(c) == "u-lan" for c in apis.calls)
