"""The directory, deals and leads together on real PostgreSQL and Kafka (decision 0017): a user registered a
moment ago is named by the next command (``X-Directory-After`` waits for the replica), a deactivated user is
refused as an owner, and their open deal and lead are handed to the user the admin named, by each service's
reaction."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.deals import main as deals_main
from services.directory import main as directory_main
from services.leads import main as leads_main
from shared.ops.stack import Endpoints
from testkit.services import bearer, client_for, drop_everything, isolated_settings, start_parts
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
ADMIN = bearer("u-admin", "admin", team=None)
MANAGER = bearer("u-mai", "sales_manager", team="north")
MARKETING = bearer("u-mkt", "marketing", team=None)


def after(*answers: Any) -> dict[str, str]:
    """``X-Directory-After`` naming these directory answers."""
    return {"X-Directory-After": ", ".join(f"{a.json()['stream_id']}@{a.json()['version']}" for a in answers)}


async def test_registered_users_are_named_at_once_and_deactivated_ones_hand_over(endpoints: Endpoints) -> None:
    settings = isolated_settings(endpoints).model_copy(update={"check_references": True})
    cores = [
        await directory_main.build(settings),
        await deals_main.build(settings),
        await leads_main.build(settings),
    ]
    for core in cores:
        await core.ensure_topics()
    stop = asyncio.Event()
    tasks = [
        task
        for core, names in zip(
            cores, ({"directory"}, {"directory", "handovers"}, {"directory", "handovers"}), strict=True
        )
        for task in await start_parts(core, stop, projections=names)
    ]
    directory, deals, leads = (client_for(core.app()) for core in cores)
    try:
        team = await directory.post("/teams", headers=ADMIN, json={"team_id": "north", "name": "Miền Bắc"})
        people = {}
        for user in ("u-lan", "u-binh"):
            body = {
                "user_id": user,
                "name": user,
                "email": f"{user}@example.vn",
                "team_id": "north",
                "roles": ["sales"],
            }
            people[user] = await directory.post("/users", headers=ADMIN, json=body)
            assert people[user].status_code == 201, people[user].text

        # named by the very next command: it waits for the replica to have the directory's answers
        deal = {"title": "Tủ đông", "customer": "Hòa Bình", "owner_id": "u-binh", "team_id": "north"}
        r = await deals.post("/deals", headers=MANAGER | after(team, people["u-binh"]), json=deal)
        assert r.status_code == 201, r.text
        deal_id = r.json()["id"]
        lead = {"source": "manual", "contact": {"name": "Trần Bích", "phone": "0912345678"}}
        lead_id = (await leads.post("/leads", headers=MARKETING, json=lead)).json()["id"]
        r = await leads.post(
            f"/leads/{lead_id}/assign",
            headers=MARKETING | after(team, people["u-binh"]),
            json={"owner_id": "u-binh", "team_id": "north"},
        )
        assert r.status_code == 200, r.text

        gone = await directory.post(
            "/users/u-binh/deactivate", headers=ADMIN, json={"handed_to": "u-lan", "reason": "left the company"}
        )
        assert gone.status_code == 200, gone.text
        # at once: without waiting for the replica to apply the deactivation this would still open (201)
        r = await deals.post("/deals", headers=MANAGER | after(gone), json=deal)
        assert (r.status_code, r.json()["rule"], r.json()["errors"][0]["loc"]) == (
            422,
            "user_inactive",
            ["body", "owner_id"],
        )

        async def handed_over() -> bool:
            d = (await deals.get(f"/deals/{deal_id}", headers=MANAGER)).json()
            lead_now = (await leads.get(f"/leads/{lead_id}", headers=MARKETING)).json()
            return bool(d["owner_id"] == "u-lan" and lead_now["owner_id"] == "u-lan")

        await wait_until(handed_over, timeout=30, interval=0.2)
        history = (await deals.get(f"/deals/{deal_id}/history", headers=MANAGER)).json()["items"]
        assert (history[-1]["type"], history[-1]["actor"]) == (
            "pipelines.deals.DealReassigned",
            "system:deals-reactions",
        )
        assert history[-1]["reason"] == "u-binh deactivated, handed to u-lan: left the company"
        trail = (await directory.get("/users/u-binh/history", headers=ADMIN)).json()["items"]
        assert history[-1]["causation_id"] == trail[-1]["event_id"]  # caused by the deactivation itself
        lead_trail = (await leads.get(f"/leads/{lead_id}/history", headers=MARKETING)).json()["items"]
        assert (lead_trail[-1]["actor"], lead_trail[-1]["data"]["rule"]) == ("system:leads-reactions", "handover")
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in (directory, deals, leads):
            await c.aclose()
        for core in cores:
            await core.close()
        await drop_everything(settings)
