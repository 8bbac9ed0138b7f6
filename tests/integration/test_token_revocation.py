"""Signing out of the web board revokes the session's tokens in every API within 5 s, through the one revocation list
(``shared.edge.revocation``: the topic ``<prefix>.auth.revocations`` on the real Kafka, read by each API process).

Every service's API is built as its processes build it (``core.app()``, each with its own revocation list reading
the topic, as separate processes would), the sign-in service likewise (decision 0022), and the board as ``python -m
services.web`` builds it (its live feed and revocation list on Kafka), reaching the others over their ASGI apps. A
user signs in on the board with a password and out again through its forms; from then on every API and the board
refuse the session's token, each within 5 s, while another token works; a process started later learns the
revocation from the topic before it says it is ready.
"""

from __future__ import annotations

import asyncio
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
from services.signin.main import SigninService
from services.signin.main import build as build_signin
from services.web.app import COOKIE
from services.web.app import create_app as create_board
from shared.edge.revocation import RevocationList, revocations_topic
from shared.edge.service import ServiceCore
from shared.messaging.kafka import topic_configs
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints
from testkit.services import TEST_KEYS, bearer, drop_everything, isolated_settings, start_parts
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
PROBES = {
    "leads": "/leads/{id}/history",
    "deals": "/deals/{id}/history",
    "production": "/orders/{id}/history",
    "directory": "/users/u-{id}/history",
    "agenda": "/activities/{id}/history",
}
ADMIN = bearer("u-admin", "admin", team=None)
EMAIL, PASSWORD = "kiem.toan@pipelines.vn", "một mật khẩu dài"


class ByPort(httpx.AsyncBaseTransport):
    """The board's calls to each service, by the port of its URL, to that service's app in this process."""

    def __init__(self, apps: dict[int, httpx.ASGITransport]) -> None:
        self.apps = apps

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.apps[request.url.port or 80].handle_async_request(request)


@pytest.fixture
async def cores(endpoints: Endpoints) -> AsyncIterator[tuple[Settings, list[ServiceCore], SigninService]]:
    settings = isolated_settings(endpoints)
    built: list[ServiceCore] = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    signin: SigninService | None = None
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
        directory = built[3]
        await directory.ensure_topics()
        tasks += await start_parts(directory, stop, projections={"directory", "user_emails"})
        signin = await build_signin(
            settings, keys=TEST_KEYS, directory_transport=httpx.ASGITransport(app=directory.app())
        )
        yield settings, built, signin
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        if signin is not None:
            await signin.close()
        for core in built:
            await core.close()
        await drop_everything(settings)


async def a_user_with_a_password(directory: httpx.AsyncClient, signin: httpx.AsyncClient) -> None:
    """An auditor in the directory, who set a password from an admin's reset link."""
    r = await directory.post("/teams", json={"team_id": "hq", "name": "Văn phòng"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    user = {"user_id": "u-kt", "name": "Kiểm Toán", "email": EMAIL, "team_id": "hq", "roles": ["auditor"]}
    r = await directory.post("/users", json=user, headers=ADMIN)
    assert r.status_code == 201, r.text

    async def indexed() -> bool:  # the directory's email index has the user (its read model)
        r = await directory.post("/users/lookup", json={"email": EMAIL}, headers=ADMIN)
        return bool(r.json()["items"])

    await wait_until(indexed, timeout=30)
    link = await signin.post("/users/u-kt/password-reset", headers=ADMIN)
    assert link.status_code == 201, link.text
    r = await signin.post("/password-resets", json={"token": link.json()["link_token"], "password": PASSWORD})
    assert r.status_code == 200, r.text


def ready(*lists: RevocationList) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return all(r.readiness() == "ok" for r in lists)

    return check


async def status(http: httpx.AsyncClient, service: str, token: str) -> int:
    r = await http.get(PROBES[service].format(id=uuid.uuid4()), headers={"Authorization": f"Bearer {token}"})
    return r.status_code


async def test_a_session_signed_out_on_the_board_is_refused_by_every_api_within_5_s(
    cores: tuple[Settings, list[ServiceCore], SigninService],
) -> None:
    settings, built, signin = cores
    stop = asyncio.Event()
    readers = [asyncio.create_task(core.revocations.run(stop)) for core in built]
    readers.append(asyncio.create_task(signin.revocations.run(stop)))
    apps = {core.name: httpx.ASGITransport(app=core.app()) for core in built}
    apis = {name: httpx.AsyncClient(transport=t, base_url=f"http://{name}") for name, t in apps.items()}
    signin_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=signin.app()), base_url="http://signin")
    ports = {settings.port(name): t for name, t in apps.items()} | {
        settings.signin_port: httpx.ASGITransport(app=signin.app())
    }
    board_app = create_board(settings, transport=ByPort(ports), stop=asyncio.Event())
    board = httpx.AsyncClient(transport=httpx.ASGITransport(app=board_app), base_url="http://board")
    try:
        async with board_app.router.lifespan_context(board_app), board, signin_http:
            await a_user_with_a_password(apis["directory"], signin_http)
            await wait_until(ready(*(c.revocations for c in built)), timeout=30, interval=0.1)
            # signed in through the board's own form; the token the board holds for the session
            await board.get("/login")
            login = {"email": EMAIL, "password": PASSWORD, "csrf": board.cookies["pipelines_csrf"]}
            r = await board.post("/login", data=login)
            assert r.status_code == 303, r.text
            session = board.cookies[COOKIE]  # the session's secret: all the browser holds
            held = (await signin_http.post("/sessions/token", json={"session": session})).json()
            token = held["token"]
            for service, http in apis.items():  # the token works everywhere: what does not exist, 404
                assert await status(http, service, token) == 404, service
            assert (await board.get("/panel/audit/timeline")).status_code == 200  # signed in (no deal chosen)
            r = await board.post("/logout", data={"csrf": held["csrf"]})  # the board's own sign-out form
            assert r.status_code == 303, r.text
            signed_out = time.monotonic()
            refused: dict[str, float] = {}

            async def everywhere() -> bool:
                for service, http in apis.items():
                    if service not in refused and await status(http, service, token) == 401:
                        refused[service] = time.monotonic() - signed_out
                board.cookies.set(COOKIE, session)  # the old cookie, kept by whoever copied it
                if "board" not in refused and (await board.get("/sales")).status_code == 303:  # to the login page
                    refused["board"] = time.monotonic() - signed_out
                return len(refused) == len(apis) + 1

            await wait_until(everywhere, timeout=10, interval=0.05)
            assert max(refused.values()) < 5, refused
            r = await apis["deals"].get(f"/deals/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401 and "session" in r.json()["detail"]
            # another token of the same user still works everywhere
            fresh = bearer("u-kt", "auditor", team="hq")["Authorization"].removeprefix("Bearer ")
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
