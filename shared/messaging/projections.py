"""Read models: what a projection is, and how queries read one.

A ``Projection`` names the topics it reads, the DDL of its tables (unqualified names), the event types it takes
(``accepts``, prefixes) and one ``apply(conn, facts)`` that changes them for a batch of events in order, each a
``Fact``: the typed event and its envelope. The read model is written once: a batch of one is the per-event path
(a failed batch is applied again one event at a time). Reactions are projections too: their ``apply`` appends
to their own service's store on the same connection, so the reaction and its progress commit together.

The runner that applies them: ``shared.messaging.runner``. Queries read a read model's active generation
through ``ReadModels``; ``request_rebuild`` starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg

from shared.core.events import DomainEvent
from shared.messaging.envelope import CloudEvent
from shared.store.db import Conn, identifier


@dataclass(frozen=True, slots=True)
class Fact:
    """An event as a read model gets it: typed (upcast, personal fields unopened), with its envelope (stream,
    version, times, ids)."""

    envelope: CloudEvent
    event: DomainEvent


Apply = Callable[[Conn, Sequence[Fact]], Awaitable[None]]
ApplyOne = Callable[[Conn, Fact], Awaitable[None]]


def one_by_one(apply: ApplyOne) -> Apply:
    """A read model whose events each change a row or two, applied in order: a batch is its events one by one."""

    async def batch(conn: Conn, facts: Sequence[Fact]) -> None:
        for fact in facts:
            await apply(conn, fact)

    return batch


@dataclass(frozen=True)
class Projection:
    """A read model: its tables (``ddl``) and ``apply``, one function for a batch of events in order (a batch of
    one is the per-event path: a bad event's batch is applied again event by event to find it). The runner hands
    it only the events whose type starts with one of ``accepts``, typed; the others advance its progress."""

    name: str
    topics: tuple[str, ...]
    ddl: str
    apply: Apply
    accepts: tuple[str, ...]  # event type prefixes, e.g. "pipelines.deals."
    tables: tuple[str, ...] = ()  # for documentation and `status`; the DDL is what creates them

    def __post_init__(self) -> None:
        identifier(self.name)


class ReadModelBehindError(TimeoutError):
    """The read model had not reached the requested position within the wait."""

    def __init__(self, projection: str, stream_id: str, version: int, reached: int) -> None:
        super().__init__(f"{projection} has {stream_id} at version {reached}, not yet {version}")
        self.reached = reached


def generation_schema(namespace: str, projection: str, generation: int) -> str:
    return identifier(f"{namespace}__{projection}__g{generation}")


REGISTRY_DDL = """
CREATE SCHEMA IF NOT EXISTS {ns};
CREATE TABLE IF NOT EXISTS {ns}.projection_generations (
    projection   text NOT NULL,
    generation   integer NOT NULL,
    state        text NOT NULL CHECK (state IN ('building', 'active', 'retired', 'dropped')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    retired_at   timestamptz,
    PRIMARY KEY (projection, generation)
);
CREATE UNIQUE INDEX IF NOT EXISTS one_active_generation
    ON {ns}.projection_generations (projection) WHERE state = 'active';
CREATE UNIQUE INDEX IF NOT EXISTS one_building_generation
    ON {ns}.projection_generations (projection) WHERE state = 'building';
"""

PROGRESS_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.projection_progress (
    stream_id  text PRIMARY KEY,
    version    integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


async def _set_search_path(conn: Conn, schema: str, *, custom_plans: bool = False, then: str = "") -> None:
    """This transaction's tables are ``schema``'s. ``custom_plans``: every statement is planned for its own
    parameters, never from a plan cached on this connection (a projector's batches, decision 0010: a generic plan
    made while a new generation's tables were small stays a sequential scan as they grow, and with a parameter
    array it compares every row with every key). ``then``: a statement without parameters sent in the same
    round trip."""
    plans = "; SET LOCAL plan_cache_mode = force_custom_plan" if custom_plans else ""
    await conn.execute(f"SET LOCAL search_path TO {schema}, public{plans}{'; ' + then if then else ''}")


class ReadModels:
    """Queries' access to the active generation of each read model of a namespace (service)."""

    def __init__(self, pool: asyncpg.Pool, namespace: str) -> None:
        self.pool = pool
        self.namespace = identifier(namespace)

    async def active_schema(self, conn: Conn, projection: str) -> str:
        generation = await conn.fetchval(
            f"""SELECT generation FROM {self.namespace}.projection_generations
                WHERE projection = $1 AND state = 'active'""",
            projection,
        )
        if generation is None:
            raise LookupError(f"no active read model {projection} in {self.namespace}")
        return generation_schema(self.namespace, projection, generation)

    async def applied_version(self, conn: Conn, stream_id: str) -> int:
        """Within ``connection()``: the version of a stream the read model has applied (0 if none)."""
        return int(await conn.fetchval("SELECT version FROM projection_progress WHERE stream_id = $1", stream_id) or 0)

    @contextlib.asynccontextmanager
    async def connection(
        self, projection: str, *, wait_for: tuple[str, int] | None = None, wait_s: float = 5.0
    ) -> AsyncIterator[Conn]:
        """A read-only transaction whose search_path is the active generation's schema."""
        deadline = time.monotonic() + wait_s
        async with self.pool.acquire() as conn:
            while True:
                async with conn.transaction(readonly=True, isolation="repeatable_read"):
                    await _set_search_path(conn, await self.active_schema(conn, projection))
                    reached = await self.applied_version(conn, wait_for[0]) if wait_for else 0
                    if wait_for is None or reached >= wait_for[1]:
                        yield conn
                        return
                if time.monotonic() > deadline:
                    raise ReadModelBehindError(projection, wait_for[0], wait_for[1], reached)
                await asyncio.sleep(0.02)


async def request_rebuild(pool: asyncpg.Pool, namespace: str, projection: str) -> int:
    """Register a new generation to be built from the beginning of the topics; returns its number."""
    ns = identifier(namespace)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"LOCK TABLE {ns}.projection_generations IN EXCLUSIVE MODE")
        building = await conn.fetchval(
            f"SELECT generation FROM {ns}.projection_generations WHERE projection = $1 AND state = 'building'",
            projection,
        )
        if building is not None:
            return int(building)
        latest = await conn.fetchval(
            f"SELECT max(generation) FROM {ns}.projection_generations WHERE projection = $1", projection
        )
        generation = int(latest or 0) + 1
        await conn.execute(
            f"INSERT INTO {ns}.projection_generations (projection, generation, state) VALUES ($1, $2, 'building')",
            projection,
            generation,
        )
        return generation
