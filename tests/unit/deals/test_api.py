"""The deals API on the in-memory store: status codes, ETags, idempotency, visibility, the audit trail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.deals.api import DealsAPI, create_app
from services.deals.events import deal_id_for_lead
from services.deals.handlers import Deals, follow_up_id_for_order
from shared.edge.auth import TokenVerifier, issue_token
from shared.ops.version import VERSION
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def auth(user: str, *roles: str, team: str | None = "north") -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)}


LAN = auth("u-lan", "sales")
BINH = auth("u-binh", "sales")
MANAGER = auth("u-mai", "sales_manager")
OTHER_MANAGER = auth("u-tuan", "sales_manager", team="south")
AUDITOR = auth("u-audit", "auditor", team=None)
MARKETING = auth("u-mkt", "marketing")

DEAL = {
    "title": "Máy lạnh văn phòng",
    "customer": "Công ty Hòa Bình",
    "owner_id": "u-lan",
    "team_id": "north",
    "contact_id": "c-1",
    "contact": {"name": "Phạm Thu Hà", "email": "ha.pham@hoabinh.vn"},
    "lines": [{"product": "Máy lạnh 2HP", "quantity": "4", "unit_price": {"amount": "15000000", "currency": "VND"}}],
    "expected_close_date": "2026-12-15",
}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> TestClient:
    store = InMemoryEventStore()
    deals = Deals(store, clock)

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    app = create_app(
        DealsAPI(
            deals=deals,
            store=store,
            read_models=None,
            personal_data=store.personal_data,
            timezone="Asia/Ho_Chi_Minh",
            readiness=ready,
        ),
        TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"),
    )
    with TestClient(app) as c:
        c.portal.call(deals.ensure_default_pipeline)
        yield c


def open_deal(client: TestClient, headers=LAN, **overrides) -> str:
    r = client.post("/deals", json=DEAL | overrides, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_opening_answers_201_with_location_etag_and_position(client: TestClient) -> None:
    r = client.post("/deals", json=DEAL, headers=LAN)
    assert r.status_code == 201
    body = r.json()
    assert r.headers["etag"] == '"1"'
    assert r.headers["location"] == f"/deals/{body['id']}"
    assert body["version"] == 1
    assert body["position"] >= 1
    deal = client.get(f"/deals/{body['id']}", headers=LAN).json()
    assert deal["value"] == {"amount": "60000000", "currency": "VND"}
    assert deal["stage"]["stage_id"] == "target_identified"
    assert deal["weighted_value"] == {"amount": "6000000", "currency": "VND"}


def test_stale_if_match_is_412_and_current_one_passes(client: TestClient) -> None:
    deal = open_deal(client)
    r = client.post(f"/deals/{deal}/move-stage", json={"stage_id": "contacted"}, headers=LAN | {"If-Match": '"1"'})
    assert (r.status_code, r.headers["etag"]) == (200, '"2"')
    r = client.post(
        f"/deals/{deal}/move-stage", json={"stage_id": "needs_discussed"}, headers=LAN | {"If-Match": '"1"'}
    )
    assert r.status_code == 412
    assert r.json()["rule"] == "stale_version"
    r = client.post(f"/deals/{deal}/move-stage", json={"stage_id": "needs_discussed"}, headers=LAN | {"If-Match": "3"})
    assert r.status_code == 422


def test_idempotency_key_returns_the_first_answer_and_appends_nothing(client: TestClient) -> None:
    deal = open_deal(client)
    h = LAN | {"Idempotency-Key": "retry-1"}
    body = {"activity_type": "call", "channel": "phone", "outcome": "interested"}
    first = client.post(f"/deals/{deal}/log-activity", json=body, headers=h)
    again = client.post(f"/deals/{deal}/log-activity", json=body, headers=h)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() | {"replayed": True}
    history = client.get(f"/deals/{deal}/history", headers=LAN).json()["items"]
    assert [i["type"] for i in history].count("pipelines.deals.ActivityLogged") == 1
    same = client.post("/deals", json=DEAL, headers=LAN | {"Idempotency-Key": "open-1"})
    replay = client.post("/deals", json=DEAL, headers=LAN | {"Idempotency-Key": "open-1"})
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == same.json()["id"]
    other = client.post("/deals", json=DEAL | {"title": "khác"}, headers=LAN | {"Idempotency-Key": "open-1"})
    assert other.status_code == 422
    assert other.json()["rule"] == "idempotency_key_reused"


def test_rules_answer_409_with_the_rule_and_bad_input_422(client: TestClient) -> None:
    deal = open_deal(client)
    r = client.post(f"/deals/{deal}/move-stage", json={"stage_id": "won"}, headers=LAN)
    assert (r.status_code, r.json()["rule"]) == (409, "use_win_or_lose")
    r = client.post(f"/deals/{deal}/move-stage", json={"stage_id": "nowhere"}, headers=LAN)
    assert (r.status_code, r.json()["rule"]) == (422, "unknown_stage")
    r = client.post(f"/deals/{deal}/change-value", json={"value": {"amount": "1.5", "currency": "VND"}}, headers=LAN)
    assert r.status_code == 422
    assert "VND has 0 decimal places" in r.text
    r = client.post(f"/deals/{deal}/lose", json={}, headers=LAN)
    assert r.status_code == 422
    assert "reason" in r.text
    r = client.post(f"/deals/{uuid.uuid4()}/lose", json={"reason": "x"}, headers=LAN)
    assert r.status_code == 404


def test_who_sees_and_changes_what(client: TestClient) -> None:
    deal = open_deal(client)
    assert client.get(f"/deals/{deal}", headers=LAN).status_code == 200
    assert client.get(f"/deals/{deal}", headers=BINH).status_code == 404, "another salesperson's deal is invisible"
    assert client.get(f"/deals/{deal}", headers=MANAGER).status_code == 200, "the team's manager sees it"
    assert client.get(f"/deals/{deal}", headers=OTHER_MANAGER).status_code == 404
    assert client.get(f"/deals/{deal}", headers=AUDITOR).status_code == 200
    assert client.get(f"/deals/{deal}", headers=MARKETING).status_code == 403
    assert client.post(f"/deals/{deal}/lose", json={"reason": "x"}, headers=AUDITOR).status_code == 403
    assert client.post(f"/deals/{deal}/move-stage", json={"stage_id": "contacted"}, headers=MANAGER).status_code == 200
    r = client.post("/deals", json=DEAL | {"owner_id": "u-binh"}, headers=LAN)
    assert r.status_code == 403
    assert client.get("/deals/x", headers=LAN).status_code == 422
    assert client.get(f"/deals/{deal}").status_code == 401


def test_no_client_takes_a_derived_id_or_names_the_lead_a_deal_came_from(client: TestClient) -> None:
    """Issue 20, items 1 and 2: the id a lead's conversion derives (uuid5) cannot be taken first, nor a
    shipment's follow-up's; a deal opened over HTTP comes from no lead, so it attributes no revenue to one."""
    lead = uuid.uuid4()
    r = client.post("/deals", params={"deal_id": str(deal_id_for_lead(lead))}, json=DEAL, headers=LAN)
    assert r.status_code == 422, r.text
    assert "version 4 or 7" in r.text
    assert client.get(f"/deals/{deal_id_for_lead(lead)}", headers=AUDITOR).status_code == 404
    chosen = uuid.uuid4()
    r = client.post("/deals", params={"deal_id": str(chosen)}, json=DEAL, headers=LAN)
    assert (r.status_code, r.json()["id"]) == (201, str(chosen)), "a random id of the client's is fine"
    r = client.post("/deals", json=DEAL | {"source_lead_id": str(lead)}, headers=LAN)
    assert r.status_code == 422, r.text
    assert "conversion" in r.json()["detail"]
    r = client.post("/deals", json=DEAL | {"source_lead_id": str(lead)}, headers=auth("u-root", "admin", team=None))
    assert r.status_code == 422, "not even an admin's"
    assert client.post(f"/deals/{chosen}/win", json={}, headers=LAN).status_code == 200
    derived = follow_up_id_for_order(uuid.uuid4())
    r = client.post(
        f"/deals/{chosen}/start-follow-up", json={"follow_up_id": str(derived), "due_on": "2026-12-01"}, headers=LAN
    )
    assert r.status_code == 422, r.text
    r = client.post(
        f"/deals/{chosen}/start-follow-up",
        json={"follow_up_id": str(uuid.uuid4()), "due_on": "2026-12-01"},
        headers=LAN,
    )
    assert r.status_code == 200, r.text


def test_deals_go_only_where_the_caller_may_put_them(client: TestClient) -> None:
    """Issue 20, item 3: a salesperson opens their own deals in their team (or none), a manager in their team, a
    director anywhere; a reassignment follows the same rule."""
    assert client.post("/deals", json=DEAL | {"team_id": "west"}, headers=LAN).status_code == 403
    assert client.post("/deals", json=DEAL | {"team_id": None}, headers=LAN).status_code == 201
    assert client.post("/deals", json=DEAL | {"owner_id": "u-binh"}, headers=MANAGER).status_code == 201
    assert client.post("/deals", json=DEAL | {"team_id": "west"}, headers=MANAGER).status_code == 403
    no_team = auth("u-kim", "sales_manager", team=None)
    assert client.post("/deals", json=DEAL | {"owner_id": "u-kim", "team_id": None}, headers=no_team).status_code == 201
    assert client.post("/deals", json=DEAL | {"team_id": None}, headers=no_team).status_code == 403
    director = auth("u-dir", "sales_director", team=None)
    assert client.post("/deals", json=DEAL | {"team_id": "west"}, headers=director).status_code == 201
    deal = open_deal(client)
    move = {"owner_id": "u-lan", "team_id": "west", "reason": "moved"}
    assert client.post(f"/deals/{deal}/reassign", json=move, headers=LAN).status_code == 403
    assert client.post(f"/deals/{deal}/reassign", json=move, headers=MANAGER).status_code == 403
    hand_over = {"owner_id": "u-binh", "team_id": "north"}
    assert client.post(f"/deals/{deal}/reassign", json=hand_over, headers=LAN).status_code == 403
    assert client.post(f"/deals/{deal}/reassign", json=hand_over, headers=MANAGER).status_code == 200
    assert client.post(f"/deals/{deal}/reassign", json=move, headers=director).status_code == 200
    assert client.get(f"/deals/{deal}", headers=MANAGER).status_code == 404, "west's now"


def test_contact_details_only_for_those_who_work_the_deal(client: TestClient) -> None:
    deal = open_deal(client)
    r = client.get(f"/deals/{deal}", params={"include_contact": True}, headers=LAN)
    assert r.json()["contact"]["email"] == "ha.pham@hoabinh.vn"
    assert client.get(f"/deals/{deal}", params={"include_contact": True}, headers=AUDITOR).status_code == 403
    history = client.get(f"/deals/{deal}/history", headers=AUDITOR).json()["items"]
    assert history[0]["data"]["contact"] is None, "auditors see the history without personal data"
    assert "ha.pham" not in client.get(f"/deals/{deal}/history", headers=AUDITOR).text


def test_history_shows_who_what_when_why_and_the_chain(client: TestClient, clock: Clock) -> None:
    deal = open_deal(client)
    clock.now += timedelta(days=2)
    client.post(
        f"/deals/{deal}/change-close-date",
        json={"expected_close_date": "2027-01-10", "reason": "budget"},
        headers=MANAGER | {"X-Correlation-ID": "corr-42"},
    )
    items = client.get(f"/deals/{deal}/history", headers=LAN).json()["items"]
    assert [i["type"].rsplit(".", 1)[1] for i in items] == ["DealOpened", "ExpectedCloseDateChanged"]
    second = items[1]
    assert (second["actor"], second["reason"], second["correlation_id"]) == ("u-mai", "budget", "corr-42")
    assert second["data"]["push_count"] == 1
    assert second["recorded_at"] >= items[0]["recorded_at"]
    page1 = client.get(f"/deals/{deal}/history", params={"limit": 1}, headers=LAN).json()
    assert len(page1["items"]) == 1
    page2 = client.get(
        f"/deals/{deal}/history", params={"limit": 1, "cursor": page1["next_cursor"]}, headers=LAN
    ).json()
    assert page2["items"][0]["version"] == 2
    assert page2["next_cursor"] is None
    assert client.get(f"/deals/{deal}/history", params={"cursor": "garbage"}, headers=LAN).status_code == 422


def test_state_as_of_a_version_a_recorded_time_or_an_occurred_time(client: TestClient, clock: Clock) -> None:
    deal = open_deal(client)  # 2 November
    clock.now += timedelta(days=5)
    # a call on 4 November and a meeting on 5 November, entered on the 7th: back-dated
    for stage, day in (("contacted", "04"), ("needs_discussed", "05")):
        r = client.post(
            f"/deals/{deal}/move-stage",
            json={"stage_id": stage},
            headers=LAN | {"X-Occurred-At": f"2026-11-{day}T10:00:00+07:00"},
        )
        assert r.status_code == 200, r.json()
    # nothing occurs before the event it follows (decision 0021): the stream's last event occurred on 5 November
    r = client.post(
        f"/deals/{deal}/move-stage",
        json={"stage_id": "quote_sent"},
        headers=LAN | {"X-Occurred-At": "2026-11-04T12:00:00+07:00"},
    )
    assert (r.status_code, r.json()["rule"]) == (422, "before_previous_event")
    assert "occurred at 2026-11-05T10:00:00+07:00" in r.json()["detail"], "it names when the previous one occurred"
    assert (
        client.get(f"/deals/{deal}/state", params={"version": 2}, headers=LAN).json()["stage"]["stage_id"]
        == "contacted"
    )
    on_6_nov = {"at": "2026-11-06T12:00:00+07:00"}
    happened = client.get(f"/deals/{deal}/state", params=on_6_nov | {"basis": "occurred"}, headers=LAN).json()
    assert happened["stage"]["stage_id"] == "needs_discussed", "by 6 November the meeting had happened"
    now = {"at": datetime.now(UTC).isoformat()}
    assert client.get(f"/deals/{deal}/state", params=now, headers=LAN).json()["version"] == 3
    before_recording = {"at": "2026-11-01T00:00:00+07:00"}
    assert client.get(f"/deals/{deal}/state", params=before_recording, headers=LAN).status_code == 404
    d = client.get(f"/deals/{deal}/diff", params={"from_version": 1, "to_version": 3}, headers=LAN).json()
    assert d["changes"]["stage"]["from"]["stage_id"] == "target_identified"
    assert d["changes"]["stage"]["to"]["stage_id"] == "needs_discussed"
    assert d["events"] == ["StageChanged", "StageChanged"]
    r = client.post(
        f"/deals/{deal}/move-stage",
        json={"stage_id": "quote_sent"},
        headers=LAN | {"X-Occurred-At": "2026-11-01T10:00:00+07:00"},  # the day before it opened
    )
    assert (r.status_code, r.json()["rule"]) == (409, "before_opening")
    r = client.post(
        f"/deals/{deal}/move-stage",
        json={"stage_id": "quote_sent"},
        headers=LAN | {"X-Occurred-At": "2027-10-01T10:00:00"},
    )
    assert r.status_code == 422


def test_the_state_before_the_deal_existed_is_not_found(client: TestClient) -> None:
    deal = open_deal(client)  # opened on 2 November (the clock), recorded now
    for params in (
        {"at": "2026-11-01T00:00:00+07:00"},  # before it was recorded
        {"at": "2026-11-01T00:00:00+07:00", "basis": "occurred"},  # before it happened
    ):
        r = client.get(f"/deals/{deal}/state", params=params, headers=LAN)
        assert (r.status_code, r.headers["content-type"]) == (404, "application/problem+json"), params
        unknown = client.get(f"/deals/{uuid.uuid4()}/state", params=params, headers=LAN)
        assert unknown.status_code == 404
        same = ("type", "title", "status")
        assert [r.json()[k] for k in same] == [unknown.json()[k] for k in same], "as for a deal that does not exist"
    happened = {"at": "2026-11-03T00:00:00+07:00", "basis": "occurred"}
    assert client.get(f"/deals/{deal}/state", params=happened, headers=LAN).json()["status"] == "open"


def test_a_closed_deal_weighs_its_value_if_won_and_nothing_if_lost(client: TestClient) -> None:
    won, lost = open_deal(client), open_deal(client)
    for deal in (won, lost):
        client.post(f"/deals/{deal}/move-stage", json={"stage_id": "negotiation"}, headers=LAN)
        assert client.get(f"/deals/{deal}", headers=LAN).json()["weighted_value"]["amount"] == "48000000"
    assert client.post(f"/deals/{won}/win", json={}, headers=LAN).status_code == 200
    assert client.post(f"/deals/{lost}/lose", json={"reason": "giá cao"}, headers=LAN).status_code == 200
    value = {"amount": "60000000", "currency": "VND"}
    for deal, probability, weighted in ((won, "1", value), (lost, "0", value | {"amount": "0"})):
        for path in (f"/deals/{deal}", f"/deals/{deal}/state"):
            body = client.get(path, headers=LAN).json()
            assert (body["probability"], body["weighted_value"]) == (probability, weighted), (path, body["status"])


def test_health_is_open_and_openapi_lists_every_command(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "version": VERSION}
    assert client.get("/readyz").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    for name in ("move-stage", "win", "lose", "reopen", "send-quote", "record-feedback", "flag-delivery-risk"):
        assert f"/deals/{{deal_id}}/{name}" in paths
    assert "examples" in str(paths["/deals"]["post"])
