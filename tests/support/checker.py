"""What every fault scenario checks afterwards: nothing acknowledged is lost, nothing takes effect twice.

1. Every event acknowledged to a client (stream id and version of a 2xx answer) is in the store, and each
   stream's versions in the store run 1..n.
2. The topics hold every stored event, each stream's versions in order without gaps; a version may come again
   (delivery is at least once), but no version appears before the one it follows has.
3. The reactions have reacted to everything stored; one DealWon made exactly one production order.
4. Every read model (every projection but the reactions and the alerts) has applied every stored event it reads
   and equals a rebuild: a new generation built from the topics, table by table, row by row.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg

from services.cli import cores
from services.production.handlers import order_id_for_deal
from shared.alerts import ALERTS_PREFIX
from shared.db import create_pool
from shared.projections import generation_schema, request_rebuild
from shared.settings import Settings
from tests.support.kafka import by_stream, read_topic

NOT_READ_MODELS = ("reactions", "alerts")  # reactions append to a store; alerts are time-driven


async def stored_events(pool: asyncpg.Pool, schema: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(f"SELECT stream_id, version, event_type FROM {schema}.events ORDER BY stream_id, version")
    )


def in_order(published: list[int], stored: list[int]) -> str | None:
    """Why ``published`` (a stream's versions as the topic holds them) is not ``stored`` delivered at least once
    in order, or None."""
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


async def _table_rows(conn: Any, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1", schema
    )
    out = {}
    for t in tables:
        name = t["table_name"]
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


class Checker:
    """The three checks for the given services (the others are not running in the scenario)."""

    def __init__(self, settings: Settings, services: Iterable[str]) -> None:
        self.settings = settings
        self.services = tuple(services)
        self.pools: dict[str, asyncpg.Pool] = {}
        self.report: dict[str, Any] = {}

    async def __aenter__(self) -> Checker:
        for s in self.services:
            self.pools[s] = await create_pool(self.settings.database_url_for(s), max_size=3)
        return self

    async def __aexit__(self, *_: Any) -> None:
        for p in self.pools.values():
            await p.close()

    async def _stored(self) -> dict[str, list[asyncpg.Record]]:
        return {s: await stored_events(self.pools[s], self.settings.schema_name(s)) for s in self.services}

    async def check(self, acked: dict[str, set[tuple[str, int]]], *, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        await self.acknowledged_are_stored(acked)
        await self.reactions_caught_up(deadline)
        await self.topics_hold_the_store(deadline)
        await self.read_models_equal_a_rebuild(deadline)
        if {"deals", "production"} <= set(self.services):
            await self.each_won_deal_made_one_order()
        return self.report

    async def _projections(self, names: Callable[[str], bool]) -> dict[tuple[str, str], list[str]]:
        return {
            (s, p): topics
            for s, ps in (await cores(self.settings)).items()
            if s in self.services
            for p, topics in ps.items()
            if names(p)
        }

    async def _wait_applied(self, projections: dict[tuple[str, str], list[str]], deadline: float) -> None:
        """Until every projection named has applied every stored event of the topics it reads."""
        while True:
            behind = [k for k, t in projections.items() if not await self._applied_everything(*k, t)]
            if not behind:
                return
            assert time.monotonic() < deadline, f"still behind the store: {behind}"
            await asyncio.sleep(1.0)

    async def reactions_caught_up(self, deadline: float) -> None:
        """The reactions have reacted to everything (what they append is then in the stores)."""
        await self._wait_applied(await self._projections(lambda p: p == "reactions"), deadline)

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

    async def topics_hold_the_store(self, deadline: float) -> None:
        """Waits (until ``deadline``) for the relays to publish everything stored, then checks each stream."""
        problems: dict[str, str] = {}
        while True:
            stored = await self._stored()
            problems = {}
            for service, events in stored.items():
                by_topic: dict[str, dict[str, list[int]]] = {}
                for r in events:
                    topic = (
                        self.settings.alerts_topic()
                        if r["event_type"].startswith(ALERTS_PREFIX)
                        else self.settings.events_topic(service)
                    )
                    by_topic.setdefault(topic, {}).setdefault(r["stream_id"], []).append(r["version"])
                for topic, streams in by_topic.items():
                    published = by_stream(await read_topic(self.settings.kafka_bootstrap_servers, topic))
                    duplicates = sum(len(v) - len(set(v)) for v in published.values())
                    self.report[f"{topic}.redelivered"] = duplicates
                    for stream, versions in streams.items():
                        why = in_order(published.get(stream, []), versions)
                        if why:
                            problems[f"{topic} {stream}"] = why
            if not problems:
                return
            # only missing tail versions can still be published; anything else will not mend itself
            mending = all(w.startswith("missing") for w in problems.values())
            assert mending and time.monotonic() < deadline, (
                f"the topics do not hold the store: {list(problems.items())[:10]}"
            )
            await asyncio.sleep(1.0)

    async def _applied_everything(self, service: str, projection: str, topics: list[str]) -> bool:
        expected: dict[str, int] = {}
        for s in self.services:
            if self.settings.events_topic(s) in topics:
                for r in await stored_events(self.pools[s], self.settings.schema_name(s)):
                    expected[r["stream_id"]] = r["version"]
        ns = self.settings.schema_name(service)
        async with self.pools[service].acquire() as conn:
            gen = await conn.fetchval(
                f"SELECT generation FROM {ns}.projection_generations WHERE projection = $1 AND state = 'active'",
                projection,
            )
            if gen is None:
                return False
            rows = await conn.fetch(
                f"SELECT stream_id, version FROM {generation_schema(ns, projection, gen)}.projection_progress"
            )
        applied = {r["stream_id"]: r["version"] for r in rows}
        return all(applied.get(stream, 0) >= v for stream, v in expected.items())

    async def read_models_equal_a_rebuild(self, deadline: float) -> None:
        projections = await self._projections(lambda p: p not in NOT_READ_MODELS)
        await self._wait_applied(projections, deadline)
        live = {k: await self._active_rows(*k) for k in projections}
        generations = {
            (s, p): await request_rebuild(self.pools[s], self.settings.schema_name(s), p) for s, p in projections
        }
        for (s, p), gen in generations.items():
            ns = self.settings.schema_name(s)
            while True:
                state = await self.pools[s].fetchval(
                    f"SELECT state FROM {ns}.projection_generations WHERE projection = $1 AND generation = $2", p, gen
                )
                if state == "active":
                    break
                assert time.monotonic() < deadline, f"the rebuild of {s}.{p} (generation {gen}) was not swapped in"
                await asyncio.sleep(0.5)
            rebuilt = await self._active_rows(s, p)
            assert rebuilt == live[s, p], f"{s}.{p} differs from its rebuild: {_diff(live[s, p], rebuilt)}"
            self.report[f"{s}.{p}.rows"] = sum(len(v) for v in rebuilt.values())

    async def _active_rows(self, service: str, projection: str) -> dict[str, list[tuple[Any, ...]]]:
        ns = self.settings.schema_name(service)
        async with self.pools[service].acquire() as conn:
            gen = await conn.fetchval(
                f"SELECT generation FROM {ns}.projection_generations WHERE projection = $1 AND state = 'active'",
                projection,
            )
            return await _table_rows(conn, generation_schema(ns, projection, gen))


def _diff(live: dict[str, list[tuple[Any, ...]]], rebuilt: dict[str, list[tuple[Any, ...]]]) -> str:
    out = []
    for table in sorted(set(live) | set(rebuilt)):
        a, b = set(map(repr, live.get(table, []))), set(map(repr, rebuilt.get(table, [])))
        if a != b:
            out.append(f"{table}: live only {sorted(a - b)[:3]}, rebuilt only {sorted(b - a)[:3]}")
    return "; ".join(out)
