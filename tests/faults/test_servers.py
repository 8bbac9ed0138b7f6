"""The servers fail under traffic, on the test's own single-node stack (never the shared one):

- PostgreSQL stopped abruptly (``pg_ctl stop -m immediate``) and restarted: while it is down the APIs answer 503
  with Retry-After; every process reconnects by itself (none dies, none is restarted); nothing acknowledged is lost.
- The Kafka broker paused (SIGSTOP) for 10 seconds, then resumed: the relay backs off and resumes; no process dies.

Then the checker: the store holds every acknowledged event, the topics every stored one in order, and every
read model equals a rebuild."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.stack import Endpoints, LocalStack
from tests.support.checker import Checker
from tests.support.faults import ADMIN, Load, Processes, kafka_pid, own_stack, pg_ctl, traffic
from tests.support.services import drop_everything, isolated_settings

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]
SERVICES = ("leads", "deals")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Endpoints]]:
    with own_stack(tmp_path_factory.mktemp("faults-stack")) as s:
        yield s, s.up()


async def test_postgresql_stopped_abruptly_and_restarted(stack: tuple[LocalStack, Endpoints], tmp_path: Path) -> None:
    local, endpoints = stack
    settings = isolated_settings(endpoints)
    procs = Processes(settings, SERVICES, tmp_path)
    down_answers: list[tuple[str, int, str | None]] = []
    try:
        procs.start_all()
        await procs.wait_started()
        load = Load(procs.urls, rate=10.0)
        async with traffic(load), httpx.AsyncClient(timeout=10) as http:
            await asyncio.sleep(4)
            pg_ctl(local, "stop", "-m", "immediate", "-w")
            try:
                down_until = time.monotonic() + 8
                while time.monotonic() < down_until:
                    for service, url in procs.urls.items():
                        r = await http.post(
                            f"{url}/leads" if service == "leads" else f"{url}/deals",
                            json={"source": "manual"}
                            if service == "leads"
                            else {"title": "Đơn", "customer": "Khách", "owner_id": "u-lan"},
                            headers=ADMIN,
                        )
                        down_answers.append((service, r.status_code, r.headers.get("retry-after")))
                    await asyncio.sleep(1.0)
            finally:
                local._run("pg-up")
            acked_at_restart = load.total_acked()
            await asyncio.sleep(8)  # traffic goes on after the restart
        statuses = {(s, c, ra) for s, c, ra in down_answers}
        assert {c for _, c, _ in statuses} == {503}, f"while PostgreSQL is down: {sorted(statuses)}"
        assert all(ra for _, _, ra in statuses), f"every 503 says when to retry: {sorted(statuses)}"
        assert {s for s, _, _ in statuses} == set(SERVICES)
        assert not procs.dead(), f"no process dies: {procs.dead()}"
        assert all(n == 1 for n in procs.started.values()), "none was restarted"
        assert not [k for k in load.statuses if k.endswith(" 500")], load.summary()
        assert load.given_up == 0 and load.total_acked() > acked_at_restart > 30, load.summary()
        async with Checker(settings, SERVICES) as checker:
            report = await checker.check(load.acked)  # events after the restart: the relays and projectors reconnected
        print(load.summary(), report)
    finally:
        procs.stop_all()
        await drop_everything(settings)


async def test_broker_paused_for_ten_seconds(stack: tuple[LocalStack, Endpoints], tmp_path: Path) -> None:
    local, endpoints = stack
    settings = isolated_settings(endpoints)
    procs = Processes(settings, SERVICES, tmp_path)
    try:
        procs.start_all()
        await procs.wait_started()
        load = Load(procs.urls, rate=10.0)
        async with traffic(load):
            await asyncio.sleep(3)
            broker = kafka_pid(local, 1)
            os.kill(broker, signal.SIGSTOP)
            acked_at_pause = load.total_acked()
            try:
                await asyncio.sleep(10)
            finally:
                os.kill(broker, signal.SIGCONT)
            acked_while_paused = load.total_acked()
            await asyncio.sleep(6)
        assert not procs.dead(), f"no process dies: {procs.dead()}"
        assert all(n == 1 for n in procs.started.values()), "none was restarted"
        # the APIs need only PostgreSQL: they acknowledge on while the broker is paused
        assert acked_while_paused > acked_at_pause + 50, load.summary()
        assert load.given_up == 0 and load.total_acked() > acked_while_paused, load.summary()
        async with Checker(settings, SERVICES) as checker:
            report = await checker.check(load.acked)  # waits for the relays to publish what was held back
        relay_logs = "".join(procs.log(s, "relay").read_text() for s in SERVICES)
        print(load.summary(), report, "relay errors:", relay_logs.count("relay.error"))
    finally:
        procs.stop_all()
        await drop_everything(settings)
