"""Every header and body field that reaches an event is bounded at the HTTP edge (shared.core.limits), on the three APIs
with in-memory stores.

An attack stored events too large for Kafka through a 1.1 MB X-Correlation-ID header and a 900 KB raw_payload, and
had the header echoed back. Now a malformed correlation or causation id answers 400 naming the header and its limit,
never echoed; a field over its limit answers 422 naming the field and the limit, without echoing the input; and
each service's OpenAPI document gives every input a bound (checked over every route by tests/unit/test_bounded_input.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.agenda.api import AgendaAPI
from services.agenda.api import create_app as agenda_app
from services.agenda.handlers import Agenda
from services.agenda.subjects import MemorySubjects
from services.deals.api import DealsAPI
from services.deals.api import create_app as deals_app
from services.deals.handlers import Deals
from services.directory.api import DirectoryAPI
from services.directory.api import create_app as directory_app
from services.directory.handlers import Directory
from services.directory.replica import MemoryReplica
from services.leads.api import LeadsAPI
from services.leads.api import create_app as leads_app
from services.leads.handlers import InMemoryDedupe, Leads
from services.leads.sources import HttpFacebookGraph
from services.production.api import ProductionAPI
from services.production.api import create_app as production_app
from services.production.handlers import Production
from shared.core.limits import (
    MAX_AMOUNT,
    MAX_ANSWER_CHARS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_JSON_DEPTH,
    MAX_NAME_CHARS,
    MAX_QUANTITY,
    MAX_RAW_PAYLOAD_BYTES,
    MAX_TEXT_CHARS,
    MAX_TRACE_ID_CHARS,
)
from shared.edge.auth import ROLES, TokenVerifier, issue_token
from shared.ops.settings import Settings
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
SETTINGS = Settings(website_form_secret="site-secret", ladipage_token="ladi-token")
HUGE = "x" * 1_100_000  # the attack's header
SMALL_ANSWER = 4096  # an error answer is about this size at most: nothing large is echoed


def auth(user: str, *roles: str, team: str | None = "north") -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)}


LAN = auth("u-lan", "sales")
MKT = auth("u-mkt", "marketing")
PROD = auth("u-prod", "production")
DEAL = {
    "title": "Máy lạnh văn phòng",
    "customer": "Công ty Hòa Bình",
    "owner_id": "u-lan",
    "team_id": "north",
    "contact_id": "c-1",
    "contact": {"name": "Phạm Thu Hà", "email": "ha.pham@hoabinh.vn"},
    "lines": [{"product": "Máy lạnh 2HP", "quantity": "4", "unit_price": {"amount": "15000000", "currency": "VND"}}],
}
PHONE = {"phone": "0905123456"}  # a lead needs an email or a phone
ORDER = {"customer": "Bình An", "lines": [{"product": "Tủ mát", "quantity": "2"}], "due_date": "2027-01-10"}


async def ready() -> dict[str, str]:
    return {"store": "ok"}


def verifier() -> TokenVerifier:
    return TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines")


def build(service: str) -> tuple[FastAPI, InMemoryEventStore]:
    store = InMemoryEventStore()
    if service == "deals":
        api = DealsAPI(Deals(store, lambda: NOW), store, None, store.personal_data, "Asia/Ho_Chi_Minh", ready)
        return deals_app(api, verifier()), store
    if service == "leads":
        leads = Leads(store, store.personal_data, lambda: NOW, InMemoryDedupe(), b"d" * 32)
        graph = HttpFacebookGraph("fb-token", client=httpx.AsyncClient(base_url="https://graph.facebook.com"))
        return leads_app(LeadsAPI(leads, None, SETTINGS, graph, ready), verifier()), store
    if service == "directory":
        directory = DirectoryAPI(Directory(store, lambda: NOW, ROLES), None, store.personal_data, ready)
        return directory_app(directory, verifier()), store
    if service == "agenda":
        people = MemoryReplica().seed(("u-lan", "north"))
        agenda = AgendaAPI(Agenda(store, lambda: NOW), None, store.personal_data, ready, people, MemorySubjects(people))
        return agenda_app(agenda, verifier()), store
    api = ProductionAPI(Production(store, lambda: NOW), None, store.personal_data, "Asia/Ho_Chi_Minh", ready)
    return production_app(api, verifier()), store


class Service:
    def __init__(self, service: str) -> None:
        self.app, self.store = build(service)
        self.http = TestClient(self.app)

    def events(self) -> list[Any]:
        return self.http.portal.call(self.store.read_all)


@pytest.fixture
def deals() -> Iterator[Service]:
    s = Service("deals")
    with s.http:
        s.http.portal.call(Deals(s.store, lambda: NOW).ensure_default_pipeline)  # as the service does at start
        yield s


def open_deal(s: Service, **changes: Any) -> str:
    r = s.http.post("/deals", json=DEAL | changes, headers=LAN)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def leads() -> Iterator[Service]:
    s = Service("leads")
    with s.http:
        yield s


@pytest.fixture
def production() -> Iterator[Service]:
    s = Service("production")
    with s.http:
        yield s


def field_errors(r: httpx.Response) -> dict[tuple[Any, ...], dict[str, Any]]:
    """A 422's fields at fault, by loc; the answer is small whatever the input was."""
    assert r.status_code == 422, r.text[:500]
    assert len(r.content) < SMALL_ANSWER, f"{len(r.content)} bytes answered"
    return {tuple(e["loc"]): e for e in r.json()["errors"]}


