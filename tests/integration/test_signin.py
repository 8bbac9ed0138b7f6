"""The sign-in service against real PostgreSQL and Kafka, with the real directory (decision 0022): an admin's reset
link sets a first password once; signing in gives a token a real API takes; lockout after N failures and unlock
after the lock time; idle and absolute timeouts (an injected clock); signing out everywhere makes the API refuse the
session's token within 5 s (the revocation topic)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from services.directory.main import build as build_directory
from services.signin.main import SigninService
from services.signin.main import build as build_signin
from shared.edge.service import ServiceCore, utc_now
from shared.ops.stack import Endpoints
from testkit.services import TEST_KEYS, SimClock, bearer, client_for, drop_everything, isolated_settings, start_parts
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
ADMIN = bearer("u-admin", "admin", team=None)
EMAIL, PASSWORD = "Thu.Ha@pipelines.vn", "một mật khẩu dài"
MAX_FAILURES, LOCK_S, IDLE_S, ABSOLUTE_S = 3, 600, 900, 3600


@dataclass
class Stack:
    clock: SimClock
    directory: ServiceCore
    api: httpx.AsyncClient  # the directory's API: a real API verifying the tokens
    signin: SigninService
    http: httpx.AsyncClient  # the sign-in service's API


@pytest.fixture
async def stack(endpoints: Endpoints) -> AsyncIterator[Stack]:
    settings = isolated_settings(endpoints).model_copy(
        update={
            "signin_max_failures": MAX_FAILURES,
            "signin_lock_s": LOCK_S,
            "session_idle_s": IDLE_S,
            "session_absolute_s": ABSOLUTE_S,
        }
    )
    clock = SimClock(utc_now())
    directory = await build_directory(settings)
    await directory.ensure_topics()
    stop = asyncio.Event()
    tasks = await start_parts(directory, stop, projections={"directory", "user_emails"})
    tasks.append(asyncio.create_task(directory.revocations.run(stop)))  # the API refuses revoked sessions
    transport = httpx.ASGITransport(app=directory.app())
    signin = await build_signin(settings, clock=clock, keys=TEST_KEYS, directory_transport=transport)
    try:
        async with client_for(directory.app()) as api, client_for(signin.app()) as http:
            await created(api.post("/teams", json={"team_id": "north", "name": "North"}, headers=ADMIN))
            user = {"user_id": "u-ha", "name": "Lý Thu Hà", "email": EMAIL, "team_id": "north", "roles": ["sales"]}
            await created(api.post("/users", json=user, headers=ADMIN))
            yield Stack(clock, directory, api, signin, http)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await signin.close()
        await directory.close()
        await drop_everything(settings)


async def created(answer: Awaitable[httpx.Response]) -> None:
    r = await answer
    assert r.status_code == 201, r.text


async def first_password(s: Stack) -> None:
    link = await s.http.post("/users/u-ha/password-reset", headers=ADMIN)
    assert link.status_code == 201, link.text
    token = link.json()["link_token"]
    done = await s.http.post("/password-resets", json={"token": token, "password": PASSWORD})
    assert done.status_code == 200, done.text
    again = await s.http.post("/password-resets", json={"token": token, "password": PASSWORD + "!"})
    assert (again.status_code, again.json()["rule"]) == (400, "reset_invalid"), "a link sets one password"


async def sign_in(s: Stack, password: str = PASSWORD) -> httpx.Response:
    async def indexed() -> bool:  # the directory's email index has the user (its read model)
        r = await s.api.post("/users/lookup", json={"email": EMAIL}, headers=ADMIN)
        return [u["user_id"] for u in r.json()["items"]] == ["u-ha"]

    await wait_until(indexed, timeout=30)
    return await s.http.post("/sessions/password", json={"email": EMAIL.upper(), "password": password})


async def test_a_password_set_by_link_signs_in_and_signing_out_everywhere_reaches_the_api(stack: Stack) -> None:
    s = stack
    await first_password(s)
    one, two = await sign_in(s), await sign_in(s)
    assert one.status_code == 201, one.text
    body = one.json()
    assert body["user"] == {"user_id": "u-ha", "name": "Lý Thu Hà", "roles": ["sales"], "team": "north"}
    as_ha = {"Authorization": f"Bearer {body['token']}"}
    assert (await s.api.get("/users/u-ha", headers=as_ha)).status_code == 200, "a real API takes the token"
    fresh = await s.http.post("/sessions/token", json={"session": two.json()["session"]})
    assert fresh.status_code == 200 and fresh.json()["csrf"] == two.json()["csrf"]
    fresh_headers = {"Authorization": f"Bearer {fresh.json()['token']}"}

    ended = await s.http.post("/sessions/end-all", json={"session": body["session"]})
    assert ended.json() == {"ended": 2}

    async def refused() -> bool:
        answers = [await s.api.get("/users/u-ha", headers=h) for h in (as_ha, fresh_headers)]
        return all(a.status_code == 401 for a in answers)

    await wait_until(refused, timeout=5, interval=0.1)  # the bound the issue sets
    gone = await s.http.post("/sessions/token", json={"session": two.json()["session"]})
    assert (gone.status_code, gone.json()["rule"]) == (401, "session_ended")


async def test_lockout_after_failures_until_the_lock_time_passes(stack: Stack) -> None:
    s = stack
    await first_password(s)
    await sign_in(s, "not the password")  # one failure, and the index has the user
    # a burst of concurrent guesses (two replicas alike: the count is the row's): no more than MAX_FAILURES checked
    burst = [s.http.post("/sessions/password", json={"email": EMAIL, "password": "not it"}) for _ in range(6)]
    rules = sorted(r.json()["rule"] for r in await asyncio.gather(*burst))
    assert rules == ["bad_credentials"] * (MAX_FAILURES - 1) + ["locked"] * (7 - MAX_FAILURES)
    locked = await sign_in(s)
    assert (locked.status_code, locked.json()["rule"]) == (423, "locked")
    assert int(locked.headers["retry-after"]) == LOCK_S
    s.clock.now += timedelta(seconds=LOCK_S)
    assert (await sign_in(s)).status_code == 201


async def test_idle_and_absolute_timeouts(stack: Stack) -> None:
    s = stack
    await first_password(s)
    idle = (await sign_in(s)).json()["session"]
    s.clock.now += timedelta(seconds=IDLE_S)
    r = await s.http.post("/sessions/token", json={"session": idle})
    assert (r.status_code, r.json()["rule"]) == (401, "session_ended") and "idle" in r.json()["detail"]

    busy = (await sign_in(s)).json()["session"]
    for _ in range(ABSOLUTE_S // (IDLE_S - 60)):  # a token asked before each idle timeout: alive until the end
        s.clock.now += timedelta(seconds=IDLE_S - 60)
        assert (await s.http.post("/sessions/token", json={"session": busy})).status_code == 200
    s.clock.now += timedelta(seconds=IDLE_S - 60)
    r = await s.http.post("/sessions/token", json={"session": busy})
    assert (r.status_code, r.json()["rule"]) == (401, "session_ended") and "absolute" in r.json()["detail"]
