"""Three Kafka brokers (replication factor 3, min.insync.replicas 2), each also a KRaft controller, on the test's own
stack, the three services running under sustained traffic. The broker holding the controller role (the metadata
quorum's leader, a broker too, leading some of the partitions) is killed with SIGKILL: the two left elect another
controller and take over its partitions' leadership; it is restarted ~10 s later. Writes go on with two in-sync
replicas; no process dies; then the checker: nothing acknowledged is lost, the topics hold the store in order and
none twice, the reactions caught up, and every read model equals its recomputation from the stores."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from shared.messaging.kafka import admin_client
from shared.ops.settings import PIPELINES, Settings  # the lead flow's services: the directory is not in it
from testkit.checker import Checker
from testkit.faults import Load, Processes, active_controller, kafka_pid, own_stack, traffic
from testkit.services import drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.cluster, pytest.mark.e2e, pytest.mark.slow]
RATE = 20.0  # commands a second, across the three APIs
DOWN_S = 8.0  # how long a killed broker stays down


async def out_of_sync(settings: Settings) -> list[tuple[str, int, list[int]]]:
    """The partitions of the services' events topics without their three replicas in sync: (topic, partition, isr)."""
    topics = [settings.events_topic(s) for s in PIPELINES]
    async with admin_client(settings.kafka_bootstrap_servers) as admin:
        described = await admin.describe_topics(topics)
    return [(t["topic"], p["partition"], p["isr"]) for t in described for p in t["partitions"] if len(p["isr"]) != 3]


async def fully_replicated(settings: Settings, timeout: float = 60) -> None:
    async def in_sync() -> bool:
        return not await out_of_sync(settings)

    try:
        await wait_until(in_sync, timeout=timeout, interval=0.5)
    except TimeoutError:
        raise AssertionError(f"not in sync after {timeout} s: {await out_of_sync(settings)}") from None


async def test_the_controller_broker_killed_and_restarted_under_traffic(tmp_path: Path) -> None:
    began = time.monotonic()
    with own_stack(tmp_path / "cluster", nodes=3) as stack:
        endpoints = stack.up()
        assert endpoints.replication_factor == 3
        settings = isolated_settings(endpoints)
        procs = Processes(settings, tuple(PIPELINES), tmp_path)
        try:
            procs.start_all()
            await procs.wait_started(timeout=180)
            started = time.monotonic() - began
            load = Load(procs.urls, rate=RATE)
            async with traffic(load):
                controller, _ = await asyncio.gather(asyncio.to_thread(active_controller, stack), asyncio.sleep(3))
                await fully_replicated(settings)  # the services' topics have their three replicas in sync
                os.kill(kafka_pid(stack, controller), signal.SIGKILL)
                killed = time.monotonic() - began
                # the two left elect a new leader of the metadata quorum; the traffic goes on meanwhile
                elected, _ = await asyncio.gather(asyncio.to_thread(active_controller, stack), asyncio.sleep(DOWN_S))
                assert elected != controller, f"node {controller} was killed, yet it is the active controller"
                await asyncio.to_thread(stack.start_node, controller)
                await asyncio.sleep(3)
            assert not procs.dead(), f"no process dies: {procs.dead()}"
            assert load.given_up == 0 and load.total_acked() > 10 * RATE, load.summary()
            async with Checker(settings, PIPELINES) as checker:
                report = await checker.check(load.acked, timeout=150)
            print(
                f"\n[controller killed] {time.monotonic() - began:.1f} s (processes started at {started:.1f} s, node "
                f"{controller} killed at {killed:.1f} s, node {elected} elected); {load.summary()}; {report}"
            )
        finally:
            procs.stop_all()
            await drop_everything(settings)
