"""A bounded chaos loop: the api, relay and projector processes of the three services are killed at random with
SIGKILL and restarted while traffic flows (clients retry with their Idempotency-Key); then nothing acknowledged
is lost and every read model equals its recomputation from the stores. Only service processes are killed: the
servers are the session's."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from shared.ops.settings import PIPELINES  # the lead flow's services: the directory is not in it
from shared.ops.stack import Endpoints
from testkit.checker import Checker
from testkit.faults import MODES, Load, Processes, traffic
from testkit.services import drop_everything, isolated_settings

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]

KILLS = 6
EVERY_S = 6.0


async def test_killing_service_processes_at_random_loses_nothing(endpoints: Endpoints, tmp_path: Path) -> None:
    settings = isolated_settings(endpoints)
    procs = Processes(settings, tuple(PIPELINES), tmp_path)
    rng = random.Random(10)
    killed: list[tuple[str, str]] = []
    try:
        procs.start_all()
        await procs.wait_started()
        load = Load(procs.urls, rate=12.0)
        async with traffic(load):
            await asyncio.sleep(3)
            victims = [(rng.choice(PIPELINES), mode) for mode in MODES * (KILLS // len(MODES))]
            rng.shuffle(victims)  # each kind of process is killed, in a random order, of random services
            for victim in victims:
                procs.kill(*victim)
                killed.append(victim)
                await asyncio.sleep(1.0)  # down for a moment: clients see refused connections and retry
                procs.start(*victim)
                await asyncio.sleep(EVERY_S - 1.0)
            await procs.wait_started()
        assert not procs.dead(), f"only the killed processes die: {procs.dead()}"
        assert load.total_acked() > 100, load.summary()
        assert load.given_up == 0, load.summary()
        async with Checker(settings, PIPELINES) as checker:
            report = await checker.check(load.acked, redelivery=True)  # a relay killed publishes again
        print("killed", killed, load.summary(), report)
    finally:
        procs.stop_all()
        await drop_everything(settings)
