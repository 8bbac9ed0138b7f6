"""PostgreSQL connections: one asyncpg pool per process, JSON handled for jsonb, schema names checked."""

from __future__ import annotations

import json
import re
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection of its own or one lent by a pool: both run queries the same way.
Conn = asyncpg.Connection | PoolConnectionProxy

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def identifier(name: str) -> str:
    """A schema or table name safe to put in SQL text (lower case letters, digits, underscores)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=lambda v: json.dumps(v, ensure_ascii=False), decoder=json.loads
    )
    await conn.set_type_codec("json", schema="pg_catalog", encoder=json.dumps, decoder=json.loads)


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection, **kwargs)
    assert pool is not None
    return pool


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(dsn, **kwargs)
    await _init_connection(conn)
    return conn
