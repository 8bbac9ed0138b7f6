"""Read models that fold a batch in memory (decision 0030): the rows a batch touches read by key in one statement
per table, changed event by event in Python, written back in one or two statements per table, in the runner's
transaction. Any split of a history leaves the same tables; a failure raises, and the runner applies the batch
again one event at a time to find the event.

Two levels, one set of SQL builders.

**The statements** (``read_sql``, ``insert_sql``, ``upsert_sql``, ``update_sql``, ``delete_sql``; ``read`` and
``write`` run them), for a read model that keeps its own state while folding. Columns are ``{name: PostgreSQL
type}``, the key first. Rows travel as one array per column through ``unnest``, which flattens an array of arrays:
a ``text[]`` column travels as text, each value an array literal (``{"a","b \\"c\\""}``, cast back: no subquery
per row), a ``jsonb`` column as JSON text, any other array column as a JSON array turned back in SQL; a NULL array
arrives empty (the columns are ``NOT NULL DEFAULT '{}'``)::

    LEADS = {"lead_id": "uuid", "status": "text", "segments": "text[]"}
    rows = await read(conn, read_sql("leads", LEADS), {lead_id, ...})        # {lead_id: {column: value}}
    ... fold the batch into rows, collecting the changed ones ...
    await write(conn, upsert_sql("leads", LEADS), LEADS, changed.values())  # INSERT … ON CONFLICT DO UPDATE

A statement given rows with one key twice fails (``ON CONFLICT DO UPDATE`` cannot change a row twice): fold to
one row per key first.

**The fold's state** (``Table``, ``Rows``), built on those statements, for a read model whose events each did one
statement on a row: each event becomes the call that says what its statement said, and ``flush`` writes the table
back (a ``delete_sql`` for the rows gone, an ``upsert_sql`` for the rest)::

    USERS = Table("users", {"user_id": "text", "team_id": "text", "roles": "text[]", "active": "boolean"})

    async def apply(conn, facts):
        users = await USERS.rows(conn, {f.event.user_id for f in facts})
        for fact in facts:
            match fact.event:
                case UserRegistered() as e:
                    users.insert(USERS.new(user_id=e.user_id, team_id=e.team_id, roles=list(e.roles), active=True))
                case UserMovedToTeam() as e:
                    users.update(e.user_id, team_id=e.new)  # nothing when the user has no row
        await users.flush(conn)

``insert`` is ``INSERT … ON CONFLICT DO NOTHING`` (the first row stays), ``update`` is ``UPDATE … WHERE key``
(no row: nothing), ``put`` replaces the row, ``delete`` deletes it: a batch of one does what the statements did
event by event. A key may be several columns (``Table(…, key=("currency", "effective_from"))``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from shared.store.db import Conn, identifier

Row = dict[str, Any]
Columns = dict[str, str]  # column: its PostgreSQL type; the key's column(s) first
Key = Any  # the key column's value, or a tuple of them for a key of several columns


# ---------------------------------------------------------------------------------------------------- statements
def _travels_as_json(kind: str) -> bool:
    return kind == "jsonb" or kind.endswith("[]")


def _wire(kind: str) -> str:
    """The array element type a column travels as."""
    return "text" if _travels_as_json(kind) else kind


def _value(name: str, kind: str) -> str:
    """The SQL that turns the unnested value back into the column's type."""
    if kind == "jsonb":
        return f"t.{name}::jsonb"
    if kind == "text[]":
        return f"t.{name}::text[]"
    if kind.endswith("[]"):
        return f"ARRAY(SELECT jsonb_array_elements_text(t.{name}::jsonb))::{kind}"
    return f"t.{name}"


def _unnest(columns: Columns) -> str:
    arrays = ", ".join(f"${i}::{_wire(k)}[]" for i, k in enumerate(columns.values(), 1))
    return f"unnest({arrays}) AS t({', '.join(identifier(c) for c in columns)})"


def _key(columns: Collection[str], key: str | Sequence[str] | None) -> tuple[str, ...]:
    if key is None:
        return (next(iter(columns)),)
    return (key,) if isinstance(key, str) else tuple(key)


def _keys(columns: Collection[str], key: tuple[str, ...]) -> tuple[str, str]:
    """For a key of several columns: (the unnest of the key arrays as ``k``, the join condition on it)."""
    kinds = [columns[c] if isinstance(columns, dict) else "text" for c in key]
    arrays = ", ".join(f"${i}::{kind}[]" for i, kind in enumerate(kinds, 1))
    on = " AND ".join(f"t.{c} = k.{c}" for c in key)
    return f"unnest({arrays}) AS k({', '.join(identifier(c) for c in key)})", on


