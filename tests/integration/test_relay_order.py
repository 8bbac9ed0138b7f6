"""Issue 23 item 6: a failed Produce request never lets a stream's later events reach Kafka before its earlier ones.

The relay reads ahead: while one batch of events waits for Kafka's acknowledgements, the next is queued, one
record batch per partition. If Kafka could hold the later batch first, the projections (which skip what is at or
below a stream's applied version, and stop at gaps) would skip the earlier events when they came. A TCP proxy
between the relay and the real broker (testkit/kafkaproxy.py: the client is unpatched aiokafka) fails the relay's
Produce requests at several points of a backlog of about 15 batches over 6 partitions, in every way a request can
fail: the connection closed before the broker saw it, the broker's acknowledgement lost (written, then the
connection closed), a non-retriable error answered without writing, and the same error answered after the broker
wrote it (the relay is told it failed although Kafka holds it).

Then every stream is checked on the topic (testkit/checker.py): all of its versions, on one partition, each
first seen after the one before it; a version seen again only as part of a resend of exact copies of the stored
envelope; and every read model equal to its recomputation from the store, the duplicates skipped by the runner
(``pipelines_projection_duplicates_total``). The resends happen: the error answered after the write makes the
relay publish again what Kafka already holds.

What it shows: a closed connection or a lost acknowledgement is retried inside the idempotent producer with the
same sequence number (Kafka keeps one copy, in place); an error reaches the relay, which sends nothing more to that
partition (its next record batch waits for the failed one), lets the batch ahead settle, and starts over from its
checkpoint with a new producer, leaving out what Kafka acknowledged. With the wait for the partition's previous
record batch taken out of ``OutboxRelay._queue``, this test fails: streams whose later versions are on the topic
while earlier ones are not.

In tests/integration, not tests/faults: everything runs in this process against the shared servers (no process
is killed, no server stopped), and the faults are counted Produce requests, not timings, so it does not need the
serial phase."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.deals import main as deals_main
from shared.ops.metrics import PROJECTION_DUPLICATES
from shared.ops.stack import Endpoints
from shared.store.commands import Context
from testkit.checker import NOT_READ_MODELS, Checker
from testkit.kafkaproxy import PRODUCE, Fault, KafkaProxy
from testkit.sales_sim import START, commands, generate
from testkit.services import SimClock, drop_everything, isolated_settings, running

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

N_DEALS = 150  # about 900 events: 15 batches of 64, so at least 15 Produce requests, and one more after each fail
BATCH = 64
# the relay's nth Produce request and what happens to it
FAULTS = [
    (2, "close"),
    (3, "fail"),
    (5, "lose_ack"),
    (7, "fail_after_write"),
    (9, "fail"),
    (11, "close"),
    (13, "fail_after_write"),
]


def duplicates_skipped(namespace: str, projections: list[str]) -> dict[str, float]:
    return {p: PROJECTION_DUPLICATES.labels(namespace, p)._value.get() for p in projections}


async def test_failed_produce_requests_never_reorder_a_stream(endpoints: Endpoints) -> None:
    began = time.monotonic()
    settings = isolated_settings(endpoints)
    proxy = KafkaProxy()
    via_proxy = settings.model_copy(
        update={"kafka_bootstrap_servers": await proxy.start(endpoints.kafka_bootstrap_servers)}
    )
    clock = SimClock(START)
    service = await deals_main.build(via_proxy, clock=clock)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        await service.ensure_topics()
        for action in generate(N_DEALS, seed=23):  # the backlog: stored, nothing relayed yet
            clock.now = action.at
            await service.deals.handle(action.deal, commands(action), Context(actor="sim"))
        backlogged = time.monotonic()
        async with service.storage.pool.acquire() as conn:
            stored = await conn.fetchval(f"SELECT count(*) FROM {service.storage.store.schema}.events")
        assert stored > 10 * BATCH, f"the backlog spans many batches: {stored} events"
        client = "pipelines-deals-relay"
        proxy.faults = [Fault(PRODUCE, n, action, client_id=client) for n, action in FAULTS]
        relay = service.relay()
        relay.batch_size, relay.poll_interval = BATCH, 0.1
        await relay.setup()
        runners = [r for r in service.runners() if r.projection.name not in NOT_READ_MODELS]
        namespace, names = service.storage.store.schema, [r.projection.name for r in runners]
        skipped_before = duplicates_skipped(namespace, names)
        queued_ahead: list[bool] = []  # at each fault: had the relay queued the next batch already?
        proxy.on_hit = lambda _: queued_ahead.append(relay._ahead is not None)
        tasks.append(asyncio.create_task(relay.run(stop)))
        for runner in runners:
            runner.poll_interval = 0.2
            await runner.setup()
            tasks.append(asyncio.create_task(runner.run(stop)))
        async with running(tasks, stop), Checker(settings, ["deals"]) as checker:
            deadline = time.monotonic() + 90
            await checker.topics_hold_the_store(deadline, redelivery=True)  # order, completeness, exact resends
            assert [(h.fault.nth, h.fault.action) for h in proxy.hits] == FAULTS, proxy.hits
            assert all(h.partitions for h in proxy.hits), "each failed request carried record batches"
            failed = [q for q, (_, action) in zip(queued_ahead, FAULTS, strict=True) if action.startswith("fail")]
            assert any(failed), f"a batch failed while the next one was queued: {queued_ahead}"
            await checker.read_models_equal_a_recomputation_from_the_store(deadline)
            assert not [g for r in runners for gaps in r.gaps.values() for g in gaps.values()], "no partition met a gap"
            topic = settings.events_topic("deals")
            duplicates = checker.report[f"{topic}.duplicates"]
            assert duplicates > 0, "the error answered after the write made the relay publish again"
            skipped = {p: n - skipped_before[p] for p, n in duplicates_skipped(namespace, names).items()}
            assert all(n >= duplicates for n in skipped.values()), (skipped, duplicates)
            print(
                f"\n{stored} events, {proxy.requests[PRODUCE]} Produce requests, faults {FAULTS}, "
                f"queued ahead at each {queued_ahead}, {duplicates} resent, skipped by the read models {skipped}; backlog {backlogged - began:.1f} s, "
                f"relayed and checked {time.monotonic() - backlogged:.1f} s"
            )
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await service.close()
        await proxy.close()
        await drop_everything(settings)
