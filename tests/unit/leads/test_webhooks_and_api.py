"""Each source's webhook with realistic payloads (tests/fixtures/leads), and the leads API on the in-memory store."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.leads.api import LeadsAPI, create_app
from services.leads.handlers import InMemoryDedupe, Leads
from services.leads.sources import HttpFacebookGraph
from shared.core.normalize import phone
from shared.edge.auth import TokenVerifier, issue_token
from shared.ops.settings import Settings
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "leads"
SETTINGS = Settings(
    website_form_secret="site-secret",
    ladipage_token="ladi-token",
    facebook_app_secret="fb-app-secret",
    facebook_verify_token="fb-verify",
    facebook_access_token="fb-token",
    google_ads_webhook_key="google-key-for-tests",
    pii_master_key=base64.b64encode(b"m" * 32).decode(),
)
NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def auth(user: str, *roles: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id=user, roles=roles)}


MKT = auth("u-mkt", "marketing")
AUDITOR = auth("u-audit", "auditor")


class RecordedGraph(httpx.AsyncBaseTransport):
    """The Graph API as recorded: the lead's fields for a known leadgen id, 400 otherwise."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/1234567890123456"):
            return httpx.Response(200, content=fixture("facebook_graph_lead.json"))
        return httpx.Response(400, json={"error": {"message": "Unsupported get request", "code": 100}})


@pytest.fixture
def graph() -> RecordedGraph:
    return RecordedGraph()


@pytest.fixture
def client(graph: RecordedGraph) -> Any:
    store = InMemoryEventStore()
    leads = Leads(store, store.personal_data, lambda: NOW, InMemoryDedupe(), b"d" * 32)
    http = httpx.AsyncClient(transport=graph, base_url="https://graph.facebook.com")

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    app = create_app(
        LeadsAPI(
            leads=leads,
            read_models=None,
            settings=SETTINGS,
            graph=HttpFacebookGraph("fb-token", client=http),
            readiness=ready,
        ),
        TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"),
    )
    with TestClient(app) as c:
        yield c


