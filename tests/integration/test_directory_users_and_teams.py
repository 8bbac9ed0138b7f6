"""The directory on real PostgreSQL and Kafka, through its API: teams and users registered, moved and deactivated;
the history says who and why; the lists (read model, read-your-writes) answer within each caller's scope; names
and emails sealed in the store and the read model, opened for the answer only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.directory import main as directory_main
from testkit.services import Serve, bearer

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
START = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
ADMIN = bearer("u-admin", "admin", team=None)
AUDITOR = bearer("u-audit", "auditor", team=None)
MANAGER = bearer("u-minh", "sales_manager", team="north")
SOUTH = bearer("u-hoa", "sales", team="south")


def person(user_id: str, team: str, *roles: str) -> dict[str, object]:
    return {
        "user_id": user_id,
        "name": f"Nguyễn {user_id}",
        "email": f"{user_id}@example.vn",
        "team_id": team,
        "roles": list(roles),
        "time_zone": "Asia/Ho_Chi_Minh",
    }


async def test_register_move_deactivate_with_history_and_scoped_lists(serve: Serve) -> None:
    served = await serve(directory_main.build, start=START)
    http, service = served.http, served.service
    for team in ("north", "south"):
        assert (
            await http.post("/teams", headers=ADMIN, json={"team_id": team, "name": team.title()})
        ).status_code == 201
    for user_id, team, role in (
        ("u-lan", "north", "sales"),
        ("u-minh", "north", "sales_manager"),
        ("u-hoa", "south", "sales"),
    ):
        r = await http.post("/users", headers=ADMIN, json=person(user_id, team, role))
        assert r.status_code == 201, r.text
    r = await http.post("/users", headers=ADMIN, json=person("u-x", "east"))
    assert (r.status_code, r.json()["errors"][0]["loc"]) == (422, ["body", "team_id"])

    move = await http.put("/users/u-hoa/team", headers=ADMIN, json={"team_id": "north", "reason": "south merged"})
    assert move.status_code == 200, move.text
    gone = await http.post(
        "/users/u-lan/deactivate", headers=ADMIN, json={"handed_to": "u-minh", "reason": "left the company"}
    )
    assert gone.status_code == 200, gone.text
    closed = await http.post("/teams/south/close", headers=ADMIN, json={"reason": "merged into north"})
    assert closed.status_code == 200, closed.text
    position = closed.json()["position"]

    history = (await http.get("/users/u-hoa/history", headers=AUDITOR)).json()["items"]
    assert [(h["type"].rsplit(".", 1)[1], h["actor"], h["reason"]) for h in history] == [
        ("UserRegistered", "u-admin", None),
        ("UserMovedToTeam", "u-admin", "south merged"),
    ]
    assert history[0]["data"]["name"] == "Nguyễn u-hoa"  # opened for the auditor's answer

    everyone = (await http.get("/users", headers=AUDITOR, params={"position": position})).json()["items"]
    assert [(u["user_id"], u["team_id"], u["active"]) for u in everyone] == [
        ("u-hoa", "north", True),
        ("u-lan", "north", False),
        ("u-minh", "north", True),
    ]
    assert everyone[1]["handed_to"] == "u-minh" and everyone[1]["name"] == "Nguyễn u-lan"
    active = (await http.get("/users", headers=MANAGER, params={"active": "true", "limit": 1})).json()
    assert [u["user_id"] for u in active["items"]] == ["u-hoa"] and active["next_cursor"]
    again = await http.get("/users", headers=MANAGER, params={"active": "true", "cursor": active["next_cursor"]})
    assert [u["user_id"] for u in again.json()["items"]] == ["u-minh"]
    south_token = (await http.get("/users", headers=SOUTH)).json()["items"]  # the token still says south
    assert [u["user_id"] for u in south_token] == ["u-hoa"]  # themselves only: south has nobody now
    assert (await http.get("/users/u-lan", headers=SOUTH)).status_code == 404
    teams = (await http.get("/teams", headers=AUDITOR)).json()["items"]
    assert [(t["team_id"], t["active"], t["active_users"]) for t in teams] == [("north", True, 2), ("south", False, 0)]
    assert [t["team_id"] for t in (await http.get("/teams", headers=MANAGER)).json()["items"]] == ["north"]

    storage = service.storage
    async with storage.pool.acquire() as conn:
        stored = await conn.fetch(f"SELECT data::text AS d FROM {storage.store.schema}.events")
    assert stored and not any("Nguyễn" in r["d"] or "example.vn" in r["d"] for r in stored)
    async with storage.read_models.connection("directory") as conn:
        tokens = await conn.fetch("SELECT name_token, email_token FROM users")
    assert all(t["name_token"].startswith("pii:v1:user:") and "example" not in t["email_token"] for t in tokens)
