"""The agenda's API on the in-memory store and replicas: scheduling checked against the subject and the owner
(unknown: 422 naming the field; another team's: 404; for whom the caller may: 403), the commands with If-Match,
Idempotency-Key and X-Occurred-At, notes sealed under the subject's key and read as null once it is erased, and a
deactivated owner's open activities handed over."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.agenda import handovers
from services.agenda.api import AgendaAPI, create_app
from services.agenda.handlers import Agenda
from services.agenda.subjects import MemorySubjects, Subject
from services.directory import events as directory
from services.directory.replica import MemoryReplica
from services.directory.replica_customers import OrganisationRef, PersonRef
from services.leads.events import LeadAssigned, LeadCaptured, LeadConverted
from shared.edge.auth import TokenVerifier, issue_token
from shared.messaging.envelope import CloudEvent
from shared.privacy.pii import InMemoryKeyStore, PersonalData
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
LATER = (NOW + timedelta(hours=3)).isoformat()
DEAL_LAN = uuid.UUID("00000000-0000-4000-8000-00000000d001")
DEAL_TUAN = uuid.UUID("00000000-0000-4000-8000-00000000d002")
WON = uuid.UUID("00000000-0000-4000-8000-00000000d003")
LEAD = uuid.UUID("00000000-0000-4000-8000-00000000e001")
ORG = uuid.UUID("00000000-0000-4000-8000-00000000f001")
PERSON = uuid.UUID("00000000-0000-4000-8000-00000000f002")


def auth(user: str, *roles: str, team: str | None = "north") -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)}


LAN, BINH, MAI = auth("u-lan", "sales"), auth("u-binh", "sales"), auth("u-mai", "sales_manager")
TUAN, DIRECTOR = auth("u-tuan", "sales", team="south"), auth("u-giam", "sales_director", team=None)
AUDITOR, MARKETER = auth("u-audit", "auditor", team=None), auth("u-mkt", "marketing")


class World:
    def __init__(self) -> None:
        self.keys = InMemoryKeyStore()
        self.store = InMemoryEventStore(PersonalData(self.keys))
        self.replica = MemoryReplica().seed(
            ("u-lan", "north"), ("u-binh", "north"), ("u-mai", "north"), ("u-tuan", "south"), ("u-giam", "south")
        )
        self.replica.organisations[ORG] = OrganisationRef(ORG, "north", "u-binh")
        self.replica.people[PERSON] = PersonRef(PERSON, None, "south")
        self.subjects = MemorySubjects(self.replica)
        self.subjects.deals[DEAL_LAN] = Subject("deal", DEAL_LAN, "u-lan", "north", True, "c-lan-1")
        self.subjects.deals[DEAL_TUAN] = Subject("deal", DEAL_TUAN, "u-tuan", "south", True, f"deal:{DEAL_TUAN}")
        self.subjects.deals[WON] = Subject("deal", WON, "u-lan", "north", False, f"deal:{WON}")
        self.subjects.apply(LeadCaptured.model_construct(lead_id=LEAD))
        self.subjects.apply(LeadAssigned(lead_id=LEAD, owner_id="u-binh", team_id="north"))
        self.agenda = Agenda(self.store, lambda: NOW)

    def app(self) -> Any:
        async def ready() -> dict[str, str]:
            return {"store": "ok"}

        api = AgendaAPI(self.agenda, None, self.store.personal_data, ready, self.replica, self.subjects)
        return create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def http(world: World) -> Iterator[TestClient]:
    with TestClient(world.app()) as client:
        yield client


def body(**changes: Any) -> dict[str, Any]:
    return {
        "kind": "zalo",
        "subject_type": "deal",
        "subject_id": str(DEAL_LAN),
        "title": "Nhắn Zalo gửi báo giá",
        "notes": "Chị Hà, 0912 345 678",
        "due_at": LATER,
        "duration_minutes": 10,
    } | changes


def refusal(r: Any) -> tuple[int, str | None, list[Any] | None]:
    j = r.json()
    return r.status_code, j.get("rule"), (j.get("errors") or [{}])[0].get("loc")


def test_a_salesperson_schedules_on_their_deal_for_themselves_and_reads_it_back(world: World, http: TestClient) -> None:
    r = http.post("/activities", json=body(), headers=LAN)
    assert r.status_code == 201, r.text
    activity_id = r.json()["id"]
    assert r.headers["Location"] == f"/activities/{activity_id}" and r.headers["ETag"] == '"1"'
    got = http.get(f"/activities/{activity_id}", headers=LAN).json()
    assert got | {"version": 1} == got and got["owner_id"] == "u-lan" and got["team_id"] == "north"
    assert (got["kind"], got["notes"], got["status"], got["due_at"]) == (
        "zalo",
        "Chị Hà, 0912 345 678",
        "scheduled",
        LATER,
    )
    assert http.get(f"/activities/{activity_id}", headers=MAI).status_code == 200, "their manager sees it"
    audited = http.get(f"/activities/{activity_id}", headers=AUDITOR)
    assert audited.status_code == 200 and audited.json()["notes"] is None, "notes: to those who work it"
    assert "0912" not in http.get(f"/activities/{activity_id}/history", headers=AUDITOR).text
    assert http.get(f"/activities/{activity_id}", headers=BINH).status_code == 404, "a colleague does not"
    assert http.get(f"/activities/{activity_id}", headers=TUAN).status_code == 404
    assert http.get(f"/activities/{activity_id}", headers=MARKETER).status_code == 403
    history = http.get(f"/activities/{activity_id}/history", headers=LAN).json()["items"]
    assert [h["type"] for h in history] == ["pipelines.agenda.ActivityScheduled"] and history[0]["actor"] == "u-lan"
    stored = http.portal.call(lambda: world.store.read_all(limit=10))
    assert "0912" not in str(stored[0].data), "notes are stored sealed"
    assert stored[0].data["notes"].startswith("pii:v1:c-lan-1:"), "under the deal's contact's key"


def test_what_a_scheduling_names_is_checked_unknown_422_unseen_404_not_theirs_403(http: TestClient) -> None:
    unknown = http.post("/activities", json=body(subject_id=str(uuid.uuid4())), headers=LAN)
    assert refusal(unknown) == (422, "unknown_subject", ["body", "subject_id"])
    assert http.post("/activities", json=body(subject_id=str(DEAL_TUAN)), headers=LAN).status_code == 404
    assert http.post("/activities", json=body(), headers=BINH).status_code == 404, "a colleague's deal"
    assert refusal(http.post("/activities", json=body(owner_id="u-nobody"), headers=LAN)) == (
        422,
        "unknown_user",
        ["body", "owner_id"],
    )
    assert http.post("/activities", json=body(owner_id="u-binh"), headers=LAN).status_code == 403, "for another"
    assert refusal(http.post("/activities", json=body(subject_id=str(WON)), headers=LAN))[:2] == (409, "subject_closed")
    # a manager for their team's people, on their team's subjects; not for another team's
    assert http.post("/activities", json=body(owner_id="u-binh"), headers=MAI).status_code == 201
    assert http.post("/activities", json=body(owner_id="u-tuan"), headers=MAI).status_code == 403
    assert http.post("/activities", json=body(subject_id=str(DEAL_TUAN)), headers=MAI).status_code == 404
    # a director for anyone, anywhere
    r = http.post("/activities", json=body(subject_id=str(DEAL_TUAN), owner_id="u-tuan"), headers=DIRECTOR)
    assert r.status_code == 201 and http.get(f"/activities/{r.json()['id']}", headers=TUAN).json()["team_id"] == "south"
    # leads, organisations and people of the caller's team; another team's person: 404
    lead = body(subject_type="lead", subject_id=str(LEAD), kind="in_person")
    assert http.post("/activities", json=lead, headers=LAN).status_code == 201
    org = body(subject_type="organisation", subject_id=str(ORG), kind="meeting")
    assert http.post("/activities", json=org, headers=LAN).status_code == 201
    person = body(subject_type="person", subject_id=str(PERSON), kind="task")
    assert http.post("/activities", json=person, headers=LAN).status_code == 404
    assert http.post("/activities", json=person, headers=TUAN).status_code == 201
    assert http.post("/activities", json=body(), headers=AUDITOR).status_code == 403, "an auditor changes nothing"
    assert http.post("/activities", json=body(), headers=MARKETER).status_code == 403


def test_a_deactivated_owner_is_refused(world: World, http: TestClient) -> None:
    world.replica.apply(
        directory.UserDeactivated(
            user_id="u-binh", team_id="north", handed_to="u-lan", reason="nghỉ việc", deactivated_at=NOW
        )
    )
    r = http.post("/activities", json=body(owner_id="u-binh"), headers=MAI)
    assert refusal(r) == (422, "user_inactive", ["body", "owner_id"])


def test_the_due_time_is_measured_against_the_commands_occurred_time(http: TestClient) -> None:
    past = (NOW - timedelta(hours=2)).isoformat()
    assert refusal(http.post("/activities", json=body(due_at=past), headers=LAN)) == (
        422,
        "due_in_the_past",
        ["body", "due_at"],
    )
    imported = LAN | {"X-Occurred-At": (NOW - timedelta(days=1)).isoformat()}
    r = http.post("/activities", json=body(due_at=past), headers=imported)
    assert r.status_code == 201, "back-dated: it was ahead then"
    activity_id = r.json()["id"]
    done_then = LAN | {"X-Occurred-At": (NOW - timedelta(hours=1)).isoformat()}
    assert (
        http.post(f"/activities/{activity_id}/complete", json={"outcome": "ok"}, headers=done_then).status_code == 200
    )
    got = http.get(f"/activities/{activity_id}", headers=LAN).json()
    assert got["completed_at"] == (NOW - timedelta(hours=1)).isoformat() and got["outcome"] == "ok"
    assert refusal(http.post("/activities", json=body(due_at="2026-12-07T09:00:00"), headers=LAN))[0] == 422


def test_commands_take_if_match_idempotency_key_and_nothing_after_the_end(http: TestClient) -> None:
    once = LAN | {"Idempotency-Key": "schedule-1"}
    first = http.post("/activities", json=body(), headers=once)
    again = http.post("/activities", json=body(), headers=once)
    assert first.status_code == 201 and again.status_code == 200 and again.json()["id"] == first.json()["id"]
    activity_id = first.json()["id"]
    later = (NOW + timedelta(days=1)).isoformat()
    stale = http.post(
        f"/activities/{activity_id}/reschedule", json={"due_at": later}, headers=LAN | {"If-Match": '"7"'}
    )
    assert stale.status_code == 412
    moved = http.post(
        f"/activities/{activity_id}/reschedule", json={"due_at": later}, headers=LAN | {"If-Match": '"1"'}
    )
    assert moved.status_code == 200 and moved.headers["ETag"] == '"2"'
    assert http.post(f"/activities/{activity_id}/cancel", json={"reason": "x"}, headers=BINH).status_code == 404
    assert http.post(f"/activities/{activity_id}/cancel", json={"reason": "x"}, headers=AUDITOR).status_code == 403
    assert http.post(f"/activities/{activity_id}/cancel", json={"reason": "khách hủy"}, headers=MAI).status_code == 200
    after = http.post(f"/activities/{activity_id}/complete", json={}, headers=LAN)
    assert refusal(after)[:2] == (409, "activity_cancelled")
    assert http.post(f"/activities/{uuid.uuid4()}/complete", json={}, headers=LAN).status_code == 404
    assert http.get(f"/activities/{activity_id}", headers=LAN).json()["status"] == "cancelled"


def test_reassigning_puts_it_where_the_caller_may(http: TestClient) -> None:
    activity_id = http.post("/activities", json=body(), headers=LAN).json()["id"]
    to_binh = {"owner_id": "u-binh", "reason": "Lan nghỉ phép"}
    assert http.post(f"/activities/{activity_id}/reassign", json=to_binh, headers=LAN).status_code == 403
    to_tuan = {"owner_id": "u-tuan", "reason": "x"}
    assert http.post(f"/activities/{activity_id}/reassign", json=to_tuan, headers=MAI).status_code == 403
    nobody = {"owner_id": "u-nobody", "reason": "x"}
    r = http.post(f"/activities/{activity_id}/reassign", json=nobody, headers=MAI)
    assert refusal(r) == (422, "unknown_user", ["body", "owner_id"])
    assert http.post(f"/activities/{activity_id}/reassign", json=to_binh, headers=MAI).status_code == 200
    got = http.get(f"/activities/{activity_id}", headers=BINH).json()
    assert (got["owner_id"], got["team_id"]) == ("u-binh", "north")
    assert http.get(f"/activities/{activity_id}", headers=LAN).status_code == 404, "no longer Lan's"


def test_erasing_the_lead_makes_the_activitys_notes_and_outcome_read_null(world: World, http: TestClient) -> None:
    lead = body(subject_type="lead", subject_id=str(LEAD), notes="Anh Minh thích gói B", owner_id="u-binh")
    activity_id = http.post("/activities", json=lead, headers=BINH).json()["id"]
    done = http.post(f"/activities/{activity_id}/complete", json={"outcome": "Anh Minh đồng ý"}, headers=BINH)
    assert done.status_code == 200
    got = http.get(f"/activities/{activity_id}", headers=BINH).json()
    assert (got["notes"], got["outcome"]) == ("Anh Minh thích gói B", "Anh Minh đồng ý")
    http.portal.call(world.keys.erase, str(LEAD))  # the leads service erases the lead
    got = http.get(f"/activities/{activity_id}", headers=BINH).json()
    assert (got["notes"], got["outcome"], got["title"]) == (None, None, lead["title"])
    assert "Anh Minh" not in http.get(f"/activities/{activity_id}/history", headers=BINH).text
    # nothing new is sealed for an erased subject: notes sent later are not kept
    again = http.post("/activities", json=lead | {"notes": "Anh Minh lần 2"}, headers=BINH).json()["id"]
    assert http.get(f"/activities/{again}", headers=BINH).json()["notes"] is None


def test_a_converted_lead_takes_no_new_activity(world: World, http: TestClient) -> None:
    world.subjects.apply(LeadConverted.model_construct(lead_id=LEAD))
    lead = body(subject_type="lead", subject_id=str(LEAD))
    assert refusal(http.post("/activities", json=lead, headers=BINH))[:2] == (409, "subject_closed")


def test_a_deactivated_owners_open_activities_are_handed_over_once(world: World, http: TestClient) -> None:
    open_one = http.post("/activities", json=body(), headers=LAN).json()["id"]
    done = http.post("/activities", json=body(), headers=LAN).json()["id"]
    assert http.post(f"/activities/{done}/complete", json={}, headers=LAN).status_code == 200
    cause = CloudEvent(
        id=str(uuid.uuid4()),
        source="/pipelines/directory",
        type="pipelines.directory.UserDeactivated",
        subject="directory-user-u-lan",
        time=NOW,
        data={},
        streamid="directory-user-u-lan",
        streamversion=3,
        position=9,
        schemaversion=1,
        recordedtime=NOW,
        correlationid="c-1",
        causationid="c-1",
    )
    reason = "u-lan deactivated, handed to u-binh: nghỉ việc"
    for activity in (open_one, done, open_one):  # the second time: a replay
        http.portal.call(handovers.hand_over, world.agenda, activity, "u-lan", "u-binh", reason, cause)
    got = http.get(f"/activities/{open_one}", headers=BINH).json()
    assert (got["owner_id"], got["team_id"], got["version"]) == ("u-binh", "north", 2)
    assert http.get(f"/activities/{done}", headers=LAN).json()["owner_id"] == "u-lan", "done work stays Lan's"
    trail = http.get(f"/activities/{open_one}/history", headers=BINH).json()["items"]
    assert (trail[-1]["actor"], trail[-1]["reason"]) == ("system:agenda-reactions", reason)


def test_a_malformed_subject_after_header_is_refused_naming_it(http: TestClient) -> None:
    for value in ("deal-1@1", f"deal-{DEAL_LAN}@0", f"campaign-{DEAL_LAN}@1", ",".join([f"deal-{DEAL_LAN}@1"] * 9)):
        r = http.post("/activities", json=body(), headers=LAN | {"X-Subject-After": value})
        assert refusal(r) == (422, "invalid_subject_after", ["header", "X-Subject-After"]), value
    fine = LAN | {"X-Subject-After": f"deal-{DEAL_LAN}@1, lead-{LEAD}@2"}
    assert http.post("/activities", json=body(), headers=fine).status_code == 201, "in memory: nothing to wait for"
