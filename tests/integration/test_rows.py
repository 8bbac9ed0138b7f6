"""shared/messaging/rows.py on real PostgreSQL: a batch folded through ``Table``/``Rows`` leaves the table the
per-event statements it stands for leave (``insert`` = ``ON CONFLICT DO NOTHING``, ``update`` = ``UPDATE … WHERE
key``, ``put`` = replace, ``delete``), for a key of one column and of two; and the statements themselves keep the
wire conventions (``text[]`` as an array literal, ``jsonb`` and other arrays as JSON text, NULL and empty arrays,
text beyond ASCII), the literal's escaping checked on strings made to break it."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from shared.messaging.rows import (
    Rows,
    Table,
    delete_sql,
    insert_sql,
    read,
    read_sql,
    update_sql,
    upsert_sql,
    write,
)

pytestmark = pytest.mark.pg

USERS = Table("users", {"user_id": "uuid", "name": "text", "roles": "text[]", "n": "integer"}, defaults={"n": 0})
RATES = Table("rates", {"currency": "text", "day": "date", "per_vnd": "numeric"}, key=("currency", "day"))
DDL = """
CREATE TABLE {p}users (user_id uuid PRIMARY KEY, name text, roles text[] NOT NULL DEFAULT '{{}}', n integer);
CREATE TABLE {p}rates (currency text, day date, per_vnd numeric, PRIMARY KEY (currency, day));
"""
NAMES = ["a", "Nguyễn Văn Ánh", 'quote " and \\ slash', ""]
ROLES: list[list[str] | None] = [["sales"], [], None, ["quản lý", "x y", "sales"]]


def operations(seed: int) -> list[tuple[str, Table, Any, dict[str, Any]]]:
    """A random run of per-event changes on a few keys of each table (keys repeat: creations twice, updates and
    deletions of rows never created, re-creations after a deletion)."""
    rng = random.Random(seed)
    users = [uuid.UUID(int=i) for i in range(1, 5)]
    rates = [(c, date(2026, 1, d)) for c in ("USD", "EUR") for d in (1, 2)]
    ops: list[tuple[str, Table, Any, dict[str, Any]]] = []
    for _ in range(60):
        table, key = rng.choice([(USERS, rng.choice(users)), (RATES, rng.choice(rates))])
        if table is USERS:
            values: dict[str, Any] = {
                "name": rng.choice(NAMES),
                "roles": rng.choice(ROLES),
                "n": rng.randrange(-3, 1000),
            }
        else:
            values = {"per_vnd": rng.choice([Decimal(1), Decimal(25_000), Decimal("26123.5")])}
        ops.append((rng.choice(["insert", "update", "put", "delete"]), table, key, values))
    return ops


def _new(table: Table, key: Any, values: dict[str, Any]) -> dict[str, Any]:
    return table.new(**dict(zip(table.key, key if isinstance(key, tuple) else (key,), strict=True)), **values)


def _statement(op: str, table: Table, key: Any, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """The per-event SQL an operation stands for (the rows module's meaning), on the ``old_`` tables."""
    keys = key if isinstance(key, tuple) else (key,)
    if values.get("roles", []) is None:
        values = dict(values, roles=[])  # a NULL array travels as an empty one (the column: NOT NULL DEFAULT '{}')
    match = " AND ".join(f"{c} = ${i}" for i, c in enumerate(table.key, 1))
    if op == "delete":
        return f"DELETE FROM old_{table.name} WHERE {match}", list(keys)
    if op == "update":
        sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(values, len(keys) + 1))
        return f"UPDATE old_{table.name} SET {sets} WHERE {match}", [*keys, *values.values()]
    row = _new(table, key, values)
    marks = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    rest = ", ".join(f"{c} = EXCLUDED.{c}" for c in row if c not in table.key)
    conflict = "DO NOTHING" if op == "insert" else f"DO UPDATE SET {rest}"
    sql = f"INSERT INTO old_{table.name} ({', '.join(row)}) VALUES ({marks}) ON CONFLICT ({', '.join(table.key)})"
    return f"{sql} {conflict}", list(row.values())


async def _fold(conn: asyncpg.Connection, ops: list[tuple[str, Table, Any, dict[str, Any]]]) -> None:
    """The same run as one batch: each table's rows loaded once, changed in memory, flushed once."""
    batch: dict[str, Rows] = {}
    for table in (USERS, RATES):
        batch[table.name] = await table.rows(conn, {key for _, t, key, _ in ops if t is table})
    for op, table, key, values in ops:
        rows = batch[table.name]
        if op == "insert":
            rows.insert(_new(table, key, values))
        elif op == "put":
            rows.put(_new(table, key, values))
        elif op == "update":
            rows.update(key, **values)
        else:
            rows.delete(key)
    for rows in batch.values():
        await rows.flush(conn)


@pytest.mark.parametrize("seed", range(3))
async def test_a_folded_batch_leaves_the_tables_its_statements_leave(pg_conn: asyncpg.Connection, seed: int) -> None:
    await pg_conn.execute(DDL.format(p="") + DDL.format(p="old_"))
    ops = operations(seed)
    # some rows stored before the batch, so that it loads, changes and deletes stored rows too
    stored = operations(seed + 100)[:20]
    for op in stored:
        sql, args = _statement(*op)
        await pg_conn.execute(sql, *args)
    await _fold(pg_conn, stored)
    for op in ops:
        sql, args = _statement(*op)
        await pg_conn.execute(sql, *args)
    await _fold(pg_conn, ops)
    for name, order in (("users", "user_id"), ("rates", "currency, day")):
        folded = [dict(r) for r in await pg_conn.fetch(f"SELECT * FROM {name} ORDER BY {order}")]
        assert folded == [dict(r) for r in await pg_conn.fetch(f"SELECT * FROM old_{name} ORDER BY {order}")]
        assert folded, name


