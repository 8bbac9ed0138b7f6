"""What every fault scenario checks afterwards: nothing acknowledged is lost, nothing takes effect twice.

1. Every event acknowledged to a client (stream id and version of a 2xx answer) is in the store, and each
   stream's versions in the store run 1..n.
2. The topics hold every stored event, each stream's versions in order without gaps, each message the very event
   the store holds at that version (same id, same envelope), all of a stream's messages on one partition. A
   version may come again (delivery is at least once) only as a resend: a stream's versions go back only to
   publish again, one by one, what follows the point they went back to (a relay resuming from its checkpoint
   resends a suffix). Duplicates are counted on each topic by event id; there must be none unless the
   scenario crashed a relay (``redelivery=True``).
3. The reactions have reacted to everything stored; one DealWon made exactly one production order.
4. Every read model (every projection but the reactions and the alerts) has applied every stored event it reads
   and equals a recomputation from the stores: the events of the stores whose topics it reads, in each store's
   commit order (tx_id, position), as the envelopes the relay publishes, applied by the projection's own runner
   to a new schema, compared table by table, row by row. (A rebuild from the topics would agree with a read
   model that missed an event the topics miss too; the store is the source of truth.)
"""

from __future__ import annotations

import asyncio
import heapq
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from services.alerts.events import ALERTS_PREFIX
from services.production.handlers import order_id_for_deal
from shared.core.events import schema_path
from shared.edge.service import ServiceCore
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Projection, generation_schema
from shared.messaging.relay import envelope_json
from shared.messaging.runner import ProjectionRunner
from shared.ops.settings import Settings
from shared.store import START, RecordedEvent
from shared.store.db import create_pool
from shared.store.postgres import PostgresEventStore
from testkit.kafka import read_topic

NOT_READ_MODELS = ("reactions", "alerts")  # reactions append to a store; alerts are time-driven
BOOKKEEPING = ("schema_migrations",)  # which DDL a schema has had, when: not what the read model holds


async def stored_events(pool: asyncpg.Pool, schema: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(f"SELECT stream_id, version, event_type FROM {schema}.events ORDER BY stream_id, version")
    )


def in_order(published: list[int], stored: list[int]) -> str | None:
    """Why ``published`` (a stream's versions as the topic holds them) is not ``stored`` delivered at least once
    in order, or None: every stored version is there, and each first appears after the one before it."""
    if sorted(set(published)) != stored:
        missing = sorted(set(stored) - set(published))
        return (
            f"missing versions {missing[:10]}"
            if missing
            else f"unknown versions {sorted(set(published) - set(stored))}"
        )
    firsts: list[int] = []
    for v in published:
        if not firsts or v > firsts[-1]:
            firsts.append(v)
    if firsts != stored:
        return f"out of order: {published}"
    return None


def resent_as_suffixes(published: list[int]) -> str | None:
    """Why ``published`` (a stream's versions as the topic holds them) goes back otherwise than to resend a suffix,
    or None. A stream's versions go back to a version v only when a relay publishes again from its checkpoint: then
    v+1, v+2, ... follow one by one up to the highest version published before (or they go back again: the relay
    crashed once more), and only then come new versions. ``in_order`` checks the first occurrences."""
    high = 0  # the highest version published so far
    at: int | None = None  # while a resend has not reached ``high``: the version it resent last
    for i, v in enumerate(published):
        if at is None:
            if v > high:
                high = v
                continue
            at = v  # back: a resend starts
        elif v == at + 1 or v <= at:
            at = v  # the resend goes on, or starts over
        else:
            return f"a resend of the versions up to {high} went from {at} to {v} (message {i}): {published}"
        if at == high:
            at = None
    if at is not None:  # still being published, or never will be
        return f"missing the rest of a resend of the versions up to {high}, which stopped at {at}: {published}"
    return None