# ---------------------------------------------------------------------------------------------- headers
def test_a_huge_correlation_id_is_refused_400_naming_the_header_and_never_echoed(deals: Service) -> None:
    deal = open_deal(deals)
    before = len(deals.events())
    body = {"activity_type": "call", "channel": "phone", "note": "gọi lại"}
    r = deals.http.post(f"/deals/{deal}/log-activity", json=body, headers=LAN | {"X-Correlation-ID": HUGE})
    assert r.status_code == 400, r.text[:300]
    assert r.json()["rule"] == "invalid_header"
    detail = r.json()["detail"]
    assert "X-Correlation-ID" in detail
    assert str(MAX_TRACE_ID_CHARS) in detail
    assert len(r.content) < 400  # at most a short prefix of the value
    returned = r.headers["x-correlation-id"]
    assert returned != HUGE
    assert uuid.UUID(returned)  # a new one, for the logs
    assert len(deals.events()) == before  # nothing stored


@pytest.mark.parametrize(
    "bad", ["x" * (MAX_TRACE_ID_CHARS + 1), "has space", "<script>", "semi;colon", "tên-tiếng-việt", "a/b"]
)
def test_a_malformed_correlation_or_causation_id_is_refused_400(deals: Service, bad: str) -> None:
    raw = bad.encode()  # as the bytes arrive
    for name in ("X-Correlation-ID", "X-Causation-ID"):
        r = deals.http.post("/deals", json=DEAL, headers={**LAN, name: raw})
        assert r.status_code == 400, (name, r.text)
        assert name in r.json()["detail"]
        assert r.headers["x-correlation-id"].encode() != raw
    assert not [e for e in deals.events() if e.event_type.endswith("DealOpened")]
    r = deals.http.get("/healthz", headers={"X-Correlation-ID": raw})
    assert r.status_code == 400  # the edge checks it before anything runs


