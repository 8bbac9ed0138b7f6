"""Issue 19, item 2: a restart under load must not queue behind the appends (nor make them queue behind it).

Every start used to re-run its DDL (``CREATE OR REPLACE TRIGGER/RULE`` on the events table, ``CREATE INDEX IF NOT
EXISTS`` on read-model tables): locks that wait for every open write on those tables, and that every write waits
for meanwhile; at 80 requests/s one restart in ~45 died of a deadlock. Here writes are left open on each hot table
while the processes start again: each start must go through at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg
import pytest

from services.leads.handlers import PostgresDedupe
from shared.messaging.projections import Fact, Projection
from shared.messaging.relay import OutboxRelay
from shared.messaging.runner import ProjectionRunner
from shared.ops.stack import Endpoints
from shared.store import NewEvent
from shared.store.db import Conn
from shared.store.keystore import PostgresKeyStore
from shared.store.postgres import PostgresEventStore
from testkit.events import Counted
from testkit.services import TEST_KEYRINGS

pytestmark = pytest.mark.pg

START_WITHIN_S = 3.0

INDEXED_DDL = """
CREATE TABLE IF NOT EXISTS seen (stream_id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS seen_by_time ON seen (at);
"""


async def _ignore(conn: Conn, facts: Sequence[Fact]) -> None:
    return None


def parts(store: PostgresEventStore, endpoints: Endpoints) -> tuple[OutboxRelay, PostgresKeyStore, ProjectionRunner]:
    relay = OutboxRelay(
        store,
        service="test",
        topic="unused",
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
    )
    keys = PostgresKeyStore(  # as the pg_store fixture's
        store.pool, master_key=b"k" * 32, keyring_dir=TEST_KEYRINGS, schema=store.schema
    )
    runner = ProjectionRunner(
        store.pool,
        Projection(name="seen", topics=("unused",), ddl=INDEXED_DDL, apply=_ignore, accepts=("",)),
        namespace=store.schema,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        dead_letter_topic="unused",
    )
    return relay, keys, runner


async def test_a_restart_does_not_wait_for_open_writes_on_hot_tables(
    pg_store: PostgresEventStore, endpoints: Endpoints
) -> None:
    s = pg_store.schema
    relay, keys, runner = parts(pg_store, endpoints)
    dedupe = PostgresDedupe(pg_store.pool, s)
    for part in (relay, runner, dedupe):  # the first start (the store and key store: the fixture's)
        await part.setup()
    generation = runner.schema(1)

    async with pg_store.pool.acquire() as writer:
        tx = writer.transaction()
        await tx.start()
        try:
            # under load: an append, a checkpoint, a key, a dedupe key and a projector's batch, none committed yet
            await pg_store.append("open", [NewEvent(Counted(n=1))], expected_version=0, conn=writer)
            await writer.execute(f"INSERT INTO {s}.relay_checkpoints (name, tx_id, position) VALUES ('open', '1', 1)")
            await writer.execute(  # under the store's epoch: its guard refuses any other (decision 0015)
                f"INSERT INTO {s}.subject_keys (subject_id, wrapped_key, epoch) VALUES ('open', 'x', 1)"
            )
            await writer.execute(f"INSERT INTO {s}.dedupe_keys VALUES ('phone:open', $1)", uuid.uuid4())
            await writer.execute(f"INSERT INTO {generation}.seen (stream_id) VALUES ('open')")
            await writer.execute(f"INSERT INTO {generation}.projection_progress (stream_id, version) VALUES ('o', 1)")

            # the restart: every part's setup again, as the api, relay and projector processes run them
            await asyncio.wait_for(
                asyncio.gather(pg_store.setup(), keys.setup(), relay.setup(), runner.setup(), dedupe.setup()),
                START_WITHIN_S,
            )
            for part in (pg_store, keys, relay, runner, dedupe):  # and each on its own
                await asyncio.wait_for(part.setup(), START_WITHIN_S)
        finally:
            await tx.rollback()


OLD_SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id      text        NOT NULL,
    version        integer     NOT NULL CHECK (version > 0),
    event_id       uuid        NOT NULL UNIQUE,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    UNIQUE (stream_id, version)
);
CREATE INDEX IF NOT EXISTS events_commit_order ON {s}.events (tx_id, position);
CREATE TABLE IF NOT EXISTS {s}.idempotency_keys (
    key         text PRIMARY KEY,
    fingerprint text NOT NULL,
    result      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {s}.snapshots (
    stream_id      text PRIMARY KEY,
    version        integer NOT NULL,
    schema_version integer NOT NULL,
    state          jsonb NOT NULL,
    written_at     timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION {s}.notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('{channel}', ''); RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON {s}.events
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.notify_events();
CREATE OR REPLACE RULE events_no_update AS ON UPDATE TO {s}.events DO INSTEAD NOTHING;
CREATE OR REPLACE RULE events_no_delete AS ON DELETE TO {s}.events DO INSTEAD NOTHING;
CREATE TABLE IF NOT EXISTS {s}.relay_checkpoints (
    name text PRIMARY KEY,
    tx_id xid8 NOT NULL,
    position bigint NOT NULL,
    published bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS {s}.subject_keys (
    subject_id text PRIMARY KEY,
    wrapped_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS {s}.erasures (
    subject_id text PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now(),
    reason text NOT NULL DEFAULT '');
"""


async def test_a_schema_the_old_code_made_upgrades_under_load_without_locking_the_events_table(
    pg_pool: asyncpg.Pool, pg_schema: str, endpoints: Endpoints
) -> None:
    store = PostgresEventStore(pg_pool, pg_schema)
    await pg_pool.execute(OLD_SCHEMA_SQL.format(s=pg_schema, channel=store.channel))
    await store.append("before", [NewEvent(Counted(n=1))], expected_version=0)
    relay, keys, runner = parts(store, endpoints)

    async with pg_pool.acquire() as writer:
        tx = writer.transaction()
        await tx.start()
        try:
            await store.append("open", [NewEvent(Counted(n=2))], expected_version=0, conn=writer)
            for part in (store, keys, relay, runner):  # the first start of the new code: no lock on the events
                await asyncio.wait_for(part.setup(), START_WITHIN_S)
        finally:
            await tx.rollback()

    assert [e.stream_id for e in await store.read_stream("before")] == ["before"], "the events are still there"
    triggers = await pg_pool.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal", f"{pg_schema}.events"
    )
    rules = await pg_pool.fetch("SELECT rulename FROM pg_rules WHERE schemaname = $1 ORDER BY rulename", pg_schema)
    assert triggers == 1
    assert [r["rulename"] for r in rules] == ["events_no_delete", "events_no_update"]
    assert await pg_pool.execute(f"DELETE FROM {pg_schema}.events") == "DELETE 0", "the events stay append-only"
