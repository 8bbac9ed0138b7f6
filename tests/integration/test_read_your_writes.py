"""Read your writes on every read model the board refreshes live: a query with a command's `position` answers
once its read model has applied that event (the leads inbox, funnel and campaigns; the production board and
orders), and a position no event has is a clear 422."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.leads import main as leads_main
from services.production import main as production_main
from shared.ops.stack import Endpoints
from testkit.services import bearer, client_for, drop_everything, isolated_settings, running, start_parts

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
ADMIN = bearer("u-admin", "admin", team=None)


async def test_queries_wait_for_the_position_they_are_given(endpoints: Endpoints) -> None:
    settings = isolated_settings(endpoints)
    leads, production = await leads_main.build(settings), await production_main.build(settings)
    await leads.ensure_topics()
    stop = asyncio.Event()
    tasks = [*await start_parts(leads, stop), *await start_parts(production, stop)]
    l_http, p_http = client_for(leads.app()), client_for(production.app())
    try:
        async with running(tasks, stop):
            today = datetime.now(UTC).date()
            window = {
                "from": str(today - timedelta(days=1)),
                "to": str(today + timedelta(days=2)),
            }  # whatever the time zone
            for _ in range(3):  # each time at once after the command: no sleep, the query waits
                r = await l_http.post(
                    "/leads", headers=ADMIN, json={"source": "referral", "contact": {"phone": "0901234567"}}
                )
                assert r.status_code == 201, r.text
                lead, position = r.json()["id"], r.json()["position"]
                inbox = (await l_http.get("/leads", params={"position": position}, headers=ADMIN)).json()
                assert lead in [i["lead_id"] for i in inbox["items"]]
                funnel = (await l_http.get("/funnel", params=window | {"position": position}, headers=ADMIN)).json()
                assert sum(row["captured"] for row in funnel) >= 1
                r = await l_http.get("/campaigns", params=window | {"position": position}, headers=ADMIN)
                assert r.status_code == 200
                r = await p_http.post(
                    "/orders",
                    headers=ADMIN,
                    json={
                        "customer": "Sen Vàng",
                        "lines": [{"product": "Tủ mát", "quantity": "1"}],
                        "due_date": str(today + timedelta(days=20)),
                    },
                )
                assert r.status_code == 201, r.text
                order, position = r.json()["id"], r.json()["position"]
                board = (await p_http.get("/board", params={"position": position}, headers=ADMIN)).json()
                assert order in [o["order_id"] for s in board["stages"] for o in s["items"]]
                orders = (await p_http.get("/orders", params={"position": position}, headers=ADMIN)).json()
                assert order in [o["order_id"] for o in orders["items"]]
            for http, path in ((l_http, "/leads"), (p_http, "/board")):
                r = await http.get(path, params={"position": 10**9}, headers=ADMIN)
                assert r.status_code == 422 and "no event at position" in r.json()["detail"]
    finally:
        await leads.close()
        await production.close()
        await drop_everything(settings)
