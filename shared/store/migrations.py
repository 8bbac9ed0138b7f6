"""Versioned schema migrations on PostgreSQL, each applied once by one process; and retrying a failed start.

Every component that owns tables (the event store, the relay, the key store, the projection registry, each read
model generation, a service's own tables) gives its ``Migration`` list to ``apply`` in its ``setup``. A schema
records what was applied in its ``schema_migrations`` table: version, name, checksum of the SQL, when.

- **A start that finds everything applied runs no DDL and takes no lock**: one plain SELECT of
  ``schema_migrations``. A process starting while appends hold their locks on the events table starts at once
  (issue 19: re-running ``CREATE OR REPLACE TRIGGER`` at every start waited for an AccessExclusiveLock on the events
  table, every append queued behind it, and a start under load could die of a deadlock).
- Otherwise, an advisory lock of the schema taken before one transaction begins (processes starting together take
  turns), ``schema_migrations`` created if missing, what is applied read again, and each missing migration run in
  the given order and recorded. ``lock_timeout`` bounds every table lock the migrations wait for: a migration that
  would queue behind hot writes (and hold new ones up behind it) fails fast with ``LockNotAvailableError``, and
  ``retry_setup`` tries the start again later.
- An applied migration whose SQL changed is refused (``MigrationChecksumError``): it is history; a change of the
  schema is a new migration.

Versions are text, unique within a schema: ``<component>.<NNNN>`` (``eventstore.0001``, ``relay.0001``), since
several components keep their tables in one schema. The first migration of a component written before this
module existed makes what its old ``setup`` made, IF NOT EXISTS throughout, so on a schema the old code made it
changes nothing and is recorded. Decision 0013.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import structlog

from shared.store.db import identifier

log = structlog.get_logger(__name__)
T = TypeVar("T")

LOCK_TIMEOUT_S = 2.0  # the longest a migration waits for a table lock (appends queue behind a waiting DDL lock)

TABLE_SQL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


def checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


@dataclass(frozen=True)
class Migration:
    version: str  # unique within the schema: <component>.<NNNN>
    name: str  # what it does, for people
    sql: str  # run with search_path set to the schema

    @property
    def checksum(self) -> str:
        return checksum(self.sql)


class MigrationChecksumError(RuntimeError):
    """A migration already applied to this schema has different SQL now."""


def _missing(schema: str, migrations: Sequence[Migration], applied: dict[str, str]) -> list[Migration]:
    for m in migrations:
        recorded = applied.get(m.version)
        if recorded is not None and recorded != m.checksum:
            raise MigrationChecksumError(
                f"migration {m.version} ({m.name}) was applied to schema {schema} with checksum {recorded}, but "
                f"its SQL now has checksum {m.checksum}: an applied migration must not change; add a new one"
            )
    return [m for m in migrations if m.version not in applied]


async def applied(pool: asyncpg.Pool, schema: str) -> dict[str, str] | None:
    """Version → checksum of what ``schema`` has applied; None when it has no ``schema_migrations`` yet."""
    try:
        rows = await pool.fetch(f"SELECT version, checksum FROM {identifier(schema)}.schema_migrations")
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return None
    return {r["version"]: r["checksum"] for r in rows}


async def apply(
    pool: asyncpg.Pool, schema: str, migrations: Sequence[Migration], *, lock_timeout_s: float = LOCK_TIMEOUT_S
) -> list[str]:
    """Apply to ``schema`` the ``migrations`` it has not applied, in order; returns the versions this call applied."""
    s = identifier(schema)
    if len({m.version for m in migrations}) != len(migrations):
        raise ValueError(f"migration versions repeat: {[m.version for m in migrations]}")
    done = await applied(pool, s)
    if done is not None and not _missing(s, migrations, done):
        return []  # the fast path: no DDL, no lock
    async with pool.acquire() as conn:
        # A session lock taken before the transaction begins: the transaction starts only once the process migrating
        # before it has committed, so it sees everything that one made (taken inside the transaction, a CREATE SCHEMA
        # IF NOT EXISTS after it could still fail on the schema the other had just created).
        await conn.execute("SELECT pg_advisory_lock(hashtext('pipelines.migrations'), hashtext($1))", s)
        try:
            async with conn.transaction():
                # a process waits for the one migrating, which itself waits for no table long
                await conn.execute(
                    "SELECT set_config('lock_timeout', $1, true), set_config('search_path', $2, true)",
                    f"{round(lock_timeout_s * 1000)}ms",
                    f"{s}, public",
                )
                await conn.execute(TABLE_SQL.format(s=s))
                rows = await conn.fetch(f"SELECT version, checksum FROM {s}.schema_migrations")
                missing = _missing(s, migrations, {r["version"]: r["checksum"] for r in rows})
                for m in missing:
                    await conn.execute(m.sql)
                    await conn.execute(
                        f"INSERT INTO {s}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        m.version,
                        m.name,
                        m.checksum,
                    )
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext('pipelines.migrations'), hashtext($1))", s)
    for m in missing:
        log.info("migration.applied", schema=s, version=m.version, name=m.name)
    return [m.version for m in missing]


# What a start may meet and get past by trying again: a deadlock or serialization failure, a lock not granted
# within lock_timeout, the server refusing, closing or not yet accepting connections.
TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.TransactionRollbackError,
    asyncpg.LockNotAvailableError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    OSError,  # connection refused or reset; TimeoutError too
)


async def retry_setup(
    step: Callable[[], Awaitable[T]],
    what: str,
    *,
    attempts: int = 8,
    first_delay_s: float = 0.5,
    max_delay_s: float = 10.0,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """``await step()``, tried again after a transient error (``TRANSIENT``) with exponential backoff and jitter,
    each retry logged, at most ``attempts`` times in all (the last error is raised); other errors at once."""
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return await step()
        except TRANSIENT as exc:
            if attempt == attempts:
                log.error("start.failed", what=what, attempts=attempts, error=repr(exc))
                raise
            wait = random.uniform(delay / 2, delay)
            log.warning("start.retry", what=what, attempt=attempt, of=attempts, in_s=round(wait, 2), error=repr(exc))
            await sleep(wait)
            delay = min(delay * 2, max_delay_s)
    raise AssertionError("unreachable")