async def test_the_statements_keep_arrays_json_and_first_rows(pg_conn: asyncpg.Connection) -> None:
    cols = {"id": "uuid", "tags": "text[]", "doc": "jsonb", "n": "integer"}
    await pg_conn.execute("CREATE TABLE t (id uuid PRIMARY KEY, tags text[], doc jsonb, n integer)")
    ids = [uuid.uuid4() for _ in range(3)]
    rows: list[dict[str, Any]] = [
        {"id": ids[0], "tags": ["Đà Nẵng", "a,b", '"'], "doc": {"k": ["ư", 1, None]}, "n": 1},
        {"id": ids[1], "tags": [], "doc": None, "n": None},
        {"id": ids[2], "tags": None, "doc": [1, "two"], "n": 3},
    ]
    assert await write(pg_conn, upsert_sql("t", cols), cols, rows) == 3
    got = await read(pg_conn, read_sql("t", cols), [*ids, uuid.uuid4()])
    assert [got[i]["tags"] for i in ids] == [["Đà Nẵng", "a,b", '"'], [], []]  # a NULL array arrives empty
    assert [got[i]["n"] for i in ids] == [1, None, 3]
    docs = {r["id"]: r["doc"] for r in await pg_conn.fetch("SELECT id, doc::text AS doc FROM t")}
    assert [None if docs[i] is None else json.loads(docs[i]) for i in ids] == [r["doc"] for r in rows]
    # first wins with ``nothing``; an update of a key never stored changes nothing
    await write(pg_conn, insert_sql("t", cols, key=("id",), nothing=True), cols, [dict(rows[0], n=9)])
    await write(
        pg_conn,
        update_sql("t", {"id": "uuid", "n": "integer"}),
        {"id": "uuid", "n": "integer"},
        [
            {"id": ids[1], "n": 7},
            {"id": uuid.uuid4(), "n": 8},
        ],
    )
    await pg_conn.execute(delete_sql("t", cols), [ids[2]])
    assert {r["id"]: r["n"] for r in await pg_conn.fetch("SELECT id, n FROM t")} == {ids[0]: 1, ids[1]: 7}
    # a table of key columns only: an upsert of a stored key leaves it as it is
    keys = {"a": "text", "b": "integer"}
    await pg_conn.execute("CREATE TABLE k (a text, b integer, PRIMARY KEY (a, b))")
    for _ in range(2):
        await write(pg_conn, upsert_sql("k", keys, key=("a", "b")), keys, [{"a": "x", "b": 1}])
    assert await pg_conn.fetchval("SELECT count(*) FROM k") == 1


# strings that break a text[] literal written carelessly: quotes, backslashes, commas, braces, blanks, NULL-looking
HARD = [
    '"', "\\", '\\"', '"\\', "a,b", "{", "}", "{a,b}", "{}", '{"x"}', "NULL", "null", "Null", '"NULL"', "\\N",
    "", " ", "  lead and trail  ", "\t\n\r", "'", "''", "ARRAY['x']", "a\\,b", "a b,c{d}e\"f\\g",
    "Đà Nẵng", "quản lý", "😀 emoji", "e\u0301 combining", "\u00a0nbsp", "x" * 3000,
]  # fmt: skip


def random_hard(rng: random.Random) -> str:
    return "".join(rng.choice('"\\{},NUL ul\t\u00e0😀x') for _ in range(rng.randrange(0, 12)))


async def test_text_arrays_keep_every_string(pg_conn: asyncpg.Connection) -> None:
    cols = {"id": "integer", "tags": "text[]", "ns": "integer[]", "doc": "jsonb"}
    await pg_conn.execute("CREATE TABLE h (id integer PRIMARY KEY, tags text[] NOT NULL, ns integer[], doc jsonb)")
    rng = random.Random(7)
    arrays: list[Sequence[str | None] | None] = [
        HARD, [], None, [None], ["NULL", None, "null"], [""], ["", ""], *[[s] for s in HARD],
        *[[random_hard(rng) for _ in range(rng.randrange(0, 6))] for _ in range(200)],
    ]  # fmt: skip
    rows = [
        {"id": i, "tags": a, "ns": [i, -i, None] if i % 3 else None, "doc": {"tags": a}} for i, a in enumerate(arrays)
    ]
    await write(pg_conn, upsert_sql("h", cols), cols, rows)
    want = {r["id"]: (r["tags"] if r["tags"] is not None else []) for r in rows}  # a NULL array arrives empty
    got = await read(pg_conn, read_sql("h", cols), want)
    assert {i: r["tags"] for i, r in got.items()} == want
    assert {i: r["ns"] for i, r in got.items()} == {r["id"]: r["ns"] or [] for r in rows}  # other arrays as before
    assert {i: json.loads(r["doc"]) for i, r in got.items()} == {r["id"]: r["doc"] for r in rows}
    # equal in PostgreSQL too, to the same lists sent as arrays
    for r in rows:
        assert await pg_conn.fetchval("SELECT tags = $2::text[] FROM h WHERE id = $1", r["id"], want[r["id"]])
    # and through an UPDATE: every row gets the arrays of another
    shifted = [{"id": r["id"], "tags": arrays[(i + 1) % len(arrays)]} for i, r in enumerate(rows)]
    update = {"id": "integer", "tags": "text[]"}
    await write(pg_conn, update_sql("h", update), update, shifted)
    got = await read(pg_conn, read_sql("h", cols), want)
    assert {i: r["tags"] for i, r in got.items()} == {
        r["id"]: r["tags"] if r["tags"] is not None else [] for r in shifted
    }
