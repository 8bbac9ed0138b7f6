"""Signing out of the web board revokes the token in every API within 5 s, through the one revocation list
(``shared.edge.revocation``: the topic ``<prefix>.auth.revocations`` on the real Kafka, read by each API process).

Every service's API is built as its processes build it (``core.app()``, each with its own revocation list reading
the topic, as separate processes would), the board as ``python -m services.web`` builds it (its live feed and
revocation list on Kafka). A token used everywhere is signed out through the board's logout form; from then on
every API and the board refuse it, each within 5 s, while a new token works; a process started later learns the
revocation from the topic before it says it is ready.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from services.agenda.main import build as build_agenda
from services.deals.main import build as build_deals
from services.directory.main import build as build_directory
from services.leads.main import build as build_leads
from services.production.main import build as build_production
from services.web.app import COOKIE
from services.web.app import create_app as create_board
from shared.edge.revocation import RevocationList, revocations_topic
from shared.edge.service import ServiceCore
from shared.messaging.kafka import topic_configs
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints
from testkit.services import bearer, drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
PROBES = {
    "leads": "/leads/{id}/history",
    "deals": "/deals/{id}/history",
    "production": "/orders/{id}/history",
    "directory": "/users/u-{id}/history",
    "agenda": "/activities/{id}/history",
}


@pytest.fixture
async def cores(endpoints: Endpoints) -> AsyncIterator[tuple[Settings, list[ServiceCore]]]:
    settings = isolated_settings(endpoints)
    built: list[ServiceCore] = []
    try:
        built = list(
            await asyncio.gather(
                build_leads(settings),
                build_deals(settings),
                build_production(settings),
                build_directory(settings),
                build_agenda(settings),
            )
        )
        await built[0].ensure_topics()  # every topic, the revocations' too
        yield settings, built
    finally:
        for core in built:
            await core.close()
        await drop_everything(settings)


def ready(*lists: RevocationList) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return all(r.readiness() == "ok" for r in lists)

    return check


async def status(http: httpx.AsyncClient, service: str, token: str) -> int:
    r = await http.get(PROBES[service].format(id=uuid.uuid4()), headers={"Authorization": f"Bearer {token}"})
    return r.status_code


async def test_a_token_signed_out_on_the_board_is_refused_by_every_api_within_5_s(
    cores: tuple[Settings, list[ServiceCore]],
) -> None:
    settings, built = cores
    stop = asyncio.Event()
    readers = [asyncio.create_task(core.revocations.run(stop)) for core in built]
    apis = {
        core.name: httpx.AsyncClient(transport=httpx.ASGITransport(app=core.app()), base_url=f"http://{core.name}")
        for core in built
    }
    board_app = create_board(settings, stop=asyncio.Event())
    board = httpx.AsyncClient(transport=httpx.ASGITransport(app=board_app), base_url="http://board")
    token = bearer("u-admin", "admin", team=None)["Authorization"].removeprefix("Bearer ")
    try:
        async with board_app.router.lifespan_context(board_app), board:
            await wait_until(ready(*(c.revocations for c in built)), timeout=30, interval=0.1)
            for service, http in apis.items():  # the token works everywhere: what does not exist, 404
                assert await status(http, service, token) == 404, service
            # signed in and out through the board's own forms
            form = re.search(r'name="csrf" value="([^"]+)"', (await board.get("/login")).text)
            assert form
            r = await board.post("/login", data={"token": token, "csrf": form.group(1)})
            assert r.status_code == 303 and board.cookies.get(COOKIE) == token
            r = await board.post("/logout", data={"csrf": board.cookies["pipelines_csrf"]})
            assert r.status_code == 303, r.text
            signed_out = time.monotonic()
            refused: dict[str, float] = {}

            async def everywhere() -> bool:
                for service, http in apis.items():
                    if service not in refused and await status(http, service, token) == 401:
                        refused[service] = time.monotonic() - signed_out
                board.cookies.set(COOKIE, token)
                if "board" not in refused and (await board.get("/sales")).status_code == 303:  # to the login page
                    refused["board"] = time.monotonic() - signed_out
                return len(refused) == len(apis) + 1

            await wait_until(everywhere, timeout=10, interval=0.05)
            assert max(refused.values()) < 5, refused
            r = await apis["deals"].get(f"/deals/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401 and "revoked" in r.json()["detail"]
            # a new sign-in's token still works everywhere
            fresh = bearer("u-admin", "admin", team=None)["Authorization"].removeprefix("Bearer ")
            for service, http in apis.items():
                assert await status(http, service, fresh) == 404, service
            # a process started after the sign-out reads it from the topic before it says it is ready
            late = RevocationList(settings)
            assert late.readiness() != "ok"
            reading = asyncio.create_task(late.run(stop))
            readers.append(reading)
            await wait_until(ready(late), timeout=30, interval=0.1)
            assert len(late) == 1
            # kept as long as a token may live (and an hour): older revocations name expired tokens
            topic = revocations_topic(settings)
            kept = await topic_configs(settings.kafka_bootstrap_servers, [topic], "retention.ms")
            assert kept[topic] == str((settings.jwt_max_lifetime_s + 3600) * 1000)
    finally:
        stop.set()
        await asyncio.gather(*readers)
        for http in apis.values():
            await http.aclose()