def test_a_valid_correlation_id_is_echoed_and_recorded(deals: Service) -> None:
    deal = open_deal(deals)
    cid = "c" * (MAX_TRACE_ID_CHARS - 20) + "-corr.42:A_b"
    causation = str(uuid.uuid4())
    body = {"activity_type": "call", "channel": "phone"}
    headers = LAN | {"X-Correlation-ID": cid, "X-Causation-ID": causation}
    r = deals.http.post(f"/deals/{deal}/log-activity", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["x-correlation-id"] == cid
    last = deals.events()[-1]
    assert (last.correlation_id, last.causation_id) == (cid, causation)
    r = deals.http.get("/healthz")
    assert uuid.UUID(r.headers["x-correlation-id"])  # none given: one is made


def test_an_overlong_idempotency_key_if_match_or_occurred_at_answers_422_naming_the_header(deals: Service) -> None:
    deal = open_deal(deals)
    body = {"activity_type": "call", "channel": "phone"}
    path = f"/deals/{deal}/log-activity"
    r = deals.http.post(path, json=body, headers=LAN | {"Idempotency-Key": "k" * (MAX_IDEMPOTENCY_KEY_CHARS + 1)})
    error = field_errors(r)[("header", "idempotency-key")]
    assert error["ctx"] == {"max_length": MAX_IDEMPOTENCY_KEY_CHARS}
    assert str(MAX_IDEMPOTENCY_KEY_CHARS) in error["msg"]
    r = deals.http.post(path, json=body, headers=LAN | {"Idempotency-Key": HUGE})
    assert ("header", "idempotency-key") in field_errors(r)
    r = deals.http.post(path, json=body, headers=LAN | {"If-Match": '"' + "1" * 100_000 + '"'})
    assert ("header", "if-match") in field_errors(r)
    r = deals.http.post(path, json=body, headers=LAN | {"If-Match": f'"{2**31}"'})  # past any stream's version
    assert r.status_code == 422, r.text
    assert "If-Match" in r.json()["detail"]
    r = deals.http.post(path, json=body, headers=LAN | {"X-Occurred-At": "2026-11-01T08:00:00+07:00" + " " * 50_000})
    assert ("header", "x-occurred-at") in field_errors(r)
    r = deals.http.post(path, json=body, headers=LAN | {"Idempotency-Key": "k" * MAX_IDEMPOTENCY_KEY_CHARS})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------------------------------- leads
def test_a_raw_payload_over_the_bound_answers_422_naming_it_and_the_limit(leads: Service) -> None:
    payload = {"form": "hội chợ", "blob": "x" * 900_000}
    r = leads.http.post("/leads", json={"source": "import", "contact": PHONE, "raw_payload": payload}, headers=MKT)
    error = field_errors(r)[("body", "raw_payload")]
    assert error["type"] == "json_too_large"
    assert error["ctx"]["max_bytes"] == MAX_RAW_PAYLOAD_BYTES
    assert str(MAX_RAW_PAYLOAD_BYTES) in error["msg"]
    assert "input" not in error  # 900 KB are not sent back

    deep: Any = "bottom"
    for _ in range(MAX_JSON_DEPTH + 1):
        deep = {"d": deep}
    r = leads.http.post("/leads", json={"source": "import", "contact": PHONE, "raw_payload": deep}, headers=MKT)
    assert field_errors(r)[("body", "raw_payload")]["type"] == "json_too_deep"

    fits = {"form": "hội chợ", "blob": "x" * (MAX_RAW_PAYLOAD_BYTES - 100)}
    r = leads.http.post("/leads", json={"source": "import", "contact": PHONE, "raw_payload": fits}, headers=MKT)
    assert r.status_code == 201, r.text[:300]
    assert leads.events()[-1].data["raw_payload"]  # kept (sealed)


def test_overlong_lead_fields_answer_422_naming_each_field(leads: Service) -> None:
    body = {
        "source": "manual",
        "external_id": "e" * 5000,
        "contact": {"name": "N" * (MAX_NAME_CHARS + 1), "phone": "0" * 31, "email": "a" * 300 + "@x.vn"},
        "attribution": {
            "source": "manual",
            "utm_campaign": "u" * 5000,
            "landing_page_url": "https://x.vn/" + "p" * 3000,
        },
        "answers": {"Bạn cần gì?": "a" * (MAX_ANSWER_CHARS + 1), "q" * 300: "ok"},
        "consent": {"marketing": True, "text_version": "v" * 100},
    }
    errors = field_errors(leads.http.post("/leads", json=body, headers=MKT))
    for loc in [
        ("body", "external_id"),
        ("body", "contact", "name"),
        ("body", "contact", "phone"),
        ("body", "contact", "email"),
        ("body", "attribution", "utm_campaign"),
        ("body", "attribution", "landing_page_url"),
        ("body", "answers", "Bạn cần gì?"),
        ("body", "consent", "text_version"),
    ]:
        assert loc in errors, (loc, sorted(errors))
    assert errors[("body", "contact", "name")]["ctx"] == {"max_length": MAX_NAME_CHARS}
    assert any(loc[:2] == ("body", "answers") and "[key]" in loc for loc in errors)  # the over-long question
    assert not leads.events()

    lead = leads.http.post("/leads", json={"source": "manual", "contact": {"name": "An"} | PHONE}, headers=MKT).json()[
        "id"
    ]
    r = leads.http.post(
        f"/leads/{lead}/update-contact", json={"contact": {"company": "C" * 5000}, "reason": "typo"}, headers=MKT
    )
    assert ("body", "contact", "company") in field_errors(r)
    r = leads.http.post(
        f"/leads/{lead}/convert",
        json={"customer": "An", "title": "Tủ", "estimated_value": {"amount": str(MAX_AMOUNT * 10)}},
        headers=MKT,
    )
    assert ("body", "estimated_value", "amount") in field_errors(r)
    r = leads.http.post(
        f"/leads/{lead}/record-engagement", json={"kind": "email_open", "asset_id": "a" * 500}, headers=MKT
    )
    assert ("body", "asset_id") in field_errors(r)


def signed(body: bytes) -> dict[str, str]:
    return {"X-Pipelines-Signature": "sha256=" + hmac.new(b"site-secret", body, hashlib.sha256).hexdigest()}


def test_a_webhook_payload_over_the_bounds_answers_422_naming_the_lead_field(leads: Service) -> None:
    form = {"submission_id": "s-1", "name": "Lan", "email": "lan@x.vn", "message": "m" * 900_000}
    body = json.dumps(form).encode()
    r = leads.http.post("/webhooks/website", content=body, headers=signed(body))
    errors = field_errors(r)
    assert errors[("lead", "raw_payload")]["ctx"]["max_bytes"] == MAX_RAW_PAYLOAD_BYTES
    assert ("lead", "answers", "message") in errors
    r = leads.http.post("/webhooks/ladipage?token=ladi-token", json={"name": "N" * 1000, "phone": "0912345678"})
    assert ("lead", "contact", "name") in field_errors(r)
    assert not leads.events()

    fine = json.dumps({"submission_id": "s-2", "name": "Lan", "email": "lan@x.vn", "message": "m" * 3000}).encode()
    r = leads.http.post("/webhooks/website", content=fine, headers=signed(fine))
    assert r.status_code == 201, r.text


# ---------------------------------------------------------------------------------------------- deals
def test_overlong_deal_fields_and_huge_numbers_answer_422_naming_each_field(deals: Service) -> None:
    deal = open_deal(deals)
    r = deals.http.post(
        f"/deals/{deal}/log-activity",
        json={"activity_type": "call", "channel": "phone", "note": "n" * 900_000},
        headers=LAN,
    )
    note = field_errors(r)[("body", "note")]
    assert note["ctx"] == {"max_length": MAX_TEXT_CHARS}
    assert note["input"].startswith("nnnn") and len(note["input"]) < 40  # only a prefix is shown
    line = DEAL["lines"][0]
    r = deals.http.post(
        "/deals",
        json=DEAL
        | {
            "campaign_id": "c" * 5000,
            "contact": {"name": "Hà", "email": "e" * 250 + "@x.vn"},
            "lines": [
                line | {"unit": "u" * 100},
                line | {"quantity": str(MAX_QUANTITY * 10)},
                line | {"quantity": "0" * 100 + "1"},
            ],
        },
        headers=LAN,
    )
    errors = field_errors(r)
    for loc in [
        ("body", "campaign_id"),
        ("body", "contact", "email"),
        ("body", "lines", 0, "unit"),
        ("body", "lines", 1, "quantity"),
        ("body", "lines", 2, "quantity"),
    ]:
        assert loc in errors, (loc, sorted(errors))
    r = deals.http.post(f"/deals/{deal}/change-value", json={"value": {"amount": str(MAX_AMOUNT + 1)}}, headers=LAN)
    assert str(MAX_AMOUNT) in field_errors(r)[("body", "value", "amount")]["msg"]
    r = deals.http.post(
        f"/deals/{deal}/win", json={"delivery_address": {"line1": "1", "city": "HN", "line2": "l" * 300}}, headers=LAN
    )
    assert ("body", "delivery_address", "line2") in field_errors(r)
    r = deals.http.post(f"/deals/{deal}/lose", json={"reason": "price", "competitor": "c" * 300}, headers=LAN)
    assert ("body", "competitor") in field_errors(r)


# ---------------------------------------------------------------------------------------------- production
def test_overlong_order_fields_and_huge_quantities_answer_422_naming_each_field(production: Service) -> None:
    r = production.http.post(
        "/orders",
        json=ORDER
        | {"contact_id": "c" * 500, "delivery_address": {"line1": "L" * 5000, "city": "HN", "country": "V" * 100}},
        headers=PROD,
    )
    errors = field_errors(r)
    for loc in [("body", "contact_id"), ("body", "delivery_address", "line1"), ("body", "delivery_address", "country")]:
        assert loc in errors, (loc, sorted(errors))
    order = production.http.post("/orders", json=ORDER, headers=PROD).json()["id"]
    r = production.http.post(
        f"/orders/{order}/record-output", json={"product": "P" * 300, "quantity": "1e12"}, headers=PROD
    )
    errors = field_errors(r)
    assert ("body", "product") in errors
    assert errors[("body", "quantity")]["type"] == "less_than_equal"
    r = production.http.post(
        f"/orders/{order}/ship", json={"carrier": "GHN", "tracking_no": "t" * 500, "quantity": "1"}, headers=PROD
    )
    assert ("body", "tracking_no") in field_errors(r)
    r = production.http.post(f"/orders/{order}/pack", json={"packages": 10**30}, headers=PROD)
    assert ("body", "packages") in field_errors(r)
    r = production.http.put("/plans/Tủ mát/2026-12", json={"action": "forecast", "quantity": "1" * 50}, headers=PROD)
    assert ("body", "quantity") in field_errors(r)
    r = production.http.put(
        "/plans/Tủ mát/2026-12", json={"action": "forecast", "quantity": "5", "reason": "r" * 5000}, headers=PROD
    )
    assert ("body", "reason") in field_errors(r)


# The API documents' bounds (every input of every route, by type): tests/unit/test_bounded_input.py (testkit.bounds).