async def _table_rows(conn: Any, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1", schema
    )
    out = {}
    for t in tables:
        name = t["table_name"]
        if name in BOOKKEEPING:
            continue
        cols = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 "
            "ORDER BY ordinal_position",
            schema,
            name,
        )
        # projection_progress.updated_at says when a generation applied it, not what: left out
        keep = [
            c["column_name"] for c in cols if not (name == "projection_progress" and c["column_name"] == "updated_at")
        ]
        select = ", ".join(f'"{c}"' for c in keep)
        rows = await conn.fetch(f'SELECT {select} FROM {schema}."{name}"')
        out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def same_event(stored: CloudEvent, published: CloudEvent) -> bool:
    """The message is the stored event: equal in every attribute, its ``dataschema`` the type's schema under whatever
    base the relay's deployment serves them (``Settings.schema_base_for``: a process's own API port)."""
    path = "/" + schema_path(stored.type, stored.schemaversion)
    return (published.dataschema or "").endswith(path) and stored.model_copy(
        update={"dataschema": published.dataschema}
    ) == published


class _Recomputation(ProjectionRunner):
    """The projection's runner, fed records made here rather than consumed: what it would dead-letter is kept."""

    dead_letters: list[str]

    async def _dead_letter(self, dead: Sequence[Any]) -> None:
        self.dead_letters.extend(f"{d.record.key!r} {d.reason}" for d in dead)


async def _build(settings: Settings, service: str) -> ServiceCore:
    from services.agenda.main import build as agenda
    from services.deals.main import build as deals
    from services.directory.main import build as directory
    from services.leads.main import build as leads
    from services.production.main import build as production

    builders: dict[str, Callable[[Settings], Awaitable[ServiceCore]]] = {
        "leads": leads,
        "deals": deals,
        "production": production,
        "directory": directory,
        "agenda": agenda,
    }
    return await builders[service](settings)


