"""Three Kafka brokers (replication factor 3, min.insync.replicas 2) on the test's own stack: one is killed with
SIGKILL under sustained traffic and restarted later. Writes go on with two in-sync replicas; no process dies;
then the checker: nothing acknowledged is lost, the topic holds the store in order, read models equal a rebuild."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.support.checker import Checker
from tests.support.faults import Load, Processes, kafka_pid, own_stack, traffic
from tests.support.services import drop_everything, isolated_settings

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.cluster, pytest.mark.e2e, pytest.mark.slow]
SERVICES = ("deals",)


async def test_a_broker_killed_and_restarted_under_traffic(tmp_path: Path) -> None:
    with own_stack(tmp_path / "cluster", nodes=3) as stack:
        endpoints = stack.up()
        assert endpoints.replication_factor == 3
        settings = isolated_settings(endpoints)
        procs = Processes(settings, SERVICES, tmp_path)
        try:
            procs.start_all()
            await procs.wait_started(timeout=180)
            load = Load(procs.urls, rate=8.0)
            async with traffic(load):
                await asyncio.sleep(4)
                os.kill(kafka_pid(stack, 2), signal.SIGKILL)
                await asyncio.sleep(10)  # two brokers carry the traffic
                await asyncio.to_thread(stack.start_node, 2)
                await asyncio.sleep(4)
            assert not procs.dead(), f"no process dies: {procs.dead()}"
            assert load.given_up == 0 and load.total_acked() > 80, load.summary()
            async with Checker(settings, SERVICES) as checker:
                report = await checker.check(load.acked, timeout=150)
            print(load.summary(), report)
        finally:
            procs.stop_all()
            await drop_everything(settings)
