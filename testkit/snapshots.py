"""Every stream of a store, folded from its events, survives a snapshot round trip and equals what a command sees."""

from __future__ import annotations

from typing import Any

from shared.core.decider import Decider
from shared.store import StateCache
from shared.store.commands import current, from_snapshot, load, to_snapshot
from shared.store.postgres import PostgresEventStore


async def assert_snapshots_round_trip(store: PostgresEventStore, prefix: str, decider: Decider[Any]) -> int:
    """For each stream whose id starts with ``prefix``: the full fold equals its snapshot read back, and equals the
    state a new process gets (from the stored snapshot, if any, plus the events after it). Returns the count."""
    async with store.pool.acquire() as conn:
        streams = [
            r["stream_id"]
            for r in await conn.fetch(
                f"SELECT DISTINCT stream_id FROM {store.schema}.events WHERE stream_id LIKE $1", prefix + "%"
            )
        ]
    store.states = StateCache()
    for stream in streams:
        loaded = await load(store, stream, decider)
        assert from_snapshot(decider, to_snapshot(decider, loaded.state, loaded.version)) == loaded.state, stream
        now = await current(store, stream, decider)
        assert (now.state, now.version) == (loaded.state, loaded.version), stream
    return len(streams)