def signed(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def lead(client: TestClient, lead_id: str) -> dict[str, Any]:
    r = client.get(f"/leads/{lead_id}", headers=MKT)
    assert r.status_code == 200, r.text
    return r.json()


def test_website_form_signed_mapped_and_captured_once(client: TestClient) -> None:
    body = fixture("website_form.json")
    r = client.post("/webhooks/website", content=body, headers={"X-Pipelines-Signature": signed(body, "site-secret")})
    assert r.status_code == 201, r.text
    lead_id = r.json()["id"]
    got = lead(client, lead_id)
    assert got["contact"] == {
        "name": "Nguyễn Thị Hồng Nhung",
        "email": "nhung.nguyen@gmail.com",
        "phone": "+84912345678",
        "company": "Tiệm bánh Hồng Nhung",
        "title": "Chủ cửa hàng",
    }
    assert got["attribution"]["utm_campaign"] == "tet-2027"
    assert got["source"] == "website_form"
    again = client.post(
        "/webhooks/website", content=body, headers={"X-Pipelines-Signature": signed(body, "site-secret")}
    )
    assert (again.status_code, again.json()) == (200, {"id": lead_id, "replayed": True})
    history = client.get(f"/leads/{lead_id}/history", headers=MKT).json()["items"]
    assert len(history) == 1
    assert history[0]["data"]["answers"] == {
        "message": "Tôi muốn tư vấn tủ trưng bày bánh 1m2",
        "budget": "30-50 triệu",
        "consent_text_version": "2026-10",
    }
    assert history[0]["data"]["raw_payload"]["name"] == "  Nguyễn   Thị Hồng Nhung "


@pytest.mark.parametrize("signature", [None, "sha256=00", "sha1=abc"])
def test_a_bad_signature_is_401_and_captures_nothing(client: TestClient, signature: str | None) -> None:
    body = fixture("website_form.json")
    headers = {"X-Pipelines-Signature": signature} if signature else {}
    r = client.post("/webhooks/website", content=body, headers=headers)
    assert r.status_code == 401
    assert client.get("/leads/00000000-0000-0000-0000-000000000000", headers=MKT).status_code == 404


def test_ladipage_maps_old_mobile_numbers_and_keeps_other_answers(client: TestClient) -> None:
    r = client.post("/webhooks/ladipage", params={"token": "ladi-token"}, content=fixture("ladipage.json"))
    assert r.status_code == 201, r.text
    got = lead(client, r.json()["id"])
    assert got["contact"]["phone"] == "+84362345678", "01662… became 0362… in 2018"
    assert got["contact"]["name"] == "Phạm Quốc Bảo"
    assert got["source"] == "landing_page"
    repeat = client.post("/webhooks/ladipage", params={"token": "ladi-token"}, content=fixture("ladipage.json"))
    assert repeat.json() == {"id": r.json()["id"], "replayed": True}
    assert (
        client.post("/webhooks/ladipage", params={"token": "nope"}, content=fixture("ladipage.json")).status_code == 401
    )


def test_facebook_signed_notification_fetches_the_lead_from_the_graph_api(
    client: TestClient, graph: RecordedGraph
) -> None:
    assert (
        client.get(
            "/webhooks/facebook",
            params={"hub.mode": "subscribe", "hub.verify_token": "fb-verify", "hub.challenge": "1158201444"},
        ).text
        == "1158201444"
    )
    assert (
        client.get(
            "/webhooks/facebook", params={"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"}
        ).status_code
        == 401
    )
    body = fixture("facebook_webhook.json")
    r = client.post("/webhooks/facebook", content=body, headers={"X-Hub-Signature-256": signed(body, "fb-app-secret")})
    assert r.status_code == 200, r.text
    (captured,) = r.json()["captured"]
    request = graph.requests[0]
    assert request.url.path == "/v21.0/1234567890123456"
    assert request.url.params["access_token"] == "fb-token"
    got = lead(client, captured["id"])
    assert got["contact"] == {
        "name": "Lê Văn Đức",
        "email": "duc.le@ducphat.com.vn",
        "phone": "+84987654321",
        "company": "Công ty TNHH Đức Phát",
        "title": None,
    }
    assert got["attribution"]["campaign_id"] == "120211111111110789"
    assert got["captured_at"] == "2026-11-24T09:03:15+00:00"
    again = client.post(
        "/webhooks/facebook", content=body, headers={"X-Hub-Signature-256": signed(body, "fb-app-secret")}
    )
    assert again.json()["captured"] == [{"id": captured["id"], "replayed": True}]
    assert (
        client.post(
            "/webhooks/facebook", content=body, headers={"X-Hub-Signature-256": signed(body, "wrong")}
        ).status_code
        == 401
    )
    unknown = body.replace(b"1234567890123456", b"9999999999999999")
    r = client.post(
        "/webhooks/facebook", content=unknown, headers={"X-Hub-Signature-256": signed(unknown, "fb-app-secret")}
    )
    assert r.status_code == 503, "a Graph failure answers non-200 so Facebook delivers again"


def test_google_ads_checks_its_key_and_skips_test_leads(client: TestClient) -> None:
    r = client.post("/webhooks/google-ads", content=fixture("google_ads.json"))
    assert r.status_code == 201, r.text
    got = lead(client, r.json()["id"])
    assert got["contact"]["name"] == "Vũ Thị Mai Anh"
    assert got["contact"]["phone"] == "+84903111222"
    assert got["attribution"]["campaign_id"] == "20000000002"
    history = client.get(f"/leads/{got['lead_id']}/history", headers=MKT).json()["items"]
    assert history[0]["data"]["answers"] == {"Tỉnh/Thành phố": "Đà Nẵng"}
    assert "google_key" not in history[0]["data"]["raw_payload"], "the shared key is not stored"
    data = json.loads(fixture("google_ads.json"))
    assert client.post("/webhooks/google-ads", json=data | {"google_key": "bad"}).status_code == 401
    assert client.post("/webhooks/google-ads", json=data | {"is_test": True, "lead_id": "t-1"}).json() == {
        "ignored": "test lead"
    }


def test_the_same_person_from_two_sources_is_flagged_and_merged_explicitly(client: TestClient) -> None:
    body = fixture("website_form.json")
    first = client.post(
        "/webhooks/website", content=body, headers={"X-Pipelines-Signature": signed(body, "site-secret")}
    ).json()["id"]
    r = client.post(
        "/leads",
        headers=MKT,
        json={
            "source": "manual",
            "contact": {"name": "Nhung", "phone": "+84 912 345 678", "email": "NHUNG.NGUYEN@gmail.com"},
        },
    )
    assert r.status_code == 201
    second = r.json()["id"]
    assert r.headers["x-duplicate-of"] == first
    assert lead(client, second)["duplicate_of"] == first
    merged = client.post(f"/leads/{first}/merge", headers=MKT, json={"other_lead_id": second})
    assert merged.status_code == 200
    assert lead(client, second)["status"] == "merged"
    assert client.post(f"/leads/{second}/qualify", headers=MKT, json={"level": "mql"}).json()["rule"] == "lead_merged"


def test_lifecycle_over_http_with_roles_and_errors(client: TestClient) -> None:
    lead_id = client.post(
        "/leads", headers=MKT, json={"source": "referral", "contact": {"name": "An", "phone": "0901234567"}}
    ).json()["id"]
    for path, body in [
        ("assign", {"owner_id": "u-lan", "team_id": "north"}),
        ("contact", {"channel": "phone"}),
        ("start-nurture", {"sequence_id": "welcome"}),
        ("record-nurture-email", {"step": 1, "message_id": "m-1"}),
        ("record-engagement", {"kind": "email_open", "asset_id": "m-1"}),
        ("score", {}),
        ("qualify", {"level": "sql"}),
        ("convert", {"customer": "Nhà An", "title": "Bếp từ"}),
    ]:
        r = client.post(f"/leads/{lead_id}/{path}", headers=MKT, json=body)
        assert r.status_code == 200, (path, r.text)
    assert lead(client, lead_id)["status"] == "converted"
    r = client.post(f"/leads/{lead_id}/qualify", headers=MKT, json={"level": "mql"})
    assert (r.status_code, r.json()["rule"]) == (409, "lead_converted")
    assert client.post(f"/leads/{lead_id}/disqualify", headers=MKT, json={"reason": "bored"}).status_code == 422
    assert client.post(f"/leads/{lead_id}/assign", headers=AUDITOR, json={"owner_id": "x"}).status_code == 403
    audited = client.get(f"/leads/{lead_id}", headers=AUDITOR).json()
    assert "contact" not in audited, "auditors read without personal data"
    assert client.get("/leads/not-a-uuid", headers=MKT).status_code == 422


def test_erasure_forgets_the_person_in_every_answer(client: TestClient) -> None:
    body = fixture("website_form.json")
    lead_id = client.post(
        "/webhooks/website", content=body, headers={"X-Pipelines-Signature": signed(body, "site-secret")}
    ).json()["id"]
    r = client.post(f"/leads/{lead_id}/erase", headers=MKT, json={"reason": "data subject request"})
    assert r.status_code == 200
    answers = (
        client.get(f"/leads/{lead_id}", headers=MKT).text + client.get(f"/leads/{lead_id}/history", headers=MKT).text
    )
    for trace in ("Nhung", "nhung", "912345678", "0912 345", "Tiệm bánh", "tư vấn tủ"):
        assert trace not in answers
    assert lead(client, lead_id)["erased"] is True
    # the same person again is not matched to the erased lead, and gets a fresh record
    again = client.post("/leads", headers=MKT, json={"source": "manual", "contact": {"phone": "0912345678"}})
    assert "x-duplicate-of" not in again.headers


def test_phone_normalisation_table() -> None:
    assert phone("0912.345.678") == phone("(+84) 912 345 678") == "+84912345678"
    assert phone("0168 123 4567") == "+84381234567"
    assert phone("abc") is None


def test_a_client_cannot_take_the_lead_id_of_a_delivery_the_source_will_make(client: TestClient) -> None:
    """Issue 20, item 1: a lead typed in or imported with a source's external id gets an id of the imports'
    namespace; the source's own (verified) delivery of that id is still captured, not answered as a replay."""
    body = fixture("website_form.json")
    taken = client.post(
        "/leads",
        json={
            "source": "website_form",
            "external_id": json.loads(body)["submission_id"],
            "contact": {"name": "X", "phone": "0905"},
        },
        headers=MKT,
    )
    assert taken.status_code == 201, taken.text
    again = client.post(
        "/leads",
        json={
            "source": "website_form",
            "external_id": json.loads(body)["submission_id"],
            "contact": {"name": "X", "phone": "0905"},
        },
        headers=MKT,
    )
    assert again.json() == {"id": taken.json()["id"], "replayed": True}, "an import repeated is the same lead"
    r = client.post("/webhooks/website", content=body, headers={"X-Pipelines-Signature": signed(body, "site-secret")})
    assert r.status_code == 201, r.text
    assert r.json()["id"] != taken.json()["id"]
    assert lead(client, r.json()["id"])["contact"]["name"] == "Nguyễn Thị Hồng Nhung"
