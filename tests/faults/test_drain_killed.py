"""kill -9 of every relay and projector while they drain a backlog, the three services under 80 commands/s.

1. A backlog: the test locks each relay's checkpoint table and each read model's progress table against writes
   (``WritesHeld``: no transaction id, so no event is held back from the relays): a relay publishes the batch it has
   and waits to record it, a projector waits at the start of its next batch. For 10 s the APIs take the load and
   the stores fill up behind the relays.
2. The drain: the relays' waiting sessions are ended; each relay reconnects, resumes from its checkpoint, publishes
   its backlog (up to a batch), has it acknowledged by Kafka and waits again to record it. The progress tables are
   let go: the projectors apply their lag on the topics.
3. The kill: once every relay waits with its backlog published and every projector has applied part of its lag,
   every relay and projector is killed (SIGKILL), and the relays' waiting sessions ended before their locks go (no
   checkpoint of a killed relay is written: it died after publishing and before recording). They are started
   again: each relay publishes again what it had published without recording it (delivery at least once), each
   projector reads again what it had applied without committing its offsets.

Then the checker: nothing acknowledged is lost, the topics hold the store (each stream's duplicates are resends of
a suffix of it), the reactions made one order per won deal, and every read model equals its recomputation from the
stores. The load (80 commands/s) runs from the start until the killed processes have been started again. (Stopping
the projectors with SIGSTOP instead would stop every relay of the cluster: a projector stopped inside a batch holds
its transaction open, and a relay publishes only what every older transaction has left behind.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from shared.ops.settings import PIPELINES  # the lead flow's services: the directory is not in it
from shared.ops.stack import Endpoints
from testkit.checker import Checker
from testkit.faults import Load, Processes, WritesHeld, traffic
from testkit.services import drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]

RATE = 80.0  # commands a second, across the three APIs
DRAINERS = ("relay", "projector")


async def test_relays_and_projectors_killed_while_draining_a_backlog(endpoints: Endpoints, tmp_path: Path) -> None:
    began = time.monotonic()
    settings = isolated_settings(endpoints)
    services = tuple(PIPELINES)
    procs = Processes(settings, services, tmp_path)
    phases: list[tuple[str, float]] = []

    def phase(name: str) -> None:
        phases.append((name, round(time.monotonic() - began, 1)))

    try:
        procs.start_all()
        await procs.wait_started()
        phase("started")
        async with Checker(settings, services) as checker:
            load = Load(procs.urls, rate=RATE)

            async def applied() -> dict[str, int]:
                return {s: sum((await checker.applied(s)).values()) for s in services}

            progress: dict[str, list[str]] = {s: [] for s in services}  # every projection's, reactions and alerts too
            for s, p in await checker.projections():
                progress[s].append(f"{await checker.active_schema(s, p)}.projection_progress")
            async with traffic(load):
                await asyncio.sleep(3)
                async with WritesHeld.relay_checkpoints(settings, services) as relays:

                    async def relays_wait(but: list[int]) -> bool:
                        return all([set(await relays.waiting(s)) - set(but) for s in services])

                    async with WritesHeld(settings, progress):
                        await wait_until(lambda: relays_wait([]), timeout=30, interval=0.1)
                        phase("backlog")
                        await asyncio.sleep(10)  # the APIs take the load, the stores fill up behind the relays
                        backlog = {s: await checker.unpublished(s) for s in services}
                        before = await applied()
                        ended = await relays.end_waiting()  # the relays reconnect and drain: publish, then wait
                        await wait_until(lambda: relays_wait(ended), timeout=60, interval=0.1)
                        phase("relays published")
                    phase("projectors drain")

                    async def projectors_applying() -> bool:
                        return all(n > before[s] for s, n in (await applied()).items())

                    await wait_until(projectors_applying, timeout=60, interval=0.1)
                    at_kill = await applied()
                    procs.kill_all(DRAINERS)
                    phase("killed")
                unpublished = {s: await checker.unpublished(s) for s in services}
                procs.start_all(DRAINERS)
                await asyncio.sleep(2)  # the load goes on while they start
            phase("load stopped")
            await procs.wait_started()
            phase("restarted")
            assert not procs.dead(), f"only the killed processes die: {procs.dead()}"
            assert load.given_up == 0, load.summary()
            assert all(n > 100 for n in backlog.values()), f"a backlog in each store: {backlog}"
            report = await checker.check(load.acked, redelivery=True)
            phase("checked")
        print(
            f"\n[drain killed] {time.monotonic() - began:.1f} s {phases}; backlog {backlog}, unpublished at the kill "
            f"{unpublished}, applied before the drain {before}, at the kill {at_kill}; load {load.summary()}, sent "
            f"per second {load.rates()}; {report}"
        )
        # each relay had its backlog acknowledged by Kafka, not recorded: it published it again
        duplicates = {k: v for k, v in report.items() if k.endswith(".events.duplicates")}
        assert len(duplicates) == len(services) and all(n >= 100 for n in duplicates.values()), report
        assert load.offered_rate() >= 0.9 * RATE, f"the load did not reach {RATE}/s: {load.summary()}"
    finally:
        print(f"\n[drain killed] phases {phases}")
        procs.stop_all()
        await drop_everything(settings)
