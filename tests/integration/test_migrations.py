"""Versioned migrations (shared.store.migrations): applied once by one process, recorded, never changed afterwards."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import asyncpg
import pytest

from shared.messaging.projections import Projection
from shared.messaging.relay import OutboxRelay
from shared.messaging.runner import ProjectionRunner
from shared.ops.stack import Endpoints
from shared.store.keystore import PostgresKeyStore
from shared.store.migrations import Migration, MigrationChecksumError, apply, checksum
from shared.store.postgres import PostgresEventStore
from testkit.projection import totals_projection
from testkit.services import TEST_KEYRINGS

pytestmark = pytest.mark.pg

COUNTED = [
    Migration("test.0001", "a table", "CREATE TABLE runs (n integer NOT NULL); INSERT INTO runs VALUES (1)"),
    Migration("test.0002", "a second row", "INSERT INTO runs VALUES (2)"),
]


async def recorded(pool: asyncpg.Pool, schema: str) -> list[str]:
    rows = await pool.fetch(f"SELECT version FROM {schema}.schema_migrations ORDER BY version")
    return [r["version"] for r in rows]


async def test_migrations_racing_from_many_processes_are_applied_once_in_order(
    pg_pool: asyncpg.Pool, pg_schema: str
) -> None:
    outcomes = await asyncio.gather(*(apply(pg_pool, pg_schema, COUNTED) for _ in range(12)))
    assert sorted(v for applied in outcomes for v in applied) == ["test.0001", "test.0002"], "each once, in all"
    assert [r["n"] for r in await pg_pool.fetch(f"SELECT n FROM {pg_schema}.runs")] == [1, 2]
    rows = await pg_pool.fetch(f"SELECT version, name, checksum, applied_at FROM {pg_schema}.schema_migrations")
    assert {r["version"]: r["checksum"] for r in rows} == {m.version: checksum(m.sql) for m in COUNTED}
    assert all(r["applied_at"] is not None for r in rows)

    more = [*COUNTED, Migration("test.0003", "a third row", "INSERT INTO runs VALUES (3)")]
    outcomes = await asyncio.gather(*(apply(pg_pool, pg_schema, more) for _ in range(12)))
    assert sorted(v for applied in outcomes for v in applied) == ["test.0003"], "only the new one"
    assert await apply(pg_pool, pg_schema, more) == []


async def test_every_part_started_together_in_many_processes_makes_its_tables_once(
    pg_pool: asyncpg.Pool, pg_schema: str, endpoints: Endpoints
) -> None:
    def parts() -> list[PostgresEventStore | PostgresKeyStore | OutboxRelay | ProjectionRunner]:
        store = PostgresEventStore(pg_pool, pg_schema)
        relay = OutboxRelay(
            store, service="t", topic="t", bootstrap_servers="unused:9092", database_url=endpoints.database_url
        )
        runner = ProjectionRunner(
            pg_pool, totals_projection("t"), namespace=pg_schema, bootstrap_servers="x", dead_letter_topic="x"
        )
        keys = PostgresKeyStore(pg_pool, b"k" * 32, keyring_dir=TEST_KEYRINGS, schema=pg_schema)
        return [store, keys, relay, runner]

    await asyncio.gather(*(part.setup() for _ in range(8) for part in parts()))
    assert await recorded(pg_pool, pg_schema) == [
        "eventstore.0001",
        "keystore.0001",
        "keystore.0002",
        "projections.0001",
        "relay.0001",
    ]
    generation = f"{pg_schema}__totals__g1"
    versions = await recorded(pg_pool, generation)
    assert versions[1] == "projections.progress.0001"
    assert versions[0].startswith("projections.ddl.")
    assert await pg_pool.fetchval(f"SELECT count(*) FROM {pg_schema}.projection_generations") == 1
    await pg_pool.execute(f"DROP SCHEMA {generation} CASCADE")


async def test_a_migration_whose_sql_changed_after_it_was_applied_is_refused(
    pg_pool: asyncpg.Pool, pg_schema: str
) -> None:
    await apply(pg_pool, pg_schema, COUNTED)
    edited = [COUNTED[0], Migration("test.0002", "a second row", "INSERT INTO runs VALUES (22)")]
    with pytest.raises(MigrationChecksumError, match=r"test\.0002.*must not change"):
        await apply(pg_pool, pg_schema, edited)
    with pytest.raises(MigrationChecksumError):  # also when another migration is missing (the slow path)
        await apply(pg_pool, pg_schema, [*edited, Migration("test.0003", "more", "SELECT 1")])
    assert await recorded(pg_pool, pg_schema) == ["test.0001", "test.0002"], "nothing applied"

    store = PostgresEventStore(pg_pool, pg_schema)
    await store.setup()
    await pg_pool.execute(
        f"UPDATE {pg_schema}.schema_migrations SET checksum = 'edited' WHERE version = 'eventstore.0001'"
    )
    with pytest.raises(MigrationChecksumError, match=r"eventstore\.0001"):
        await store.setup()


async def test_a_changed_projection_ddl_is_applied_once_to_the_existing_generation(
    pg_pool: asyncpg.Pool, pg_schema: str
) -> None:
    first = totals_projection("t")
    runner = ProjectionRunner(pg_pool, first, namespace=pg_schema, bootstrap_servers="x", dead_letter_topic="x")
    await runner.setup()
    generation = runner.schema(1)
    try:
        grown = Projection(
            name=first.name,
            topics=first.topics,
            ddl=first.ddl + "CREATE TABLE IF NOT EXISTS extra (k text PRIMARY KEY);",
            apply=first.apply,
            accepts=first.accepts,
        )
        for _ in range(2):
            await ProjectionRunner(
                pg_pool, grown, namespace=pg_schema, bootstrap_servers="x", dead_letter_topic="x"
            ).setup()
        assert await pg_pool.fetchval(f"SELECT to_regclass('{generation}.extra') IS NOT NULL")
        versions = await recorded(pg_pool, generation)
        assert len([v for v in versions if v.startswith("projections.ddl.")]) == 2, "the old DDL and the new"
    finally:
        await pg_pool.execute(f"DROP SCHEMA {generation} CASCADE")


async def test_a_migration_waiting_for_a_hot_table_gives_up_after_its_lock_timeout(
    pg_pool: asyncpg.Pool, pg_schema: str
) -> None:
    await apply(pg_pool, pg_schema, COUNTED)
    alter = Migration("test.0003", "a column", "ALTER TABLE runs ADD COLUMN note text")
    async with pg_pool.acquire() as writer, writer.transaction():
        await writer.execute(f"INSERT INTO {pg_schema}.runs VALUES (9)")
        with pytest.raises(asyncpg.LockNotAvailableError):
            await asyncio.wait_for(apply(pg_pool, pg_schema, [*COUNTED, alter], lock_timeout_s=0.2), 5)
    assert await recorded(pg_pool, pg_schema) == ["test.0001", "test.0002"], "not recorded: tried again next start"
    assert await apply(pg_pool, pg_schema, [*COUNTED, alter]) == ["test.0003"]


async def test_a_schema_made_before_migrations_upgrades_and_then_starts_without_ddl(
    pg_pool: asyncpg.Pool, pg_schema: str, endpoints: Endpoints
) -> None:
    from tests.integration.test_restart_under_load import OLD_SCHEMA_SQL

    store = PostgresEventStore(pg_pool, pg_schema)
    await pg_pool.execute(OLD_SCHEMA_SQL.format(s=pg_schema, channel=store.channel))
    old_objects = await pg_pool.fetch(
        "SELECT relname, relkind FROM pg_class WHERE relnamespace = $1::regnamespace ORDER BY relname", pg_schema
    )
    await store.setup()
    await PostgresKeyStore(pg_pool, b"k" * 32, keyring_dir=TEST_KEYRINGS, schema=pg_schema).setup()
    assert await recorded(pg_pool, pg_schema) == ["eventstore.0001", "keystore.0001", "keystore.0002"]
    new_objects = await pg_pool.fetch(  # keystore.0002 adds the keyring's state (decision 0015)
        """SELECT relname, relkind FROM pg_class WHERE relnamespace = $1::regnamespace
           AND relname NOT LIKE 'schema_migrations%' AND relname NOT LIKE 'keyring_state%' ORDER BY relname""",
        pg_schema,
    )
    assert new_objects == old_objects, "nothing made twice, nothing missing"

    await PostgresEventStore(cast(asyncpg.Pool, OnlyReads(pg_pool)), pg_schema).setup()  # and from now on: a read


class OnlyReads:
    """A pool that answers plain queries and fails a test that takes a connection for a transaction (DDL)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        assert sql.lstrip().upper().startswith("SELECT"), sql
        return await self.pool.fetch(sql, *args)

    def acquire(self) -> Any:
        raise AssertionError("a start that found its migrations applied took a connection for DDL")


async def test_a_start_that_finds_its_migrations_applied_only_reads(pg_store: PostgresEventStore) -> None:
    await PostgresEventStore(cast(asyncpg.Pool, OnlyReads(pg_store.pool)), pg_store.schema).setup()
    with pytest.raises(AssertionError, match="took a connection for DDL"):  # the check itself works
        await PostgresEventStore(cast(asyncpg.Pool, OnlyReads(pg_store.pool)), f"{pg_store.schema}_new").setup()