def read_sql(table: str, columns: Collection[str], key: str | Sequence[str] | None = None) -> str:
    """The rows whose ``key`` (default: the first column) is one of $1 (an array of the key's type); a key of
    several columns: one of the tuples of $1, $2, … (one array per key column)."""
    keys = _key(columns, key)
    if len(keys) == 1:
        kind = columns[keys[0]] if isinstance(columns, dict) else "text"
        return f"SELECT {', '.join(columns)} FROM {identifier(table)} WHERE {keys[0]} = ANY($1::{kind}[])"
    unnest, on = _keys(columns, keys)
    return f"SELECT {', '.join(f't.{c}' for c in columns)} FROM {identifier(table)} t JOIN {unnest} ON {on}"


def delete_sql(table: str, columns: Collection[str], key: str | Sequence[str] | None = None) -> str:
    """The rows whose ``key`` (default: the first column) is one of $1 (a key of several columns: of the tuples
    of $1, $2, …) deleted."""
    keys = _key(columns, key)
    if len(keys) == 1:
        kind = columns[keys[0]] if isinstance(columns, dict) else "text"
        return f"DELETE FROM {identifier(table)} WHERE {keys[0]} = ANY($1::{kind}[])"
    unnest, on = _keys(columns, keys)
    return f"DELETE FROM {identifier(table)} t USING {unnest} WHERE {on}"


def insert_sql(table: str, columns: Columns, *, key: Sequence[str] = (), nothing: bool = False) -> str:
    """Rows given as one array per column, inserted; ``nothing``: a row whose ``key`` is taken is left out; else
    with ``key`` a row whose key is taken replaces the other columns of the stored one (a row of key columns
    only: left out)."""
    listed = ", ".join(identifier(c) for c in columns)
    values = ", ".join(_value(c, k) for c, k in columns.items())
    sql = f"INSERT INTO {identifier(table)} ({listed}) SELECT {values} FROM {_unnest(columns)}"
    rest = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    if nothing or (key and not rest):
        return sql + (f" ON CONFLICT ({', '.join(key)}) DO NOTHING" if key else " ON CONFLICT DO NOTHING")
    if key:
        sql += f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {rest}"
    return sql


def upsert_sql(table: str, columns: Columns, key: Sequence[str] | None = None) -> str:
    """Rows inserted, or replacing the stored row with their key (default: the first column)."""
    return insert_sql(table, columns, key=key or (next(iter(columns)),))


def update_sql(table: str, columns: Columns, key: Sequence[str] | None = None) -> str:
    """The stored rows with the rows' keys (default: the first column) get the rows' other columns; a row whose
    key is not stored changes nothing."""
    key = key or (next(iter(columns)),)
    sets = ", ".join(f"{c} = {_value(c, k)}" for c, k in columns.items() if c not in key)
    match = " AND ".join(f"x.{c} = t.{c}" for c in key)
    return f"UPDATE {identifier(table)} AS x SET {sets} FROM {_unnest(columns)} WHERE {match}"


async def read(conn: Conn, sql: str, keys: Iterable[Hashable]) -> dict[Any, Row]:
    """Rows by their first column, from a ``read_sql`` statement."""
    listed = list(keys)
    return {r[0]: dict(r) for r in await conn.fetch(sql, listed)} if listed else {}


def _encode(kind: str, v: Any) -> Any:
    if kind == "text[]":
        return _text_array(v)
    if v is None or not _travels_as_json(kind):
        return v
    return json.dumps(v if kind == "jsonb" else list(v), ensure_ascii=False)


def _text_array(values: Iterable[Any] | None) -> str:
    """A ``text[]`` literal: each element quoted, its backslashes and quotes escaped (commas, braces, blanks and
    the word NULL are then plain text), a None element NULL; None is ``{}``."""
    if values is None:
        return "{}"
    quoted = ("NULL" if e is None else '"' + str(e).replace("\\", "\\\\").replace('"', '\\"') + '"' for e in values)
    return "{" + ",".join(quoted) + "}"


async def write(conn: Conn, sql: str, columns: Columns, rows: Iterable[Row]) -> int:
    """``rows`` (dicts with every column) through one ``insert_sql``/``upsert_sql``/``update_sql`` statement of
    ``columns``; returns how many rows were given."""
    listed = list(rows)
    if listed:
        await conn.execute(sql, *(_column(k, [r[c] for r in listed]) for c, k in columns.items()))
    return len(listed)


