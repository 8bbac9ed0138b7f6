"""The marketing and production actions without servers: each form makes the one API call it should, with the
user's token; a post without the session's CSRF token is refused; an API's refusal is shown (the real APIs are in
tests/e2e/test_web_board.py)."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from services.deals.events import deal_id_for_lead
from services.web.actions import ops_calls as calls
from services.web.app import COOKIE, create_app
from shared.ops.settings import Settings
from testkit.services import TEST_JWKS
from tests.unit.web.signin_fake import SIGNIN_PORT, FakeSignIn

LEAD = "0b6f1a52-5a0e-4a7e-9a53-0f6a0c1d2e3f"
ORDER = "5f0e8c1a-1b2c-4d3e-8f4a-5b6c7d8e9f00"


def test_the_deal_a_conversion_opens_has_the_contracts_id() -> None:
    assert calls.deal_of_lead(LEAD) == str(deal_id_for_lead(uuid.UUID(LEAD)))


def test_marketing_forms_become_the_leads_apis_calls() -> None:
    lead = calls.capture_lead(None, {"source": "fair", "campaign_id": "hoi-cho", "name": " Bích ", "phone": "0912"})
    assert lead == calls.Call(
        "POST",
        "leads",
        "/leads",
        {
            "source": "fair",
            "contact": {"name": "Bích", "phone": "0912"},
            "attribution": {"source": "fair", "campaign_id": "hoi-cho"},
        },
    )
    assert calls.assign_lead(LEAD, {"owner_id": "u-lan"}).body == {"owner_id": "u-lan"}
    assert calls.contact_lead(LEAD, {"channel": "zalo"}).path == f"/leads/{LEAD}/contact"
    assert calls.disqualify_lead(LEAD, {"reason": "spam", "note": ""}).body == {"reason": "spam"}
    convert = calls.convert_lead(LEAD, {"customer": "Phố", "title": "Máy", "amount": "88 000 000", "currency": ""})
    assert convert.body == {
        "customer": "Phố",
        "title": "Máy",
        "estimated_value": {"amount": "88000000", "currency": "VND"},
    }
    spend = calls.record_spend(None, {"campaign_id": ORDER, "day": "2026-12-01", "amount": "5", "currency": "USD"})
    assert (spend.method, spend.path, spend.body) == (
        "PUT",
        f"/campaigns/{ORDER}/spend/2026-12-01",
        {"amount": {"amount": "5", "currency": "USD"}},
    )


def test_production_forms_become_the_production_apis_calls() -> None:
    assert calls.move_order(ORDER, {"step": "start-design"}).path == f"/orders/{ORDER}/start-design"
    assert calls.move_order(ORDER, {"step": "pack", "packages": "2"}).body == {"packages": "2"}
    inspected = calls.inspect_order(
        ORDER, {"inspected_quantity": "10", "defect_kind_0": "scratch", "defect_count_0": "2", "defect_kind_1": ""}
    )
    assert inspected.path.endswith("/record-inspection")
    assert inspected.body == {
        "passed": False,
        "inspected_quantity": "10",
        "defects": [{"code": "scratch", "quantity": "2"}],
    }
    assert calls.ship_order(ORDER, {"carrier": "VNPost", "quantity": "3"}).body == {
        "carrier": "VNPost",
        "quantity": "3",
    }
    assert calls.hold_order(ORDER, {"reason": "chờ khách"}).path == f"/orders/{ORDER}/hold"
    assert calls.resume_order(ORDER, {}).body == {}


@pytest.mark.parametrize(
    ("make", "target", "form", "field"),
    [
        (calls.contact_lead, "../../deals/x", {}, "lead"),
        (calls.hold_order, "x/../../leads", {}, "order"),
        (calls.record_spend, None, {"campaign_id": "1/../2", "day": "2026-12-01"}, "campaign"),
        (calls.record_spend, None, {"campaign_id": ORDER, "day": "../x"}, "day"),
        (calls.move_order, ORDER, {"step": "cancel"}, "step"),
        (calls.deliver_order, ORDER, {"shipment_id": "?all"}, "shipment_id"),
    ],
)
def test_no_form_can_aim_a_call_at_another_path(make, target, form, field) -> None:
    with pytest.raises(calls.FormError) as refused:
        make(target, form)
    assert refused.value.field == field


# ---------------------------------------------------------------------------------------------- the routes
SIGNIN = FakeSignIn()
SETTINGS = Settings(jwt_public_keys=TEST_JWKS, jwt_signing_keys={}, log_json=False)
CONVERTED = "7d3c2b1a-0000-4000-8000-000000000001"


@dataclass
class Apis:
    """The APIs as faked at the HTTP transport: every request they got, and what they answer."""

    seen: list[httpx.Request] = field(default_factory=list)
    refuse: dict[str, httpx.Response] = field(default_factory=dict)  # path → its answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.port == SIGNIN_PORT:
            return SIGNIN(request)
        self.seen.append(request)
        path = request.url.path
        if path in self.refuse:
            return self.refuse[path]
        if request.method in ("POST", "PUT"):
            return httpx.Response(200, json={"id": "x", "stream_id": "x", "version": 4, "position": 9})
        if path == f"/leads/{LEAD}":
            return httpx.Response(200, json={"lead_id": LEAD, "status": "new", "source": "fair", "version": 3})
        if path == f"/leads/{CONVERTED}":
            return httpx.Response(200, json={"lead_id": CONVERTED, "status": "converted", "version": 7})
        if path == f"/deals/{calls.deal_of_lead(CONVERTED)}":
            return problem(403, "no role allows this", "forbidden")
        if path == f"/orders/{ORDER}":
            shipment = {"shipment_id": LEAD, "quantity": "2", "delivered": False}
            return httpx.Response(
                200, json={"order_id": ORDER, "stage": "shipped", "version": 12, "shipments": [shipment]}
            )
        if path == "/users":
            return httpx.Response(200, json={"items": [{"user_id": "u-lan", "name": "Lan"}], "next_cursor": None})
        return httpx.Response(200, json=[])

    def commands(self) -> list[httpx.Request]:
        return [r for r in self.seen if r.method in ("POST", "PUT")]


def problem(status: int, detail: str, rule: str) -> httpx.Response:
    body = {"type": f"urn:pipelines:problem:{rule}", "title": "…", "status": status, "detail": detail, "rule": rule}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


def subject(request: httpx.Request) -> str:
    """The user a request's bearer token names (its payload, unverified: the APIs verify it)."""
    token = request.headers["authorization"].removeprefix("Bearer ")
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


