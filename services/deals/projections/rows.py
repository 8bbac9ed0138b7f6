"""Read models that fold a batch in memory: their rows read by key in one statement, written back in one."""

from __future__ import annotations

import uuid
from typing import Any

from shared.store.db import Conn

Row = dict[str, Any]
Columns = dict[str, str]  # column: its PostgreSQL type; the first column is the key


def read_sql(table: str, columns: Columns, where: str = "") -> str:
    """The rows whose key is one of $1 (an array)."""
    key = next(iter(columns))
    return f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = ANY($1::{columns[key]}[]){where}"


def upsert_sql(table: str, columns: Columns) -> str:
    """Rows given as one array per column: inserted, or replacing the row with their key (the first column)."""
    key, *rest = columns
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(columns.values(), 1))
    return f"""INSERT INTO {table} ({", ".join(columns)}) SELECT * FROM unnest({arrays})
               ON CONFLICT ({key}) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in rest)}"""


async def read(conn: Conn, sql: str, keys: set[uuid.UUID]) -> dict[uuid.UUID, Row]:
    """Rows by their key (the first column)."""
    return {r[0]: dict(r) for r in await conn.fetch(sql, list(keys))} if keys else {}


async def write(conn: Conn, sql: str, columns: Columns, rows: dict[uuid.UUID, Row]) -> None:
    """``rows`` through an ``upsert_sql`` statement of ``columns``, in one call."""
    if rows:
        await conn.execute(sql, *([r[c] for r in rows.values()] for c in columns))