def _column(kind: str, values: list[Any]) -> list[Any]:
    """One column's values as its array travels: as they are unless the column travels as text."""
    return [_encode(kind, v) for v in values] if _travels_as_json(kind) else values


# ---------------------------------------------------------------------------------------------- the fold's state
@dataclass(frozen=True)
class Table:
    """A read model's table: its columns with their PostgreSQL types (every column the rows carry), its key (the
    first column unless named) and the values a new row starts with (the DDL's defaults; the rest None)."""

    name: str
    columns: Columns
    key: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        identifier(self.name)
        for c in self.columns:
            identifier(c)
        if not self.key:
            object.__setattr__(self, "key", (next(iter(self.columns)),))
        assert set(self.key) <= set(self.columns), self.key
        assert not any(_travels_as_json(self.columns[c]) for c in self.key), self.key
        assert set(self.defaults) <= set(self.columns), self.defaults

    def new(self, **values: Any) -> Row:
        """A new row: ``values`` over the defaults (unknown columns refused)."""
        unknown = set(values) - set(self.columns)
        assert not unknown, f"{self.name} has no {sorted(unknown)}"
        return {c: values[c] if c in values else self.defaults.get(c) for c in self.columns}

    def key_of(self, row: Row) -> Key:
        return row[self.key[0]] if len(self.key) == 1 else tuple(row[k] for k in self.key)

    async def rows(self, conn: Conn, keys: Iterable[Key]) -> Rows:
        """The rows of ``keys`` (absent: None), to change and flush."""
        rows = Rows(self)
        await rows.load(conn, keys)
        return rows

    @cached_property
    def read_sql(self) -> str:
        return read_sql(self.name, self.columns, self.key)

    @cached_property
    def delete_sql(self) -> str:
        return delete_sql(self.name, self.columns, self.key)

    @cached_property
    def upsert_sql(self) -> str:
        return upsert_sql(self.name, self.columns, self.key)

    def key_arrays(self, keys: Collection[Key]) -> list[list[Any]]:
        """``keys`` as the statements take them: one array per key column."""
        if len(self.key) == 1:
            return [list(keys)]
        return [[k[i] for k in keys] for i in range(len(self.key))]


class Rows:
    """The rows of one table a batch reads and changes (None: no row), written back by ``flush``."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.rows: dict[Key, Row | None] = {}
        self.dirty: set[Key] = set()

    async def load(self, conn: Conn, keys: Iterable[Key]) -> None:
        """Read the rows of the keys not read yet."""
        wanted = {k for k in keys if k is not None and k not in self.rows}
        if not wanted:
            return
        t = self.table
        for r in await conn.fetch(t.read_sql, *t.key_arrays(wanted)):
            row = dict(r)
            self.rows[t.key_of(row)] = row
        for k in wanted:
            self.rows.setdefault(k, None)

    def get(self, key: Key) -> Row | None:
        assert key in self.rows, f"{self.table.name}: {key!r} was not loaded"
        return self.rows[key]

    def insert(self, row: Row) -> bool:
        """The row, unless its key has one (``ON CONFLICT DO NOTHING``); whether it was inserted."""
        key = self.table.key_of(row)
        if self.get(key) is not None:
            return False
        self.rows[key] = row
        self.dirty.add(key)
        return True

    def put(self, row: Row) -> None:
        """The row, replacing any with its key."""
        key = self.table.key_of(row)
        self.rows[key] = row
        self.dirty.add(key)

    def update(self, key: Key, **changes: Any) -> Row | None:
        """``UPDATE … SET changes WHERE key``: the row changed, or None (no row: nothing)."""
        row = self.get(key)
        if row is not None:
            row.update(changes)
            self.dirty.add(key)
        return row

    def changed(self, key: Key) -> None:
        """The row of ``key`` was changed in place."""
        self.dirty.add(key)

    def delete(self, key: Key) -> None:
        if key not in self.rows:
            self.rows[key] = None
        elif self.rows[key] is None:
            return
        self.rows[key] = None
        self.dirty.add(key)

    async def flush(self, conn: Conn) -> None:
        """The changes in two statements at most: the rows deleted, then the rows inserted or changed."""
        t = self.table
        gone = [k for k in self.dirty if self.rows[k] is None]
        kept = [row for k in self.dirty if (row := self.rows[k]) is not None]
        if gone:
            await conn.execute(t.delete_sql, *t.key_arrays(gone))
        await write(conn, t.upsert_sql, t.columns, kept)
        self.dirty.clear()
