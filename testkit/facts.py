"""A service's events as its read models get them, without Kafka: every event of in-memory stores, in the order
they were recorded, as ``Fact``s (envelope and typed event, personal fields sealed), for tests that apply a
projection's ``apply`` to real PostgreSQL directly."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence

from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection
from shared.store.db import Conn
from shared.store.memory import InMemoryEventStore


async def facts_of(*stores: tuple[InMemoryEventStore, str]) -> list[Fact]:
    """The events of each ``(store, service)``, by recorded time (a store's own order among equal times)."""
    out: list[tuple[object, int, int, Fact]] = []
    for rank, (store, service) in enumerate(stores):
        for i, recorded in enumerate(await store.read_all(limit=1_000_000)):
            envelope = CloudEvent.from_recorded(recorded, service)
            out.append((recorded.recorded_at, i, rank, Fact(envelope, envelope.to_event())))
    out.sort(key=lambda x: (x[0], x[2], x[1]))
    return [f for *_, f in out]


async def build(conn: Conn, projection: Projection, facts: Sequence[Fact], *, batch: int = 0) -> None:
    """The projection's tables made, then the facts it accepts applied (``batch``: per call; 0: all in one)."""
    await conn.execute(projection.ddl)
    accepted = [f for f in facts if f.envelope.type.startswith(projection.accepts)]
    size = batch or max(len(accepted), 1)
    for i in range(0, len(accepted), size):
        await projection.apply(conn, accepted[i : i + size])


@contextlib.asynccontextmanager
async def schema(conn: Conn) -> AsyncIterator[str]:
    """A schema of its own for a read model (each projection's tables live in their own), dropped afterwards;
    ``conn``'s search_path is it inside, and is reset after."""
    name = f"rm_{uuid.uuid4().hex[:12]}"
    await conn.execute(f"CREATE SCHEMA {name}; SET search_path = {name}")
    try:
        yield name
    finally:
        await conn.execute(f"RESET search_path; DROP SCHEMA {name} CASCADE")


async def use(conn: Conn, name: str) -> None:
    await conn.execute(f"SET search_path = {name}")