class Checker:
    """The checks for the given services (the others are not running in the scenario)."""

    def __init__(self, settings: Settings, services: Iterable[str]) -> None:
        self.settings = settings
        self.services = tuple(services)
        self.pools: dict[str, asyncpg.Pool] = {}
        self.report: dict[str, Any] = {}
        self._projections: dict[tuple[str, str], Projection] = {}

    async def __aenter__(self) -> Checker:
        for s in self.services:
            self.pools[s] = await create_pool(self.settings.database_url_for(s), max_size=3)
        return self

    async def __aexit__(self, *_: Any) -> None:
        for p in self.pools.values():
            await p.close()

    async def _stored(self) -> dict[str, list[asyncpg.Record]]:
        return {s: await stored_events(self.pools[s], self.settings.schema_name(s)) for s in self.services}

    async def check(
        self, acked: dict[str, set[tuple[str, int]]], *, timeout: float = 120.0, redelivery: bool = False
    ) -> dict[str, Any]:
        """Every check, waiting (until ``timeout``) for the relays and projectors to catch up. ``redelivery``: a
        relay crashed, so messages published again are expected (they are counted either way)."""
        deadline = time.monotonic() + timeout
        await self.acknowledged_are_stored(acked)
        await self.reactions_caught_up(deadline)
        await self.topics_hold_the_store(deadline, redelivery=redelivery)
        await self.read_models_equal_a_recomputation_from_the_store(deadline)
        if {"deals", "production"} <= set(self.services):
            await self.each_won_deal_made_one_order()
        return self.report

    async def projections(self) -> dict[tuple[str, str], Projection]:
        """Each running service's projections (the reactions and alerts too), as the services build them."""
        if not self._projections:
            for s in self.services:
                core = await _build(self.settings, s)
                try:
                    self._projections.update({(s, r.projection.name): r.projection for r in core.runners()})
                finally:
                    await core.close()
        return self._projections

    def topic_of(self, service: str, event_type: str) -> str:
        """Where the relay of ``service`` publishes an event of this type."""
        if event_type.startswith(ALERTS_PREFIX):
            return self.settings.alerts_topic()
        return self.settings.events_topic(service)

    async def _wait_applied(self, projections: Iterable[tuple[str, str]], deadline: float) -> None:
        """Until every projection named has applied every stored event of the topics it reads."""
        while True:
            behind = [k for k in projections if not await self._applied_everything(*k)]
            if not behind:
                return
            assert time.monotonic() < deadline, f"still behind the store: {behind}"
            await asyncio.sleep(1.0)

    async def reactions_caught_up(self, deadline: float) -> None:
        """The reactions have reacted to everything (what they append is then in the stores)."""
        await self._wait_applied([k for k in await self.projections() if k[1] == "reactions"], deadline)

    async def each_won_deal_made_one_order(self) -> None:
        """Nothing took effect twice across services: one ProductionOrderCreated per DealWon, in its order's stream."""
        won = await self.pools["deals"].fetch(
            f"SELECT stream_id FROM {self.settings.schema_name('deals')}.events WHERE event_type LIKE '%.DealWon'"
        )
        created = await self.pools["production"].fetch(
            f"SELECT stream_id, count(*) AS n FROM {self.settings.schema_name('production')}.events "
            "WHERE event_type = 'pipelines.production.ProductionOrderCreated' GROUP BY stream_id"
        )
        expected = {
            f"production-order-{order_id_for_deal(uuid.UUID(r['stream_id'].removeprefix('deal-')))}" for r in won
        }
        orders = {r["stream_id"]: r["n"] for r in created}
        assert all(orders.get(o) == 1 for o in expected), f"won deals without exactly one order: {orders}"
        self.report["deals.won"] = len(expected)

    async def acknowledged_are_stored(self, acked: dict[str, set[tuple[str, int]]]) -> None:
        stored = await self._stored()
        for service, events in stored.items():
            have = {(r["stream_id"], r["version"]) for r in events}
            lost = sorted(acked.get(service, set()) - have)
            assert not lost, f"{service}: {len(lost)} acknowledged events are not in the store: {lost[:10]}"
            streams: dict[str, list[int]] = {}
            for r in events:
                streams.setdefault(r["stream_id"], []).append(r["version"])
            gaps = {s: v for s, v in streams.items() if v != list(range(1, len(v) + 1))}
            assert not gaps, f"{service}: stream versions with gaps in the store: {list(gaps.items())[:5]}"
            self.report[f"{service}.acked"] = len(acked.get(service, set()))
            self.report[f"{service}.stored"] = len(events)

    async def events_in_commit_order(self, service: str) -> list[RecordedEvent]:
        """The service's stored events in commit order (tx_id, position), as the relay reads them: all of them (the
        commit-safe read leaves out, for a moment, what commits after a transaction still open)."""
        store = PostgresEventStore(self.pools[service], self.settings.schema_name(service))
        for _ in range(40):
            out: list[RecordedEvent] = []
            while batch := await store.read_all(out[-1].checkpoint if out else START, limit=10_000):
                out.extend(batch)
            if len(out) == await self.pools[service].fetchval(f"SELECT count(*) FROM {store.schema}.events"):
                return out
            await asyncio.sleep(0.25)
        raise AssertionError(f"{service}: the commit-safe read of the store never saw all its events")

    async def unpublished(self, service: str) -> int:
        """Events stored past the relay's checkpoint (what the relay still has to publish)."""
        s = self.settings.schema_name(service)
        return int(
            await self.pools[service].fetchval(
                f"""SELECT count(*) FROM {s}.events e WHERE (e.tx_id, e.position) > coalesce(
                        (SELECT (c.tx_id, c.position) FROM {s}.relay_checkpoints c WHERE c.name = 'relay'),
                        ('0'::xid8, 0::bigint))"""
            )
        )

    async def topics_hold_the_store(self, deadline: float, *, redelivery: bool = False) -> None:
        """Waits (until ``deadline``) for the relays to publish everything stored, then checks each stream."""
        while True:
            problems = await self._topic_problems(redelivery=redelivery)
            if not problems:
                return
            # only missing tail versions can still be published; anything else will not mend itself
            mending = all(w.startswith("missing") for w in problems.values())
            assert mending and time.monotonic() < deadline, (
                f"the topics do not hold the store: {list(problems.items())[:10]}"
            )
            await asyncio.sleep(1.0)

    async def _topic_problems(self, *, redelivery: bool) -> dict[str, str]:
        expected: dict[str, dict[tuple[str, int], CloudEvent]] = {}  # topic → (stream, version) → envelope
        for service in self.services:
            for e in await self.events_in_commit_order(service):
                envelope = CloudEvent.from_kafka(envelope_json(e, service))
                expected.setdefault(self.topic_of(service, e.event_type), {})[e.stream_id, e.version] = envelope
        problems: dict[str, str] = {}
        for topic, events in expected.items():
            messages = await read_topic(self.settings.kafka_bootstrap_servers, topic)
            published: dict[str, list[int]] = {}
            partitions: dict[str, set[int]] = {}
            for partition, m in messages:
                published.setdefault(m.streamid, []).append(m.streamversion)
                partitions.setdefault(m.streamid, set()).add(partition)
                stored = events.get((m.streamid, m.streamversion))
                if stored is not None and not same_event(stored, m):
                    problems[f"{topic} {m.streamid}"] = f"version {m.streamversion} differs from the store: {m}"
            ids = Counter(m.id for _, m in messages)
            duplicates = sum(n - 1 for n in ids.values())
            self.report[f"{topic}.messages"] = len(messages)
            self.report[f"{topic}.duplicates"] = duplicates
            streams: dict[str, list[int]] = {}
            for stream, version in sorted(events):
                streams.setdefault(stream, []).append(version)
            for stream, versions in streams.items():
                why = (
                    in_order(published.get(stream, []), versions)
                    or resent_as_suffixes(published.get(stream, []))
                    or (f"on partitions {sorted(partitions[stream])}" if len(partitions[stream]) > 1 else None)
                )
                if why:
                    problems.setdefault(f"{topic} {stream}", why)
            if duplicates and not redelivery:
                again = sorted(i for i, n in ids.items() if n > 1)
                problems[topic] = f"{duplicates} duplicates by event id without a relay crash, e.g. {again[:5]}"
        return problems

    async def active_schema(self, service: str, projection: str) -> str | None:
        ns = self.settings.schema_name(service)
        gen = await self.pools[service].fetchval(
            f"SELECT generation FROM {ns}.projection_generations WHERE projection = $1 AND state = 'active'",
            projection,
        )
        return None if gen is None else generation_schema(ns, projection, gen)

    async def applied(self, service: str) -> dict[str, int]:
        """Per projection of the service: how many events its active generation has applied (the sum of the
        streams' versions it has reached)."""
        out = {}
        for s, p in await self.projections():
            schema = await self.active_schema(s, p) if s == service else None
            if schema is not None:
                n = await self.pools[s].fetchval(f"SELECT coalesce(sum(version), 0) FROM {schema}.projection_progress")
                out[p] = int(n)
        return out

    async def _applied_everything(self, service: str, projection: str) -> bool:
        topics = (await self.projections())[service, projection].topics
        expected: dict[str, int] = {}
        for s in self.services:
            for r in await stored_events(self.pools[s], self.settings.schema_name(s)):
                if self.topic_of(s, r["event_type"]) in topics:
                    expected[r["stream_id"]] = r["version"]
        schema = await self.active_schema(service, projection)
        if schema is None:
            return False
        rows = await self.pools[service].fetch(f"SELECT stream_id, version FROM {schema}.projection_progress")
        applied = {r["stream_id"]: r["version"] for r in rows}
        return all(applied.get(stream, 0) >= v for stream, v in expected.items())

    async def read_models_equal_a_recomputation_from_the_store(self, deadline: float) -> None:
        """Each read model's active generation, table by table and row by row, against the same projection applied
        afresh (its own runner: progress table, search path, ``apply_batch`` or ``apply``) to every stored event of
        the topics it reads, as the relay would publish them, in each store's commit order (stores merged by
        recorded time), in a schema of its own that is dropped afterwards."""
        read_models = {k: p for k, p in (await self.projections()).items() if k[1] not in NOT_READ_MODELS}
        await self._wait_applied(read_models, deadline)
        events = {s: await self.events_in_commit_order(s) for s in self.services}
        records: dict[str, list[tuple[RecordedEvent, str]]] = {}  # topic → its events from each store, in order
        for s, recorded in events.items():
            for e in recorded:
                records.setdefault(self.topic_of(s, e.event_type), []).append((e, s))
        for (service, name), projection in read_models.items():
            streams = [records.get(t, []) for t in projection.topics]
            ordered = list(heapq.merge(*streams, key=lambda es: es[0].recorded_at))  # keeps each store's order
            live = await self._active_rows(service, name)
            recomputed, dead = await self._recompute(service, projection, ordered)
            assert recomputed == live, (
                f"{service}.{name} differs from its recomputation from the store: {_diff(live, recomputed)}"
            )
            self.report[f"{service}.{name}.rows"] = sum(len(v) for v in live.values())
            if dead:
                self.report[f"{service}.{name}.dead_letters"] = len(dead)

    async def _recompute(
        self, service: str, projection: Projection, events: list[tuple[RecordedEvent, str]]
    ) -> tuple[dict[str, list[tuple[Any, ...]]], list[str]]:
        namespace = f"{self.settings.schema_name(service)}_recomputed"
        runner = _Recomputation(
            self.pools[service],
            projection,
            namespace=namespace,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            dead_letter_topic=self.settings.dead_letter_topic(service),
        )
        runner.dead_letters = []
        pool = self.pools[service]
        try:
            await runner.setup()  # a registry of its own, and generation 1's tables as the projection creates them
            batch = runner.catch_up_batch_size
            for start in range(0, len(events), batch):
                chunk = [_record(e, s, i) for i, (e, s) in enumerate(events[start : start + batch], start)]
                stopped = await runner.process(1, chunk)
                assert not stopped, f"the recomputation of {service}.{projection.name} met gaps: {stopped}"
            async with pool.acquire() as conn:
                return await _table_rows(conn, runner.schema(1)), runner.dead_letters
        finally:
            async with pool.acquire() as conn:
                await conn.execute(f"DROP SCHEMA IF EXISTS {runner.schema(1)} CASCADE")
                await conn.execute(f"DROP SCHEMA IF EXISTS {namespace} CASCADE")

    async def _active_rows(self, service: str, projection: str) -> dict[str, list[tuple[Any, ...]]]:
        schema = await self.active_schema(service, projection)
        assert schema is not None, f"{service}.{projection} has no active generation"
        async with self.pools[service].acquire() as conn:
            return await _table_rows(conn, schema)


def _record(event: RecordedEvent, service: str, offset: int) -> ConsumerRecord[bytes, bytes]:
    """The Kafka record the relay of ``service`` would publish for a stored event."""
    key, value = event.stream_id.encode(), envelope_json(event, service)
    return ConsumerRecord(
        topic=f"{service} store",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=[],
    )


def _diff(live: dict[str, list[tuple[Any, ...]]], recomputed: dict[str, list[tuple[Any, ...]]]) -> str:
    out = []
    for table in sorted(set(live) | set(recomputed)):
        a, b = set(map(repr, live.get(table, []))), set(map(repr, recomputed.get(table, [])))
        if a != b:
            out.append(f"{table}: live only {sorted(a - b)[:3]}, recomputed only {sorted(b - a)[:3]}")
    return "; ".join(out)
