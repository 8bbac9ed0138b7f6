"""PostgreSQL connections: one asyncpg pool per process, JSON handled for jsonb, schema names checked.

A pool connection goes back to its pool without a reset query when the server has nothing to reset
(``reset_if_unsynced``): one round trip less per query (821722b), and never a session left inside a transaction.
"""

from __future__ import annotations

import json
import re
from typing import Any

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

# A connection of its own or one lent by a pool: both run queries the same way.
Conn = asyncpg.Connection | PoolConnectionProxy

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def identifier(name: str) -> str:
    """A schema or table name safe to put in SQL text (lower case letters, digits, underscores)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


_decode = msgspec.json.Decoder().decode


def json_loads(text: str) -> Any:
    """JSON read back from PostgreSQL: msgspec (several times json's speed: every replayed event's data and metadata
    pass here, decision 0031), json for what msgspec refuses and PostgreSQL accepts (a number beyond a float's
    range), so the values are the ones json.loads gives (integers of any size included)."""
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=lambda v: json.dumps(v, ensure_ascii=False), decoder=json_loads
    )
    await conn.set_type_codec("json", schema="pg_catalog", encoder=json.dumps, decoder=json_loads)


class SyncTrackingConnection(asyncpg.Connection):
    """A connection that knows whether its session may be inside a transaction asyncpg has not seen begin.

    asyncpg prepares a statement with Parse/Describe/Flush and runs it with Bind/Execute/Sync. PostgreSQL opens an
    implicit transaction at the Parse, with a snapshot, that only a Sync or a simple query ends; no ReadyForQuery
    reports it, so asyncpg's release (``Connection._reset``) believes the session idle. A statement stopped between
    the two leaves the session there: an argument asyncpg cannot encode (``DataError``, raised before the Bind is
    sent), or a cancellation landing after the Parse was answered. The next ``BEGIN ISOLATION LEVEL`` on it fails
    with ActiveSQLTransactionError (issue 23, item 9; tests/integration/test_pool_sessions.py).

    ``_synced`` is true only after a statement ran to its Sync: asyncpg's private ``_do_execute`` (every fetch,
    every execute with arguments) sets it, ``_get_statement`` (every Parse, ``prepare()``'s too) clears it. Should
    asyncpg rename ``_do_execute``, it stays false and every release resets (slower, never wrong: the tests say)."""

    _synced = False

    async def _get_statement(self, *args: Any, **kwargs: Any) -> Any:
        self._synced = False
        return await super()._get_statement(*args, **kwargs)  # type: ignore[misc]

    async def _do_execute(self, *args: Any, **kwargs: Any) -> Any:
        self._synced = False
        result = await super()._do_execute(*args, **kwargs)  # type: ignore[misc]
        self._synced = True
        return result


async def reset_if_unsynced(conn: asyncpg.Connection) -> None:
    """A pool's ``reset``: nothing after a statement that ran to its end, else asyncpg's own reset query, a simple
    query that also ends an implicit transaction. asyncpg rolls back the transactions it knows of before this.

    The services keep no session state on pool connections (``SET LOCAL``, transaction-level advisory locks; LISTEN
    only on the relay's own connection), so the reset query is needed only after a statement stopped midway."""
    if isinstance(conn, SyncTrackingConnection) and conn._synced:
        return
    await conn.execute(conn.get_reset_query())
    if isinstance(conn, SyncTrackingConnection):
        conn._synced = True


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any) -> asyncpg.Pool:
    """``reset=reset_if_unsynced`` skips the reset query when nothing needs it; asyncpg's default runs it always."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        connection_class=SyncTrackingConnection,
        **kwargs,
    )
    assert pool is not None
    return pool


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(dsn, **kwargs)
    await _init_connection(conn)
    return conn
