"""Issue 23 item 7, the projector's half: killed between its transaction and its offset commit, each effect once.

The runner commits a batch's PostgreSQL transaction (the read model and each stream's applied version) and only
then its Kafka offsets. The deals projector runs as a process against a real broker through a TCP proxy
(testkit/kafkaproxy.py) that, from a point on, holds every OffsetCommit request of its consumer groups: neither
forwarded nor answered (the deals service's commands and relay run in this test process). Activities are logged on deals; the board and the analytics apply them (their
transactions commit: their applied versions move) while the broker still has the offsets from before. The
projector is then killed (SIGKILL), the proxy lets go, and a new projector process reads those records again from
the committed offsets. It counts each as a duplicate (``pipelines_projection_duplicates_total`` on its /metrics:
exactly what the killed one had applied past its commit) and applies it no second time: the board's activity
counters equal the activities stored, and every read model equals its recomputation from the store.

(The relay's half, killed between Kafka's acknowledgement and its checkpoint: tests/faults/test_relay_replay.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path

import httpx
import pytest

from services.deals import domain
from services.deals import main as deals_main
from shared.messaging.kafka import admin_client
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints
from shared.store.commands import Context
from testkit.checker import Checker
from testkit.faults import Processes, skipped_duplicates
from testkit.kafkaproxy import OFFSET_COMMIT, Fault, KafkaProxy
from testkit.services import drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]

READ_MODELS = ("board", "analytics")  # the deals projector's read models of the deals topic
DEALS, BEFORE, HELD = 6, 12, 30  # deals opened, activities logged before the commits are held, and after


async def committed(settings: Settings, group: str) -> int:
    """The offsets the broker holds for ``group``, summed over the partitions."""
    async with admin_client(settings.kafka_bootstrap_servers) as admin:
        offsets = await admin.list_consumer_group_offsets(group)
    return sum(o.offset for o in offsets.values())


async def duplicates(http: httpx.AsyncClient, port: int) -> dict[str, float]:
    """``pipelines_projection_duplicates_total`` of the read models, from the projector's /metrics."""
    skipped = skipped_duplicates((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
    return {p: n for p, n in skipped.items() if p in READ_MODELS}


async def test_a_projector_killed_before_its_offset_commit_applies_each_event_once(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    began = time.monotonic()
    settings = isolated_settings(endpoints)
    proxy = KafkaProxy()
    via_proxy = settings.model_copy(
        update={"kafka_bootstrap_servers": await proxy.start(endpoints.kafka_bootstrap_servers)}
    )
    procs = Processes(via_proxy, ("deals",), tmp_path)
    groups = {p: f"{settings.topic_prefix}.deals.{p}.g1" for p in READ_MODELS}
    service = await deals_main.build(settings)
    stop = asyncio.Event()
    relaying: asyncio.Task[None] | None = None
    try:
        await service.ensure_topics()
        relay = service.relay()
        relay.poll_interval = 0.1
        await relay.setup()
        relaying = asyncio.create_task(relay.run(stop))
        procs.start("deals", "projector")
        deals = [uuid.uuid4() for _ in range(DEALS)]
        sim = Context(actor="u-lan")
        for i, deal in enumerate(deals):
            await service.deals.handle(deal, domain.OpenDeal(title=f"Đơn {i}", customer="Khách", owner_id="u-lan"), sim)

        async def log_activities(n: int) -> None:
            for i in range(n):
                activity = domain.LogActivity(activity_id=uuid.uuid4(), activity_type="call", channel="phone")
                await service.deals.handle(deals[i % DEALS], activity, sim)

        await log_activities(BEFORE)
        async with Checker(settings, ["deals"]) as checker, httpx.AsyncClient(timeout=10) as http:
            schema = settings.schema_name("deals")

            async def stored() -> int:
                return int(await checker.pools["deals"].fetchval(f"SELECT count(*) FROM {schema}.events"))

            async def applied_all() -> bool:
                applied, n = await checker.applied("deals"), await stored()
                return all(applied.get(p) == n for p in READ_MODELS)

            async def all_committed() -> bool:
                n = await stored()
                return all([await committed(settings, g) == n for g in groups.values()])

            async def projector_started(n: int) -> bool:
                if procs.dead():
                    raise AssertionError(f"the projector died: {procs.log('deals', 'projector').read_text()[-2000:]}")
                return procs.started_count("deals", "projector") >= n

            # 1. deals and activities applied, their offsets committed
            await wait_until(lambda: projector_started(1), timeout=60, interval=0.2)
            await wait_until(applied_all, timeout=60, interval=0.2)
            await wait_until(all_committed, timeout=30, interval=0.2)
            before = await checker.applied("deals")
            offsets_before = {p: await committed(settings, g) for p, g in groups.items()}
            phase1 = time.monotonic()

            # 2. from now on the projector's offset commits are held; more activities are applied
            proxy.faults = [Fault(OFFSET_COMMIT, 1, "hold", client_id=f"{settings.topic_prefix}.deals.")]
            await log_activities(HELD)

            async def applied_and_held() -> bool:
                applied, held = await checker.applied("deals"), {h.client_id for h in proxy.hits}
                return all(applied[p] > before[p] and g in held for p, g in groups.items())

            await wait_until(applied_and_held, timeout=60, interval=0.1)
            at_kill = await checker.applied("deals")
            procs.kill("deals", "projector")  # its transactions committed, its offsets not
            assert {p: await committed(settings, g) for p, g in groups.items()} == offsets_before
            proxy.release()

            # 3. a new projector reads again what the killed one applied: each record skipped, counted as seen again
            procs.start("deals", "projector")
            want = {p: float(at_kill[p] - before[p]) for p in READ_MODELS}
            port = procs.ops_ports["deals", "projector"]

            async def replayed() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    seen = await duplicates(http, port)
                    return all(seen.get(p, 0) >= n for p, n in want.items())
                return False

            await wait_until(replayed, timeout=60, interval=0.3)
            await wait_until(applied_all, timeout=60, interval=0.2)
            assert await duplicates(http, port) == want, "exactly the records applied past the commit were read again"

            activities = await checker.pools["deals"].fetchval(
                f"SELECT count(*) FROM {schema}.events WHERE event_type = 'pipelines.deals.ActivityLogged'"
            )
            board = await checker.active_schema("deals", "board")
            counted = await checker.pools["deals"].fetchval(f"SELECT sum(activities) FROM {board}.board")
            assert (activities, counted) == (BEFORE + HELD, BEFORE + HELD), "each activity counted once on the board"
            report = await checker.check({}, timeout=60)
            assert report[f"{settings.events_topic('deals')}.duplicates"] == 0, "the relay published each event once"
            print(
                f"\nread again and skipped {want} (applied {before} before the commits were held, {at_kill} at the "
                f"kill), {report}; phase 1 {phase1 - began:.1f} s, the rest {time.monotonic() - phase1:.1f} s"
            )
    finally:
        proxy.release()
        procs.kill_all()  # its data goes with the test: no clean shutdown (a member leaving its group) to wait for
        stop.set()
        if relaying is not None:
            await asyncio.gather(relaying, return_exceptions=True)
        await service.close()
        await proxy.close()
        await drop_everything(settings)
