"""The directory API on the in-memory store: admin-only commands, references checked (422 naming the field),
who sees whom (404 for the others), the audit trail with who and why, names sealed in the store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from services.directory.api import DirectoryAPI, create_app
from services.directory.api.rights import may_see_user, visible_teams
from services.directory.handlers import Directory
from shared.edge.auth import ROLES, Principal, TokenVerifier, issue_token
from shared.privacy.pii import is_token
from shared.store import RecordedEvent
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore()


@pytest.fixture
def client(store: InMemoryEventStore) -> Iterator[TestClient]:
    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    api = DirectoryAPI(Directory(store, lambda: NOW, ROLES), None, store.personal_data, ready)
    with TestClient(create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))) as c:
        yield c


def auth(user: str, *roles: str, team: str | None = None) -> dict[str, str]:
    token = issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)
    return {"Authorization": f"Bearer {token}"}


ADMIN = auth("u-admin", "admin")
AUDITOR = auth("u-audit", "auditor")


def user(user_id: str, team: str, *roles: str) -> dict[str, object]:
    return {
        "user_id": user_id,
        "name": f"Name of {user_id}",
        "email": f"{user_id}@example.vn",
        "team_id": team,
        "roles": list(roles),
        "quiet_hours": {"start": "21:30", "end": "07:00"},
    }


def setup_two_teams(client: TestClient) -> None:
    for team in ("north", "south"):
        assert client.post("/teams", headers=ADMIN, json={"team_id": team, "name": team.title()}).status_code == 201
    for u, team, role in (
        ("u-lan", "north", "sales"),
        ("u-minh", "north", "sales_manager"),
        ("u-hoa", "south", "sales"),
    ):
        r = client.post("/users", headers=ADMIN, json=user(u, team, role))
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"/users/{u}" and r.headers["etag"] == '"1"'


def test_only_admins_change_the_directory(client: TestClient) -> None:
    setup_two_teams(client)
    manager = auth("u-minh", "sales_manager", "sales_director", team="north")
    for method, path, body in (
        ("post", "/users", user("u-x", "north")),
        ("put", "/users/u-lan/roles", {"roles": ["sales_manager"], "reason": "x"}),
        ("put", "/users/u-lan/team", {"team_id": "south", "reason": "x"}),
        ("post", "/users/u-lan/deactivate", {"handed_to": "u-minh", "reason": "x"}),
        ("post", "/teams", {"team_id": "east", "name": "East"}),
        ("post", "/teams/north/close", {"reason": "x"}),
    ):
        assert client.request(method, path, headers=manager, json=body).status_code == 403, path
    assert client.post("/users", json=user("u-x", "north")).status_code == 401


def test_references_name_their_field_and_rules_refuse_in_their_words(client: TestClient) -> None:
    setup_two_teams(client)
    r = client.post("/users", headers=ADMIN, json=user("u-new", "nowhere"))
    assert r.status_code == 422 and r.json()["rule"] == "unknown_team"
    assert r.json()["errors"][0]["loc"] == ["body", "team_id"]
    r = client.post("/users/u-lan/deactivate", headers=ADMIN, json={"handed_to": "u-ghost", "reason": "left"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "handed_to"]
    r = client.post("/users", headers=ADMIN, json=user("u-lan", "north"))
    assert r.status_code == 409 and r.json()["rule"] == "user_exists"
    r = client.put("/users/u-lan/roles", headers=ADMIN, json={"roles": ["wizard"], "reason": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "roles"]
    r = client.post("/users", headers=ADMIN, json=user("u-z", "north") | {"time_zone": "GMT+7"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "time_zone"]
    assert client.put("/users/u-ghost/team", headers=ADMIN, json={"team_id": "north", "reason": "x"}).status_code == 404
    r = client.put("/users/u-lan/team", headers=ADMIN, json={"team_id": "north", "reason": "x"})
    assert r.status_code == 409 and r.json()["rule"] == "unchanged"
    stale = client.put(
        "/users/u-lan/team", headers=ADMIN | {"If-Match": '"7"'}, json={"team_id": "south", "reason": "x"}
    )
    assert stale.status_code == 412


def test_a_team_closes_once_its_active_users_are_gone_and_then_takes_nobody(client: TestClient) -> None:
    setup_two_teams(client)
    r = client.post("/teams/south/close", headers=ADMIN, json={"reason": "merged into north"})
    assert r.status_code == 409 and r.json()["rule"] == "team_not_empty"
    assert (
        client.put("/users/u-hoa/team", headers=ADMIN, json={"team_id": "north", "reason": "merge"}).status_code == 200
    )
    assert client.post("/teams/south/close", headers=ADMIN, json={"reason": "merged into north"}).status_code == 200
    r = client.put("/users/u-hoa/team", headers=ADMIN, json={"team_id": "south", "reason": "back"})
    assert r.status_code == 422 and r.json()["rule"] == "team_closed"
    r = client.post("/users/u-lan/deactivate", headers=ADMIN, json={"handed_to": "u-minh", "reason": "left"})
    assert r.status_code == 200
    r = client.post("/users/u-hoa/deactivate", headers=ADMIN, json={"handed_to": "u-lan", "reason": "left"})
    assert r.status_code == 422 and r.json()["rule"] == "user_inactive"
    assert client.get("/teams/south", headers=AUDITOR).json() | {"version": 0} == {
        "team_id": "south",
        "name": "South",
        "active": False,
        "version": 0,
    }


def test_who_sees_whom_and_the_history_says_who_and_why(client: TestClient, store: InMemoryEventStore) -> None:
    setup_two_teams(client)
    r = client.post("/users/u-lan/deactivate", headers=ADMIN, json={"handed_to": "u-minh", "reason": "left the firm"})
    assert r.status_code == 200
    north_sales = auth("u-lan", "sales", team="north")
    south_sales = auth("u-hoa", "sales", team="south")
    moved = auth("u-hoa", "sales", team="east")  # a token's team differs from the directory's: still sees themselves
    lan = client.get("/users/u-lan", headers=north_sales).json()
    assert lan["name"] == "Name of u-lan" and lan["email"] == "u-lan@example.vn"
    assert (lan["active"], lan["handed_to"], lan["quiet_hours"]) == (
        False,
        "u-minh",
        {"start": "21:30", "end": "07:00"},
    )
    assert client.get("/users/u-lan", headers=south_sales).status_code == 404
    assert client.get("/users/u-hoa", headers=moved).status_code == 200
    assert client.get("/users/u-ghost", headers=AUDITOR).status_code == 404
    assert client.get("/teams/north", headers=south_sales).status_code == 404
    assert client.get("/teams/south", headers=south_sales).status_code == 200
    assert client.get("/users/u-lan/history", headers=north_sales).status_code == 403
    items = client.get("/users/u-lan/history", headers=AUDITOR).json()["items"]
    assert [(i["type"].rsplit(".", 1)[1], i["actor"], i["reason"]) for i in items] == [
        ("UserRegistered", "u-admin", None),
        ("UserDeactivated", "u-admin", "left the firm"),
    ]
    stored = (await_stream(store, "directory-user-u-lan"))[0].data
    assert is_token(stored["name"]) and is_token(stored["email"]) and "Name of" not in str(stored)


def await_stream(store: InMemoryEventStore, stream: str) -> list[RecordedEvent]:
    return asyncio.run(store.read_stream(stream))


def test_erasure_forgets_the_name_and_email_of_a_deactivated_user(client: TestClient) -> None:
    setup_two_teams(client)
    assert client.post("/users/u-lan/erase", headers=ADMIN, json={"reason": "asked"}).status_code == 409
    client.post("/users/u-lan/deactivate", headers=ADMIN, json={"handed_to": "u-minh", "reason": "left"})
    assert client.post("/users/u-lan/erase", headers=ADMIN, json={"reason": "asked"}).status_code == 200
    lan = client.get("/users/u-lan", headers=ADMIN).json()
    assert (lan["name"], lan["email"], lan["erased"]) == (None, None, True)
    assert client.get("/users/u-minh", headers=ADMIN).json()["name"] == "Name of u-minh"


def test_the_scope_of_each_role() -> None:
    assert visible_teams(Principal("a", frozenset({"auditor"}))) is None
    assert visible_teams(Principal("d", frozenset({"sales_director"}), "north")) is None
    assert visible_teams(Principal("m", frozenset({"sales_manager"}), "north")) == ["north"]
    assert visible_teams(Principal("p", frozenset({"production"}))) == []
    assert may_see_user(Principal("p", frozenset({"production"})), "p", "floor")
    assert not may_see_user(Principal("p", frozenset({"production"})), "q", "floor")


def test_a_retried_registration_is_answered_once_and_a_profile_change_is_read_back(client: TestClient) -> None:
    setup_two_teams(client)
    key = ADMIN | {"Idempotency-Key": "register-u-an"}
    first = client.post("/users", headers=key, json=user("u-an", "north", "production"))
    again = client.post("/users", headers=key, json=user("u-an", "north", "production"))
    assert (first.status_code, again.status_code, again.headers["idempotent-replayed"]) == (201, 200, "true")
    assert first.json()["position"] == again.json()["position"]
    profile = {"name": "An Nguyễn", "email": "an@example.vn", "language": "en", "time_zone": "Asia/Bangkok"}
    r = client.put("/users/u-an/profile", headers=ADMIN | {"If-Match": '"1"'}, json=profile | {"reason": "typo"})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    an = client.get("/users/u-an", headers=auth("u-an", "production"))  # no team in the token: themselves
    assert an.status_code == 200 and an.headers["etag"] == '"2"'
    assert {k: an.json()[k] for k in ("name", "language", "time_zone", "quiet_hours")} == {
        "name": "An Nguyễn",
        "language": "en",
        "time_zone": "Asia/Bangkok",
        "quiet_hours": None,
    }
    assert client.post("/users/u-an/reactivate", headers=ADMIN, json={"reason": "x"}).json()["rule"] == "already_active"


def test_a_users_reminders_are_immediate_unless_a_digest_is_asked_for_at_a_local_time(client: TestClient) -> None:
    """Issue 25: the profile's ``reminders`` (immediate | digest) and ``digest_at`` (07:30 unless given), read back;
    a time without a digest is refused, naming ``digest_at``."""
    setup_two_teams(client)
    lan = client.get("/users/u-lan", headers=ADMIN).json()
    assert (lan["reminders"], lan["digest_at"]) == ("immediate", None)
    profile = {"name": "Lan", "email": "lan@example.vn", "reason": "wants a digest"}
    r = client.put("/users/u-lan/profile", headers=ADMIN, json=profile | {"reminders": "digest"})
    assert r.status_code == 200, r.text
    lan = client.get("/users/u-lan", headers=ADMIN).json()
    assert (lan["reminders"], lan["digest_at"]) == ("digest", "07:30")
    r = client.put("/users/u-lan/profile", headers=ADMIN, json=profile | {"reminders": "digest", "digest_at": "06:45"})
    assert client.get("/users/u-lan", headers=ADMIN).json()["digest_at"] == "06:45"
    bad = client.put("/users/u-lan/profile", headers=ADMIN, json=profile | {"digest_at": "06:45"})
    assert bad.status_code == 422 and "digest_at" in bad.text
    assert client.put("/users/u-lan/profile", headers=ADMIN, json=profile | {"reminders": "weekly"}).status_code == 422