@contextlib.asynccontextmanager
async def board(apis: Apis, user: str, *roles: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The board signed in as ``user``: the client and the session's CSRF token."""
    app = create_app(SETTINGS, transport=httpx.MockTransport(apis), live_feed=False)
    secret = SIGNIN.session(user, *roles, team="hq")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web") as web,
    ):
        web.cookies.set(COOKIE, secret)
        yield web, SIGNIN.sessions[secret]["csrf"]


@pytest.mark.parametrize(
    ("action", "form", "method", "path", "body", "if_match"),
    [
        (
            "lead.capture",
            {"source": "fair", "email": "b@pho.vn"},
            "POST",
            "/leads",
            {"source": "fair", "contact": {"email": "b@pho.vn"}},
            None,
        ),
        (
            "lead.assign",
            {"lead_id": LEAD, "version": "3", "owner_id": "u-lan"},
            "POST",
            f"/leads/{LEAD}/assign",
            {"owner_id": "u-lan"},
            '"3"',
        ),
        (
            "lead.contact",
            {"lead_id": LEAD, "version": "3", "channel": "zalo"},
            "POST",
            f"/leads/{LEAD}/contact",
            {"channel": "zalo"},
            '"3"',
        ),
        (
            "lead.qualify",
            {"lead_id": LEAD, "version": "4", "level": "sql"},
            "POST",
            f"/leads/{LEAD}/qualify",
            {"level": "sql"},
            '"4"',
        ),
        (
            "lead.disqualify",
            {"lead_id": LEAD, "reason": "spam"},
            "POST",
            f"/leads/{LEAD}/disqualify",
            {"reason": "spam"},
            None,
        ),
        (
            "lead.convert",
            {"lead_id": LEAD, "version": "5", "customer": "Phố", "title": "Máy"},
            "POST",
            f"/leads/{LEAD}/convert",
            {"customer": "Phố", "title": "Máy"},
            '"5"',
        ),
        (
            "campaign.spend",
            {"campaign_id": ORDER, "day": "2026-12-01", "amount": "500000"},
            "PUT",
            f"/campaigns/{ORDER}/spend/2026-12-01",
            {"amount": {"amount": "500000", "currency": "VND"}},
            None,
        ),
        (
            "order.step",
            {"order_id": ORDER, "version": "2", "step": "start-design"},
            "POST",
            f"/orders/{ORDER}/start-design",
            {},
            '"2"',
        ),
        (
            "order.inspect",
            {
                "order_id": ORDER,
                "passed": "false",
                "inspected_quantity": "5",
                "defect_kind_0": "scratch",
                "defect_count_0": "1",
            },
            "POST",
            f"/orders/{ORDER}/record-inspection",
            {"passed": False, "inspected_quantity": "5", "defects": [{"code": "scratch", "quantity": "1"}]},
            None,
        ),
        (
            "order.ship",
            {"order_id": ORDER, "quantity": "2", "carrier": "VNPost"},
            "POST",
            f"/orders/{ORDER}/ship",
            {"carrier": "VNPost", "quantity": "2"},
            None,
        ),
        (
            "order.deliver",
            {"order_id": ORDER, "shipment_id": LEAD},
            "POST",
            f"/orders/{ORDER}/confirm-delivery",
            {"shipment_id": LEAD},
            None,
        ),
        (
            "order.hold",
            {"order_id": ORDER, "reason": "chờ vật tư"},
            "POST",
            f"/orders/{ORDER}/hold",
            {"reason": "chờ vật tư"},
            None,
        ),
        ("order.resume", {"order_id": ORDER}, "POST", f"/orders/{ORDER}/resume", {}, None),
    ],
)
async def test_each_action_makes_its_api_call_with_the_users_token(action, form, method, path, body, if_match) -> None:
    apis = Apis()
    async with board(apis, "u-mkt", "marketing") as (web, csrf):
        r = await web.post(f"/act/{action}", data=form | {"csrf": csrf, "back": "/marketing"})
    assert r.status_code == 303 and r.headers["location"] == "/marketing"
    (call,) = apis.commands()
    assert (call.method, call.url.path, json.loads(call.content)) == (method, path, body)
    assert subject(call) == "u-mkt" and call.headers.get("if-match") == if_match


