"""After restoring a service's database from a backup: bring its event store up to date from its Kafka topic.

The backup holds a prefix of history; every event published after it is still on the topic (kept forever).
``catch_up`` appends, for each stream, the events the topic holds beyond the store's version, as they were
(same event id, version, type, schema version, data — personal fields stay sealed — occurrence time, correlation,
causation and actor). Their ``recorded_at`` is the time of the catch-up and ``metadata.restored_from`` says where
they came from. It all happens in one transaction that
also moves the relay's checkpoint past them when everything the store held is already on the topic, so they are
not published a second time (otherwise the relay publishes them again; consumers skip what they have).

The personal-data keys come back first (``restore_keys``): a backup older than the erasure window holds its
subject keys wrapped under epochs that are destroyed since (decision 0015), so each live subject's key is taken
from the key export the rotator writes at every rotation (``<keyring>/<key store>.keys.jsonl``, or one written by
``python -m shared.store.keystore export`` from the live store), and every erasure recorded after the backup (the
export's, and the erasure events on every service's topic) is applied again, so an erased person stays erased.

Run it before the service takes writes, after advancing a fresh cluster's transaction counter (OPERATIONS.md):
``python -m shared.messaging.restore <service>``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.core.events import registry
from shared.messaging.envelope import CloudEvent
from shared.messaging.kafka import read_whole_topic
from shared.ops.settings import SERVICES, Settings
from shared.privacy.keyring import KeyringError
from shared.store.db import Conn, create_pool
from shared.store.keystore import KeysRestored, PostgresKeyStore, key_store
from shared.store.postgres import PostgresEventStore


class RestoreError(RuntimeError):
    """The topics cannot bring the store up to date (a gap, or another history): nothing was written."""


@dataclass(frozen=True)
class CaughtUp:
    appended: int
    streams: int
    already_stored: int


async def catch_up(
    store: PostgresEventStore,
    bootstrap_servers: str,
    topics: Sequence[str],
    *,
    source: str | None = None,
    relay: str = "relay",
    **kafka_options: Any,
) -> CaughtUp:
    """``topics``: every topic the store's relay publishes to; ``source``: only messages with this CloudEvents
    source (a topic several services share, like the alerts topic)."""
    events: list[CloudEvent] = []
    for topic in topics:
        for r in await read_whole_topic(bootstrap_servers, topic, **kafka_options):
            e = CloudEvent.from_kafka(r.value)
            if source is None or e.source == source:
                events.append(e)
    s = store.schema
    async with store.pool.acquire() as conn, conn.transaction():
        stored: dict[tuple[str, int], str] = {
            (r[0], r[1]): r[2] for r in await conn.fetch(f"SELECT stream_id, version, event_id::text FROM {s}.events")
        }
        versions: dict[str, int] = {}
        for stream, version in stored:
            versions[stream] = max(version, versions.get(stream, 0))
        missing: dict[tuple[str, int], CloudEvent] = {}
        for e in events:  # a message published twice (at least once) appears once
            key = (e.streamid, e.streamversion)
            if key in stored and stored[key] != e.id:
                raise RestoreError(
                    f"stream {e.streamid!r} version {e.streamversion}: the store holds event {stored[key]} and the "
                    f"topic {e.id}; they are not one history"
                )
            if e.streamversion > versions.get(e.streamid, 0):
                missing[key] = e
        by_stream: dict[str, list[int]] = {}
        for stream, version in sorted(missing):
            by_stream.setdefault(stream, []).append(version)
        for stream, found in by_stream.items():
            expected = list(range(versions.get(stream, 0) + 1, versions.get(stream, 0) + 1 + len(found)))
            if found != expected:
                raise RestoreError(
                    f"stream {stream!r}: the store ends at version {versions.get(stream, 0)} and the topic "
                    f"holds {found}; versions {sorted(set(expected) - set(found))} are in neither"
                )
        ordered = sorted(missing.values(), key=lambda e: (e.recordedtime, e.position))
        for e in ordered:
            metadata = {"correlation_id": e.correlationid, "causation_id": e.causationid, "restored_from": "kafka"}
            if e.actor is not None:  # who did it (messages published before the wire carried it have none)
                metadata["actor"] = e.actor
            metadata |= {k: v for k in ("traceparent", "tracestate") if (v := getattr(e, k)) is not None}
            await conn.execute(
                f"""INSERT INTO {s}.events (stream_id, version, event_id, event_type, schema_version, data,
                                            metadata, occurred_at)
                    VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8)""",
                e.streamid,
                e.streamversion,
                e.event_id,
                e.type,
                e.schemaversion,
                e.data,
                metadata,
                e.time,
            )
        if ordered and await _all_published(conn, s, relay, {e.id for e in events}):
            await conn.execute(
                f"""UPDATE {s}.relay_checkpoints SET tx_id = pg_current_xact_id(), position = $2, updated_at = now()
                    WHERE name = $1""",
                relay,
                await conn.fetchval(f"SELECT max(position) FROM {s}.events"),
            )
    return CaughtUp(appended=len(ordered), streams=len(by_stream), already_stored=len(events) - len(ordered))


async def erasures_on_topics(bootstrap_servers: str, topics: Sequence[str], **kafka_options: Any) -> set[str]:
    """The subjects the erasure events on these topics erased (event types with ``erasure``, as registered)."""
    erased: set[str] = set()
    for topic in topics:
        try:
            records = await read_whole_topic(bootstrap_servers, topic, **kafka_options)
        except LookupError:
            continue  # a topic that does not exist holds no erasure
        for r in records:
            e = CloudEvent.from_kafka(r.value)
            if (subject := registry.erased_subject(e.type, e.data)) is not None:
                erased.add(subject)
    return erased


async def restore_keys(
    keys: PostgresKeyStore,
    bootstrap_servers: str,
    topics: Sequence[str],
    *,
    export: Path | None,
    **kafka_options: Any,
) -> KeysRestored:
    """The restored key store made whole: each live subject's key from ``export`` or the backup, every erasure the
    backup, the export or the topics (every service's: the key store is shared) record applied again."""
    erased = await erasures_on_topics(bootstrap_servers, topics, **kafka_options)
    return await keys.restore(PostgresKeyStore.read_export(export) if export is not None else None, erased)


def load_event_contracts() -> None:
    """Register every service's event types by name (as ``tools.contract`` does), so the erasure events on the
    topics are known; the kernel has no import of them."""
    for service in SERVICES:
        importlib.import_module(f"services.{service}.events")


async def _all_published(conn: Conn, s: str, relay: str, on_topic: set[str]) -> bool:
    """Whether every stored event after the relay's checkpoint is on the topic: then the checkpoint may move past
    the appended ones. Otherwise it stays, and the relay publishes them again (consumers skip what they have)."""
    if not await conn.fetchval("SELECT to_regclass($1)", f"{s}.relay_checkpoints"):
        return False
    unpublished = await conn.fetch(
        f"""SELECT e.event_id::text AS id FROM {s}.events e
            WHERE (e.tx_id, e.position) > coalesce(
                (SELECT (c.tx_id, c.position) FROM {s}.relay_checkpoints c WHERE c.name = $1), ('0'::xid8, 0::bigint))""",
        relay,
    )
    has_row = await conn.fetchval(f"SELECT count(*) FROM {s}.relay_checkpoints WHERE name = $1", relay)
    return bool(has_row) and all(r["id"] in on_topic for r in unpublished)


async def _main(service: str, export: str | None, keys_too: bool) -> None:
    settings = Settings()
    pool = await create_pool(settings.database_url_for(service), min_size=1, max_size=2)
    try:
        if keys_too:
            load_event_contracts()
            keys = key_store(pool, settings)
            path = Path(export) if export else await keys.find_export()
            if path is None:
                print("no key export beside the keyring: keys only from the restored store", file=sys.stderr)
            restored = await restore_keys(
                keys,
                settings.kafka_bootstrap_servers,
                [settings.events_topic(s) for s in SERVICES],
                export=path,
                **settings.kafka_options(),
            )
            print(
                f"{keys.schema}: {restored.kept} keys kept under epoch {restored.epoch} ({restored.from_export} from "
                f"the export), {restored.erased} erased again, {restored.lost} lost"
            )
            if restored.lost:
                print(
                    f"warning: {restored.lost} subjects' keys were in neither the export nor openable in the backup: "
                    "their personal data cannot be read (docs/OPERATIONS.md, Backups and restore)",
                    file=sys.stderr,
                )
        store = PostgresEventStore(pool, settings.schema_name(service))
        done = await catch_up(
            store,
            settings.kafka_bootstrap_servers,
            [settings.events_topic(service), settings.alerts_topic()],
            source=f"/pipelines/{service}",
            **settings.kafka_options(),
        )
    finally:
        await pool.close()
    print(
        f"{service}: {done.appended} events appended to {done.streams} streams from the topic "
        f"({done.already_stored} already in the store)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.messaging.restore", description=__doc__.splitlines()[0])
    parser.add_argument("service", help="the service whose restored store is brought up to date")
    parser.add_argument(
        "--keys-export",
        help="the key export to take live subjects' keys from (default: the rotator's, beside the keyring)",
    )
    parser.add_argument("--no-keys", action="store_true", help="leave the personal-data key store as it is")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_main(args.service, args.keys_export, not args.no_keys))
    except RestoreError as exc:
        raise SystemExit(f"error: {exc} (nothing was written)") from None
    except KeyringError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
