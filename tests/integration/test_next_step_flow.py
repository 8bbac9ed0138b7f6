"""The next step across processes (issue 25 item 2), on real Kafka and PostgreSQL: a deal opened in deals, an
activity scheduled on it through the agenda's API — and the deals' board shows it as the deal's next step, then,
once it is completed, flags the deal "no next step", through each service's relay, topic and projector (the
agenda's replicas of the directory and of the deals included)."""

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


async def test_an_activity_scheduled_on_a_deal_is_its_next_step_on_the_board(endpoints: Endpoints) -> None:
    settings = isolated_settings(endpoints)
    directory = await directory_main.build(settings)
    deals = await deals_main.build(settings)
    agenda = await agenda_main.build(settings)
    cores = [directory, deals, agenda]
    await deals.ensure_topics()
    stop = asyncio.Event()
    tasks = [
        *await start_parts(directory, stop, projections=set()),  # its relay: the users reach the agenda's replica
        *await start_parts(deals, stop, projections={"board", "analytics"}),
        *await start_parts(agenda, stop, projections={"subjects", "directory"}),
    ]
    people, sales, work = client(directory.app(), "directory"), client(deals.app(), "deals"), client(agenda.app(), "a")
    try:
        assert (await people.post("/teams", json={"team_id": "north", "name": "Miền Bắc"}, headers=ADMIN)).is_success
        user = {"user_id": "u-lan", "name": "Lan", "email": "lan@example.vn", "team_id": "north", "roles": ["sales"]}
        assert (await people.post("/users", json=user, headers=ADMIN)).is_success
        opened = await sales.post(
            "/deals", json={"title": "Tủ đông", "customer": "Sen", "owner_id": "u-lan", "team_id": "north"}, headers=LAN
        )
        assert opened.status_code == 201, opened.text
        deal = opened.json()["id"]
        due = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
        body = {
            "kind": "phone", "subject_type": "deal", "subject_id": deal, "title": "Gọi chốt giá",
            "due_at": due.isoformat(), "duration_minutes": 15,
        }  # fmt: skip
        answers: list[httpx.Response] = []

        async def scheduled() -> bool:  # the agenda knows the user and the deal once its replicas have them
            r = await work.post("/activities", json=body, headers=LAN)
            answers.append(r)
            return r.status_code == 201

        await wait_until(scheduled, timeout=60, interval=0.3)
        activity = answers[-1].json()["id"]
        assert {r.status_code for r in answers[:-1]} <= {404, 422, 503}, [r.text for r in answers[:-1]]

        async def card(**expected: Any) -> bool:
            r = await sales.get("/deals", params={"status": "open"}, headers=LAN)
            rows = [d for d in r.json()["items"] if d["deal_id"] == deal]
            return bool(rows) and all(rows[0][k] == v for k, v in expected.items())

        await wait_until(lambda: card(no_next_step=False), timeout=60, interval=0.3)
        (row,) = [d for s in (await sales.get("/board", headers=LAN)).json()["stages"] for d in s["deals"]]
        assert row["next_step"] == {
            "activity_id": activity,
            "kind": "phone",
            "title": "Gọi chốt giá",
            "due_at": due.isoformat(),
        }
        assert (row["no_next_step"], row["overdue"]) == (False, False)

        done = await work.post(f"/activities/{activity}/complete", json={"outcome": "đồng ý"}, headers=LAN)
        assert done.status_code == 200, done.text
        await wait_until(lambda: card(no_next_step=True, next_step=None), timeout=60, interval=0.3)
        numbers = (await sales.get("/analytics/next-steps", headers=LAN)).json()
        assert (numbers["open_deals"], numbers["without_next_step"], numbers["with_overdue"]) == (1, 1, 0)
    finally:
        for c in (people, sales, work):
            await c.aclose()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for core in cores:
            await core.close()
        await drop_everything(settings)