async def test_an_action_without_the_sessions_csrf_token_is_refused_and_calls_nothing() -> None:
    apis = Apis()
    async with board(apis, "u-mkt", "marketing") as (web, csrf):
        for sent in ({}, {"csrf": "x" * 43}):
            r = await web.post("/act/lead.contact", data={"lead_id": LEAD, "channel": "zalo"} | sent)
            assert r.status_code == 403
        r = await web.post(
            "/act/order.hold",
            data={"order_id": ORDER, "reason": "x", "csrf": csrf},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403
    assert apis.commands() == []


async def test_an_apis_refusal_is_shown_by_its_rule_in_the_users_language() -> None:
    apis = Apis(refuse={f"/orders/{ORDER}/hold": problem(403, "no role allows this: production", "forbidden")})
    apis.refuse[f"/leads/{LEAD}/qualify"] = problem(409, "a converted lead does not allow qualify", "lead_converted")
    async with board(apis, "u-mkt", "marketing") as (web, csrf):
        r = await web.post("/act/order.hold?lang=vi", data={"order_id": ORDER, "reason": "x", "csrf": csrf})
        assert r.status_code == 403 and 'data-rule="forbidden"' in r.text
        r = await web.post(
            "/act/lead.qualify?lang=vi", data={"lead_id": LEAD, "level": "sql", "version": "3", "csrf": csrf}
        )
        assert r.status_code == 409 and "Khách hàng tiềm năng ở trạng thái “Đã chuyển" in r.text
        assert 'data-key="status"' in r.text  # the lead as it is now, to retry from
        r = await web.post("/act/order.step", data={"order_id": ORDER, "step": "cancel", "csrf": csrf})
        assert r.status_code == 422  # a step the form does not offer: no call
    assert [c.url.path for c in apis.commands()] == [f"/orders/{ORDER}/hold", f"/leads/{LEAD}/qualify"]


async def test_a_lead_and_an_order_have_pages_with_their_labelled_forms() -> None:
    apis = Apis()
    async with board(apis, "u-mkt", "marketing") as (web, _):
        page = (await web.get(f"/lead/{LEAD}?lang=vi")).text
        for action in ("lead.assign", "lead.contact", "lead.qualify", "lead.disqualify", "lead.convert"):
            assert f'action="/act/{action}"' in page
        assert '<option value="u-lan">Lan</option>' in page and "Zalo" in page and 'name="version" value="3"' in page
        assert all(f'for="{i}"' in page for i in re.findall(r'<(?:input|select|textarea) id="([^"]+)"', page))
        converted = (await web.get(f"/lead/{CONVERTED}")).text
        assert 'data-state="forbidden"' in converted and calls.deal_of_lead(CONVERTED) in converted
        order = (await web.get(f"/order/{ORDER}")).text
        assert 'name="version" value="12"' in order and f'<option value="{LEAD}">' in order
        assert (await web.get("/lead/..%2F..%2Fdeals")).status_code == 404


async def test_the_inbox_and_the_floor_link_each_lead_and_order_to_its_actions() -> None:
    production = httpx.URL(SETTINGS.api_url("production")).port
    card = {"order_id": ORDER, "deal_id": None, "customer": "Phố", "stage": "packing", "late": False}
    floor = {"stages": [{"stage": "packing", "orders": 1, "quantity": "1", "late": 0, "items": [card]}]}
    inbox = {"items": [{"lead_id": LEAD, "captured_at": "2026-12-01T08:00:00+00:00", "status": "new"}]}

    class Pages(Apis):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/leads":
                return httpx.Response(200, json=inbox | {"next_cursor": None})
            if request.url.path == "/board" and request.url.port == production:
                return httpx.Response(200, json=floor | {"open_orders": 1, "wip": 1, "late": 0})
            return super().__call__(request)

    async with board(Pages(), "u-prod", "production") as (web, _):
        marketing = (await web.get("/marketing")).text
        assert f'href="/lead/{LEAD}"' in marketing and 'href="/act/lead.capture?back=/marketing"' in marketing
        assert f'href="/order/{ORDER}"' in (await web.get("/production")).text
