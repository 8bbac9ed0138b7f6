"""Issue 20, items 5, 7 and 9: inputs an attack sent on 0eb7972, on the three APIs with in-memory stores.

- 5: a replayed ``POST /leads`` (same Idempotency-Key) answered a new random id and Location each time and wrote
  those phantom ids into the duplicate index, so a later genuine lead was flagged the duplicate of a lead that
  does not exist. A replay answers the first capture exactly (id, Location, version, position, duplicate flag).
- 7: answers of 500 anyone could reach: JSON nested deep to the Google Ads webhook without its key (the body was
  parsed before the key was checked); fields of the wrong JSON type in every webhook; a lone surrogate
  (``"X\\ud800"``) in a JSON body; integers and dates beyond what the stores hold (a cursor of 2**63 or Infinity,
  ``position=2**63``, ``version=2**31``, ``from=0001-01-01``); an unreachable Graph API. Each is a 4xx naming what
  is wrong (or a 503 with Retry-After). ``tests/integration/test_api_fuzz.py`` sends them to the real stores too.
- 9: ``PUT /campaigns/{id}/spend/0`` recorded spend for 1970-01-01; ``+84 (0) 912 345 678`` normalised to
  ``+840912…`` and missed its duplicate; Arabic-Indic digits went into phone numbers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.leads.api import LeadsAPI
from services.leads.api import create_app as leads_app
from services.leads.domain import CaptureLead
from services.leads.handlers import InMemoryDedupe, Leads, match_keys
from services.leads.sources import HttpFacebookGraph
from shared.core.normalize import phone
from shared.edge.queries import encode_cursor
from shared.ops.settings import Settings
from shared.store import Idempotency
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore
from tests.unit.test_request_bounds import (
    LAN,
    MKT,
    NOW,
    ORDER,
    PROD,
    Service,
    auth,
    open_deal,
    ready,
    verifier,
)

FB_SECRET, GOOGLE_KEY, SITE_SECRET = "fb-app-secret", "google-key-for-tests-0123456789", "site-secret"
SETTINGS = Settings(
    website_form_secret=SITE_SECRET,
    ladipage_token="ladi-token",
    facebook_app_secret=FB_SECRET,
    google_ads_webhook_key=GOOGLE_KEY,
)
ADMIN = auth("u-admin", "admin")
GRAPH_LEAD = {
    "id": "1234567890123456",
    "created_time": "2026-11-24T09:03:15+0000",
    "field_data": [{"name": "full_name", "values": ["Lê Văn Đức"]}, {"name": "email", "values": ["duc@ducphat.vn"]}],
}
LONE = "X\ud800"  # what json.loads makes of "X\\ud800"


class Graph(httpx.AsyncBaseTransport):
    """The Graph API: a lead, or what ``answer`` says (an exception to raise, a status, a body)."""

    def __init__(self) -> None:
        self.answer: Any = GRAPH_LEAD

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if isinstance(self.answer, Exception):
            raise self.answer
        if isinstance(self.answer, bytes):
            return httpx.Response(200, content=self.answer)
        return httpx.Response(200, json=self.answer)


class LeadsService:
    def __init__(self) -> None:
        self.store = InMemoryEventStore()
        self.dedupe = InMemoryDedupe()
        self.graph = Graph()
        self.leads = Leads(self.store, self.store.personal_data, lambda: NOW, self.dedupe, b"d" * 32)
        graph = HttpFacebookGraph("fb-token", client=httpx.AsyncClient(transport=self.graph, base_url="https://g"))
        self.http = TestClient(leads_app(LeadsAPI(self.leads, None, SETTINGS, graph, ready), verifier()))

    def streams(self) -> set[str]:
        return {e.stream_id for e in self.http.portal.call(self.store.read_all)}

    def indexed(self) -> set[uuid.UUID]:
        return {lead for _, lead in self.dedupe.rows}


@pytest.fixture
def leads() -> Iterator[LeadsService]:
    s = LeadsService()
    with s.http:
        yield s


@pytest.fixture
def deals() -> Iterator[Service]:
    s = Service("deals")
    with s.http:
        from services.deals.handlers import Deals

        s.http.portal.call(Deals(s.store, lambda: NOW).ensure_default_pipeline)
        yield s


@pytest.fixture
def production() -> Iterator[Service]:
    s = Service("production")
    with s.http:
        yield s


def signed(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def raw(value: Any) -> bytes:
    """``value`` as JSON, a lone surrogate written as its escape (as an attacker sends it)."""
    return json.dumps(value).encode()


def locs(r: httpx.Response) -> set[tuple[Any, ...]]:
    assert r.status_code == 422, r.text[:500]
    return {tuple(e["loc"]) for e in r.json().get("errors") or ()}


# ---------------------------------------------------------------------------------------------- 5: replays
PERSON = {"source": "manual", "contact": {"name": "Trần Thị Bích", "phone": "0912 345 678"}}


def test_a_replayed_capture_answers_the_first_lead_and_indexes_no_phantom(leads: LeadsService) -> None:
    key = {"Idempotency-Key": "import-2026-11-24-row-7"} | MKT
    first = leads.http.post("/leads", json=PERSON, headers=key)
    assert first.status_code == 201, first.text
    lead_id = first.json()["id"]
    assert first.headers["location"] == f"/leads/{lead_id}"
    for _ in range(3):
        again = leads.http.post("/leads", json=PERSON, headers=key)
        assert again.status_code == 200, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["etag"] == first.headers["etag"]
        assert again.json() == first.json() | {"replayed": True}
    assert leads.http.get(first.headers["location"], headers=MKT).status_code == 200
    assert leads.streams() == {f"lead-{lead_id}"}
    assert leads.indexed() == {uuid.UUID(lead_id)}, "no replay put an id into the duplicate index"

    genuine = leads.http.post("/leads", json=PERSON | {"source": "event"}, headers=MKT)
    assert genuine.status_code == 201
    assert genuine.headers["x-duplicate-of"] == lead_id
    assert leads.http.get(f"/leads/{genuine.headers['x-duplicate-of']}", headers=MKT).status_code == 200


def test_a_capture_flagged_duplicate_is_one_append_and_replays_with_its_flag(leads: LeadsService) -> None:
    earlier = leads.http.post("/leads", json=PERSON, headers=MKT).json()["id"]
    key = {"Idempotency-Key": "k-2"} | MKT
    first = leads.http.post("/leads", json=PERSON | {"source": "event"}, headers=key)
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["replayed"]) == (2, False), "captured and flagged in one answer"
    assert first.headers["x-duplicate-of"] == earlier
    again = leads.http.post("/leads", json=PERSON | {"source": "event"}, headers=key)
    assert again.json() == first.json() | {"replayed": True}
    assert again.headers["x-duplicate-of"] == earlier
    assert again.headers["location"] == first.headers["location"]


async def test_two_captures_racing_with_one_key_make_one_lead() -> None:
    store, dedupe = InMemoryEventStore(), InMemoryDedupe()
    leads = Leads(store, store.personal_data, lambda: NOW, dedupe, b"d" * 32)
    cmd = CaptureLead.model_validate(PERSON)
    ctx = Context("u-mkt", idempotency=Idempotency.of("u-mkt:POST /leads", "k", PERSON))
    a, b = await asyncio.gather(leads.capture(cmd, ctx, imported=True), leads.capture(cmd, ctx, imported=True))
    assert a.lead_id == b.lead_id
    assert a.result is not None and b.result is not None
    assert {a.result.append.replayed, b.result.append.replayed} == {False, True}
    assert {lead for _, lead in dedupe.rows} == {a.lead_id}


async def test_an_index_row_without_a_lead_flags_nothing() -> None:
    """Rows a replay wrote before the fix: a lead is never flagged the duplicate of one that does not exist."""
    store, dedupe = InMemoryEventStore(), InMemoryDedupe()
    leads = Leads(store, store.personal_data, lambda: NOW, dedupe, b"d" * 32)
    cmd = CaptureLead.model_validate(PERSON)
    await dedupe.add(uuid.uuid4(), match_keys(cmd.contact, b"d" * 32).values())
    captured = await leads.capture(cmd, Context("u-mkt"), imported=True)
    assert captured.duplicate_of is None


# ---------------------------------------------------------------------------------------------- 7: webhooks
def test_the_google_ads_key_is_checked_before_the_body_is_parsed(
    leads: LeadsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.leads import sources

    parsed: list[bytes] = []
    parse = sources.parse_json
    monkeypatch.setattr(sources, "parse_json", lambda body: parsed.append(body) or parse(body))
    deep = b'{"lead_id": "1", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    for body in (deep, b"[" * 500_000, deep.replace(b'"x"', b'"google_key": "wrong", "x"')):
        r = leads.http.post("/webhooks/google-ads", content=body)
        assert r.status_code == 401, r.text
    nested = raw({"lead_id": "1", "x": {"google_key": GOOGLE_KEY}})  # the key, but not the body's own
    assert leads.http.post("/webhooks/google-ads", content=nested).status_code == 401
    assert parsed == [nested], "only a body carrying the key is parsed"
    keyed = deep.replace(b'"x"', b'"google_key": "' + GOOGLE_KEY.encode() + b'", "x"')
    r = leads.http.post("/webhooks/google-ads", content=keyed)
    assert (r.status_code, r.json()["detail"]) == (422, "the body nests too deep")


GOOGLE = {"google_key": GOOGLE_KEY, "lead_id": "g-1"}
WEBSITE = {"submission_id": "wf-1", "email": "a@b.vn"}
LADIPAGE = {"phone": "0912345678"}
FACEBOOK_CHANGE = {"field": "leadgen", "value": {"leadgen_id": "1234567890123456"}}
WRONG_TYPES = [  # (webhook, body, the field named)
    ("google-ads", GOOGLE | {"user_column_data": 5}, ("body", "user_column_data")),
    ("google-ads", GOOGLE | {"user_column_data": {"a": 1}}, ("body", "user_column_data")),
    ("google-ads", GOOGLE | {"user_column_data": [5]}, ("body", "user_column_data", 0)),
    ("google-ads", GOOGLE | {"user_column_data": [{"column_id": [1]}]}, ("body", "user_column_data", 0, "column_id")),
    (
        "google-ads",
        GOOGLE | {"user_column_data": [{"column_id": "FULL_NAME", "string_value": {"a": 1}}]},
        ("body", "user_column_data", 0, "string_value"),
    ),
    ("google-ads", GOOGLE | {"user_column_data": [{"column_name": 5}]}, ("body", "user_column_data", 0, "column_name")),
    ("google-ads", GOOGLE | {"campaign_id": {"a": 1}}, ("body", "campaign_id")),
    ("google-ads", GOOGLE | {"lead_id": ["g-1"]}, ("body", "lead_id")),
    ("google-ads", GOOGLE | {"is_test": {"a": 1}}, ("body", "is_test")),
    ("website", WEBSITE | {"submission_id": {"a": 1}}, ("body", "submission_id")),
    ("website", WEBSITE | {"campaign_id": [1]}, ("body", "campaign_id")),
    ("website", WEBSITE | {"page_url": 5}, ("body", "page_url")),
    ("website", WEBSITE | {"consent": {"yes": True}}, ("body", "consent")),
    ("website", WEBSITE | {"consent": True, "consent_text_version": [1]}, ("body", "consent_text_version")),
    ("website", WEBSITE | {"utm_source": {"a": 1}}, ("body", "utm_source")),
    ("ladipage", LADIPAGE | {"id": {"a": 1}}, ("body", "id")),
    ("ladipage", LADIPAGE | {"url_page": [1]}, ("body", "url_page")),
    ("ladipage", LADIPAGE | {"campaign_id": 1.5}, ("body", "campaign_id")),
    ("facebook", {"object": "page", "entry": 5}, ("body", "entry")),
    ("facebook", {"object": "page", "entry": {"a": 1}}, ("body", "entry")),
    ("facebook", {"object": "page", "entry": [5]}, ("body", "entry", 0)),
    ("facebook", {"object": "page", "entry": [{"changes": {"a": 1}}]}, ("body", "entry", 0, "changes")),
    ("facebook", {"object": {"a": 1}}, ("body", "object")),
    (
        "facebook",
        {"object": "page", "entry": [{"changes": [{"field": "leadgen", "value": "x"}]}]},
        ("body", "entry", 0, "changes", 0, "value"),
    ),
    (
        "facebook",
        {"object": "page", "entry": [{"changes": [{"field": "leadgen", "value": {"leadgen_id": "../me"}}]}]},
        ("body", "entry", 0, "changes", 0, "value", "leadgen_id"),
    ),
]


def deliver(leads: LeadsService, webhook: str, body: bytes) -> httpx.Response:
    if webhook == "website":
        return leads.http.post(
            "/webhooks/website", content=body, headers={"X-Pipelines-Signature": signed(body, SITE_SECRET)}
        )
    if webhook == "facebook":
        return leads.http.post(
            "/webhooks/facebook", content=body, headers={"X-Hub-Signature-256": signed(body, FB_SECRET)}
        )
    if webhook == "ladipage":
        return leads.http.post("/webhooks/ladipage", params={"token": "ladi-token"}, content=body)
    return leads.http.post("/webhooks/google-ads", content=body)


def test_a_webhook_field_of_the_wrong_json_type_answers_422_naming_it(leads: LeadsService) -> None:
    for webhook, body, loc in WRONG_TYPES:
        r = deliver(leads, webhook, raw(body))
        assert loc in locs(r), (webhook, body, r.text)
    assert leads.streams() == set()


GRAPH_ANSWERS = [  # what the Graph API answers → the webhook's status
    (httpx.ConnectError("connection refused"), 503),
    (httpx.ReadTimeout("timed out"), 503),
    (b"<html>upstream error</html>", 503),
    (["not", "an", "object"], 503),
    (GRAPH_LEAD | {"field_data": [{"name": "email", "values": [{"a": 1}]}]}, 422),
    (GRAPH_LEAD | {"field_data": {"name": "email"}}, 422),
    (GRAPH_LEAD | {"created_time": "yesterday"}, 422),
    (GRAPH_LEAD | {"created_time": "0001-01-01T00:00:00+1400"}, 422),
]


def test_the_graph_api_unreachable_answers_503_and_a_malformed_lead_422(leads: LeadsService) -> None:
    notification = raw({"object": "page", "entry": [{"changes": [FACEBOOK_CHANGE]}]})
    for answer, status in GRAPH_ANSWERS:
        leads.graph.answer = answer
        r = deliver(leads, "facebook", notification)
        assert r.status_code == status, (answer, r.text)
        if status == 503:
            assert r.headers["retry-after"] == "60", "Facebook delivers it again later"
            assert "fb-token" not in r.text
    assert leads.streams() == set()
    leads.graph.answer = GRAPH_LEAD
    assert deliver(leads, "facebook", notification).status_code == 200


# ---------------------------------------------------------------------------------------------- 7: lone surrogates
def test_a_lone_surrogate_in_any_json_body_answers_422(
    leads: LeadsService, deals: Service, production: Service
) -> None:
    sent = [
        (leads.http, "/leads", {"source": "manual", "contact": {"name": LONE}}, MKT, ("body", "contact", "name")),
        (leads.http, "/leads", {"source": "manual", "answers": {"q": LONE}}, MKT, ("body", "answers", "q")),
        (leads.http, "/leads", {"source": "manual", "raw_payload": {"a": [LONE]}}, MKT, ("body", "raw_payload")),
        (deals.http, "/deals", {"title": LONE, "customer": "A", "owner_id": "u-lan"}, LAN, ("body", "title")),
        (production.http, "/orders", ORDER | {"customer": LONE}, PROD, ("body", "customer")),
    ]
    for http, path, body, headers, loc in sent:
        r = http.post(path, content=raw(body), headers=headers | {"content-type": "application/json"})
        assert loc in locs(r), r.text
        assert "\\ud800" in r.text, "the surrogate is shown as its escape"
    for body in (WEBSITE | {"message": LONE}, WEBSITE | {LONE: "x"}):
        r = deliver(leads, "website", raw(body))
        assert r.status_code == 422 and "surrogate" in r.json()["detail"], r.text
    r = deliver(leads, "google-ads", raw(GOOGLE | {"user_column_data": [{"column_name": "Q", "string_value": LONE}]}))
    assert r.status_code == 422, r.text
    assert leads.streams() == set()
    pair = leads.http.post(
        "/leads", json={"source": "manual", "contact": {"name": "Bích 😀", "phone": "0905"}}, headers=MKT
    )
    assert pair.status_code == 201, "a surrogate pair is one character"


# ---------------------------------------------------------------------------------------------- 7: numbers, dates
def cursor_of(offset: str) -> str:
    return base64.urlsafe_b64encode(f'{{"o": {offset}}}'.encode()).decode().rstrip("=")


def test_a_cursor_out_of_range_answers_422(deals: Service) -> None:
    deal_id = open_deal(deals)
    for offset in (str(2**63), "Infinity", "-Infinity", "NaN", "1e400", "2.5", "-1", "true", '"1"', "[1]"):
        r = deals.http.get(f"/deals/{deal_id}/history", params={"cursor": cursor_of(offset)}, headers=LAN)
        assert (r.status_code, r.json()["detail"]) == (422, "cursor is not one this API gave"), offset
    assert deals.http.get(f"/deals/{deal_id}/history", params={"cursor": encode_cursor(1)}, headers=LAN).is_success


def test_numbers_and_dates_beyond_the_stores_answer_422(
    leads: LeadsService, deals: Service, production: Service
) -> None:
    deal_id = open_deal(deals)
    far = "0001-01-01T00:00:00+14:00"
    refused = [
        (leads.http, "/leads", {"position": 2**63}, ("query", "position")),
        (deals.http, f"/deals/{deal_id}/state", {"version": 2**31}, ("query", "version")),
        (deals.http, f"/deals/{deal_id}/state", {"at": far}, ("query", "at")),
        (deals.http, f"/deals/{deal_id}/diff", {"from": far}, ("query", "from")),
        (deals.http, "/forecast", {"as_of": far}, ("query", "as_of")),
        (deals.http, "/forecast/changes", {"since": "9999-12-31T23:59:59-14:00"}, ("query", "since")),
        (deals.http, "/analytics/stages", {"from": "0001-01-01", "to": "2026-01-01"}, ("query", "from")),
        (deals.http, "/analytics/lost-reasons", {"from": "2026-01-01", "to": "9999-12-31"}, ("query", "to")),
        (leads.http, "/funnel", {"from": "0001-01-01", "to": "2026-01-01"}, ("query", "from")),
        (leads.http, "/campaigns", {"from": "0", "to": "2026-01-01"}, ("query", "from")),
        (production.http, "/analytics/cycle-times", {"from": "0001-01-01", "to": "2026-01-01"}, ("query", "from")),
        (production.http, "/analytics/delivery", {"from": "2026-01-01", "to": "1700000000"}, ("query", "to")),
    ]
    for http, path, params, loc in refused:
        r = http.get(path, params=params, headers=ADMIN)
        assert loc in locs(r), (path, r.text)
    close = {"expected_close_date": "2027-01-15", "reason": "budget approval after Tết"}
    r = deals.http.post(f"/deals/{deal_id}/change-close-date", json=close, headers=LAN | {"X-Occurred-At": far})
    assert r.status_code == 422 and "X-Occurred-At" in r.json()["detail"], r.text
    r = deals.http.post(f"/deals/{deal_id}/change-close-date", json=close, headers=LAN | {"If-Match": f'"{2**31}"'})
    assert r.status_code == 422 and "If-Match" in r.json()["detail"], r.text
    r = leads.http.post("/leads", json={"source": "manual", "captured_at": far}, headers=MKT)
    assert ("body", "captured_at") in locs(r)


# ---------------------------------------------------------------------------------------------- 9: spend days, phones
def test_spend_is_recorded_for_a_real_day_only(leads: LeadsService) -> None:
    campaign = {"name": "Tết 2027", "channel": "facebook", "budget": {"amount": "50000000", "currency": "VND"}}
    r = leads.http.post("/campaigns", json=campaign, headers=MKT)
    assert r.status_code == 201, r.text
    assert leads.http.post(f"{r.headers['location']}/status", json={"status": "active"}, headers=MKT).is_success
    spend = {"amount": {"amount": "1200000", "currency": "VND"}}
    for day in ("0", "1700000000", "2026-13-01", "2026-02-30", "0001-01-01", "9999-12-31", "2026-11-24T00:00:00"):
        put = leads.http.put(f"{r.headers['location']}/spend/{day}", json=spend, headers=MKT)
        assert ("path", "day") in locs(put), (day, put.text)
    ok = leads.http.put(f"{r.headers['location']}/spend/2026-11-24", json=spend, headers=MKT)
    assert ok.status_code == 200, ok.text
    assert list(leads.http.get(r.headers["location"], headers=MKT).json()["spend"]) == ["2026-11-24"]


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("+84 (0) 912 345 678", "+84912345678"),
        ("+84 0912 345 678", "+84912345678"),
        ("0084 (0)912.345.678", "+84912345678"),
        ("٠٩١٢ ٣٤٥ ٦٧٨", "+84912345678"),  # Arabic-Indic
        ("۰۹۱۲۳۴۵۶۷۸", "+84912345678"),  # Eastern Arabic-Indic (Persian)
        ("+٨٤ ٩١٢ ٣٤٥ ٦٧٨", "+84912345678"),
        ("０９１２ ３４５ ６７８", "+84912345678"),  # full-width
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("0912 345 678", "+84912345678"),
    ],
)
def test_phones_normalise_to_ascii_e164(written: str, e164: str) -> None:
    assert phone(written) == e164


def test_the_same_phone_written_otherwise_is_found_as_a_duplicate(leads: LeadsService) -> None:
    seen = [leads.http.post("/leads", json=PERSON, headers=MKT).json()["id"]]
    for written in ("+84 (0) 912 345 678", "٠٩١٢ ٣٤٥ ٦٧٨", "０９１２３４５６７８"):
        r = leads.http.post("/leads", json={"source": "event", "contact": {"phone": written}}, headers=MKT)
        assert r.status_code == 201, r.text
        assert r.headers.get("x-duplicate-of") in seen, written
        seen.append(r.json()["id"])
        stored = leads.http.get(r.headers["location"], headers=MKT).json()["contact"]["phone"]
        assert stored.isascii(), f"{written!r} is stored as {stored!r}"
    website = raw(WEBSITE | {"submission_id": "wf-9", "email": None, "phone": "+٨٤ (٠) ٩١٢ ٣٤٥ ٦٧٨"})
    r = deliver(leads, "website", website)
    assert r.status_code == 201, r.text
    assert r.headers["x-duplicate-of"] in seen
    assert leads.http.get(r.headers["location"], headers=MKT).json()["contact"]["phone"] == "+84912345678"


# ---------------------------------------------------------------------------------------------- 7: the backstops
def test_what_only_the_database_driver_would_refuse_answers_422_and_its_own_faults_500() -> None:
    """Behind the bounds above: a lone surrogate or a value out of range that reached the driver is the request's
    (422); a value the database refused for another reason is a fault of the service (500)."""
    import asyncpg
    from fastapi import FastAPI

    from shared.edge.http import install_common

    app = FastAPI()
    install_common(app, ready, "test")
    raised = {
        "surrogate": UnicodeEncodeError("utf-8", LONE, 1, 2, "surrogates not allowed"),
        "overflow": OverflowError("date value out of range"),
        "argument": asyncpg.DataError("invalid input for query argument $4: 9223372036854775808 (out of int64 range)"),
        "ours": asyncpg.DataError("division by zero"),
    }

    def failing(exc: Exception) -> Any:
        async def fail() -> None:
            raise exc

        return fail

    for name, exc in raised.items():
        app.add_api_route(f"/{name}", failing(exc))
    with TestClient(app, raise_server_exceptions=False) as http:
        assert http.get("/surrogate").json()["rule"] == "invalid_text"
        assert http.get("/overflow").json()["rule"] == "out_of_range"
        assert http.get("/argument").json()["rule"] == "out_of_range"
        assert http.get("/ours").status_code == 500
