"""The agenda's reactions across processes, on real Kafka and PostgreSQL: an activity scheduled on a deal whose
contact the deals service then erases — its notes read as null over the agenda's API and its history records
``ActivityNotesErased`` (the ``erasures`` reaction, from the deals' topic) — and its owner deactivated in the
directory — it is handed to the user the admin named (the ``handovers`` reaction, from the directory's topic) and
shows in that user's agenda (the ``activities`` read model, from the agenda's own topic)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.agenda import main as agenda_main
from services.deals import main as deals_main
from services.directory import main as directory_main
from shared.ops.stack import Endpoints
from testkit.services import bearer, drop_everything, isolated_settings, start_parts
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
ADMIN = bearer("u-admin", "admin")
LAN = bearer("u-lan", "sales", team="north")


def client(app: Any, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")


async def test_an_erased_contact_and_a_deactivated_owner_reach_the_activity(endpoints: Endpoints) -> None:
    settings = isolated_settings(endpoints)
    directory = await directory_main.build(settings)
    deals = await deals_main.build(settings)
    agenda = await agenda_main.build(settings)
    cores = [directory, deals, agenda]
    await deals.ensure_topics()
    stop = asyncio.Event()
    tasks = [
        *await start_parts(directory, stop, projections=set()),
        *await start_parts(deals, stop, projections=set()),
        *await start_parts(agenda, stop, projections={"activities", "subjects", "directory", "handovers", "erasures"}),
    ]
    people, sales, work = client(directory.app(), "directory"), client(deals.app(), "deals"), client(agenda.app(), "a")
    try:
        assert (await people.post("/teams", json={"team_id": "north", "name": "Miền Bắc"}, headers=ADMIN)).is_success
        for user_id in ("u-lan", "u-binh"):
            user = {"user_id": user_id, "name": user_id, "email": f"{user_id}@example.vn", "team_id": "north"}
            assert (await people.post("/users", json=user | {"roles": ["sales"]}, headers=ADMIN)).is_success
        deal = {
            "title": "Tủ đông",
            "customer": "Sen",
            "owner_id": "u-lan",
            "team_id": "north",
            "contact_id": "c-flow-1",
            "contact": {"name": "Phạm Thu Hà", "email": "ha@sen.vn"},
        }
        opened = await sales.post("/deals", json=deal, headers=LAN)
        assert opened.status_code == 201, opened.text
        deal_id = opened.json()["id"]
        due = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
        body = {
            "kind": "meeting", "subject_type": "deal", "subject_id": deal_id, "title": "Gặp chị Hà",
            "notes": "Chị Hà muốn giảm 5%", "due_at": due.isoformat(),
        }  # fmt: skip
        answers: list[httpx.Response] = []

        async def scheduled() -> bool:  # once the agenda's replicas have the user and the deal
            answers.append(await work.post("/activities", json=body, headers=LAN))
            return answers[-1].status_code == 201

        await wait_until(scheduled, timeout=60, interval=0.3)
        activity = answers[-1].json()["id"]
        shown = (await work.get(f"/activities/{activity}", headers=LAN)).json()
        assert shown["notes"] == "Chị Hà muốn giảm 5%"

        erased = await sales.post(f"/deals/{deal_id}/erase-contact", json={"reason": "request #25"}, headers=LAN)
        assert erased.status_code == 200, erased.text

        async def notes_erased() -> bool:
            got = (await work.get(f"/activities/{activity}", headers=ADMIN)).json()
            return bool(got["notes_erased"])

        await wait_until(notes_erased, timeout=60, interval=0.3)
        got = (await work.get(f"/activities/{activity}", headers=ADMIN)).json()
        assert (got["notes"], got["status"]) == (None, "scheduled")
        trail = (await work.get(f"/activities/{activity}/history", headers=ADMIN)).json()["items"]
        assert (trail[-1]["type"], trail[-1]["actor"]) == (
            "pipelines.agenda.ActivityNotesErased",
            "system:agenda-reactions",
        )

        gone = {"handed_to": "u-binh", "reason": "nghỉ việc"}
        assert (await people.post("/users/u-lan/deactivate", json=gone, headers=ADMIN)).status_code == 200

        async def in_binhs_agenda() -> bool:
            r = await work.get("/agenda", params={"owner_id": "u-binh"}, headers=ADMIN)
            return r.status_code == 200 and [a["activity_id"] for a in r.json()["upcoming"]] == [activity]

        await wait_until(in_binhs_agenda, timeout=60, interval=0.3)
        got = (await work.get(f"/activities/{activity}", headers=ADMIN)).json()
        assert (got["owner_id"], got["team_id"], got["version"]) == ("u-binh", "north", 3)
        lans = (await work.get("/agenda", params={"owner_id": "u-lan"}, headers=ADMIN)).json()
        assert lans["upcoming"] == [] and lans["overdue"] == [] and lans["today"] == []
    finally:
        for c in (people, sales, work):
            await c.aclose()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for core in cores:
            await core.close()
        await drop_everything(settings)
