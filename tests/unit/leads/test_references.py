"""The users and teams a leads command names (assign, convert) are checked against the directory's replica
(decision 0017): 422 naming the field for an unknown or deactivated user, an unknown team, an owner outside it."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from services.directory.events import UserDeactivated
from services.leads.api import LeadsAPI, create_app
from services.leads.handlers import InMemoryDedupe, Leads
from services.leads.sources import HttpFacebookGraph
from shared.edge.auth import TokenVerifier, issue_token
from shared.store.memory import InMemoryEventStore
from testkit.apps import SETTINGS, replica
from testkit.services import TEST_KEYS

NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
MKT = {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id="u-mkt", roles=("marketing",))}
LEAD = {"source": "manual", "contact": {"name": "Trần Thị Bích", "phone": "0912 345 678", "company": "Cà phê Phố"}}


def test_assign_and_convert_name_known_active_users_in_known_teams() -> None:
    store = InMemoryEventStore()
    leads = Leads(store, store.personal_data, lambda: NOW, InMemoryDedupe(), b"d" * 32)
    people = replica()

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    api = LeadsAPI(leads, None, SETTINGS, HttpFacebookGraph("t"), ready, references=people)
    with TestClient(create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))) as c:
        lead = c.post("/leads", json=LEAD, headers=MKT).json()["id"]
        cases = [
            ("assign", {"owner_id": "u-ghost", "team_id": "north"}, "unknown_user", "owner_id"),
            ("assign", {"owner_id": "u-lan", "team_id": "west"}, "unknown_team", "team_id"),
            ("assign", {"owner_id": "u-dung", "team_id": "north"}, "not_in_team", "owner_id"),
            ("convert", {"customer": "Phố", "title": "Tủ", "owner_id": "u-ghost"}, "unknown_user", "owner_id"),
            ("convert", {"customer": "Phố", "title": "Tủ", "team_id": "west"}, "unknown_team", "team_id"),
        ]
        for command, body, rule, field in cases:
            r = c.post(f"/leads/{lead}/{command}", json=body, headers=MKT)
            assert (r.status_code, r.json()["rule"], r.json()["errors"][0]["loc"]) == (422, rule, ["body", field])
        assert c.post(f"/leads/{lead}/assign", json={"owner_id": "u-lan", "team_id": "north"}, headers=MKT).is_success
        people.apply(
            UserDeactivated(user_id="u-binh", team_id="north", handed_to="u-lan", reason="x", deactivated_at=NOW)
        )
        r = c.post(f"/leads/{lead}/assign", json={"owner_id": "u-binh"}, headers=MKT)
        assert (r.status_code, r.json()["rule"]) == (422, "user_inactive")
        assert c.get(f"/leads/{lead}", headers=MKT).json()["owner_id"] == "u-lan"
