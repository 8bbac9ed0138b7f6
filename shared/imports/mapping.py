"""A source's mapping file: which export files it knows (matched by their header), each column's field and type,
and what one line makes (its kind, its key and its facts, each a command with its occurred time and body).

The format is documented in docs/IMPORTS.md; the shipped ones are ``mappings/<source>.toml``. A malformed mapping
raises ``MappingError`` naming where (it is the user's file for a generic import: never a traceback).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAPPINGS = Path(__file__).parent / "mappings"
TYPES = frozenset({"text", "integer", "number", "money", "date", "datetime", "enum", "owner", "ref", "list"})
# The kinds a batch may carry, the service that imports each, in the order they are sent: what others refer to first
# (organisations before their people, both before the deals, leads and orders naming them, activities last).
KINDS: dict[str, str] = {
    "organisation": "directory",
    "person": "directory",
    "lead": "leads",
    "spend": "leads",
    "deal": "deals",
    "order": "production",
    "activity": "agenda",
}
SERVICE_ORDER = ("directory", "leads", "deals", "production", "agenda")
SOURCE_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
COLUMN_KEYS = frozenset(
    {"field", "type", "required", "max", "default", "decimal", "thousands", "formats", "timezone", "currency",
     "default_currency", "enum", "map", "other", "kind", "separator"}
)  # fmt: skip


def fold(header: str) -> str:
    """A header as it is matched: trimmed, inner blanks as one space, any case (products vary a column's case across
    versions and between their references and their exports)."""
    return " ".join(str(header).split()).casefold()


class MappingError(ValueError):
    """The mapping file is malformed; the message names the file and the place."""


@dataclass(frozen=True)
class Column:
    header: str
    field: str
    type: str = "text"
    required: bool = False
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # the type's options (decimal, formats, map…)

    @functools.cached_property
    def key(self) -> str:
        """The header as a record's cells are keyed (``fold``)."""
        return fold(self.header)


@dataclass(frozen=True)
class Fact:
    command: str
    at: tuple[str, ...]  # fields holding its occurred time: the first non-empty one
    body: dict[str, Any]
    when: dict[str, Any] | None = None  # {"field", and one of "equals", "in", "not_in"} or just {"field"}


@dataclass(frozen=True)
class RowSpec:
    kind: str
    key: str  # a template
    facts: tuple[Fact, ...]
    when: dict[str, Any] | None = None

    @property
    def service(self) -> str:
        return KINDS[self.kind]


@dataclass(frozen=True)
class FileSpec:
    name: str
    match: tuple[str, ...]
    columns: tuple[Column, ...]
    rows: tuple[RowSpec, ...]
    sheet: str | None = None

    def required(self) -> list[str]:
        return [c.header for c in self.columns if c.required]

    def rank(self) -> tuple[int, int]:
        """Where a file of this spec goes among the files of one run: by the first service its rows go to, then by
        its first kind (organisations before people)."""
        kinds = list(KINDS)
        return min((SERVICE_ORDER.index(r.service), kinds.index(r.kind)) for r in self.rows)


@dataclass(frozen=True)
class Mapping:
    path: Path
    title: str
    timezone: str
    sources: tuple[str, ...]
    files: tuple[FileSpec, ...]
    owners: dict[str, dict[str, str | None]]  # casefolded source value -> {"user", "team"}
    enums: dict[str, dict[str, str]]  # name -> casefolded source value -> ours

    def spec_for(self, header: list[str]) -> FileSpec | None:
        """The file spec whose ``match`` columns are all in this header (the first such one)."""
        present = {fold(h) for h in header}
        return next((f for f in self.files if {fold(m) for m in f.match} <= present), None)


def builtin(source: str) -> Path:
    """The mapping shipped for a source (``mappings/<source>.toml``)."""
    if not SOURCE_NAME.match(source):
        raise MappingError(f"source {source!r}: lower-case letters, digits, '-' and '_', at most 32")
    path = MAPPINGS / f"{source}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in MAPPINGS.glob("*.toml"))
        raise MappingError(f"no mapping shipped for {source!r} (shipped: {', '.join(known) or 'none'}): give --mapping")
    return path


def load(path: Path) -> Mapping:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(f"{path}: {exc}") from exc
    return parse(raw, path)


def parse(raw: dict[str, Any], path: Path = Path("<mapping>")) -> Mapping:
    where = str(path)
    if raw.get("format", 1) != 1:
        raise MappingError(f"{where}: format {raw.get('format')!r} (this version reads format 1)")
    sources = raw.get("sources")
    if not isinstance(sources, list) or not sources or not all(isinstance(s, str) and s for s in sources):
        raise MappingError(f"{where}: `sources` must list where the columns come from (or say none was found)")
    timezone = _zone(raw.get("timezone", "Asia/Ho_Chi_Minh"), f"{where}: timezone")
    defaults = _table(raw.get("defaults", {}), f"{where}: [defaults]")
    enums = {
        name: {str(k).strip().casefold(): str(v) for k, v in _table(table, f"{where}: [enums.{name}]").items()}
        for name, table in _table(raw.get("enums", {}), f"{where}: [enums]").items()
    }
    owners = _owners(_table(raw.get("owners", {}), f"{where}: [owners]"), where)
    files = tuple(
        _file(name, _table(spec, f"{where}: [files.{name}]"), defaults, enums, f"{where}: [files.{name}]")
        for name, spec in _table(raw.get("files", {}), f"{where}: [files]").items()
    )
    if not files:
        raise MappingError(f"{where}: no [files.<name>] table: nothing to import")
    return Mapping(path, str(raw.get("title", path.stem)), timezone, tuple(sources), files, owners, enums)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MappingError(f"{where} must be a table")
    return value


def _zone(name: Any, where: str) -> str:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MappingError(f"{where}: unknown time zone {name!r}") from exc
    return str(name)


def _owners(table: dict[str, Any], where: str) -> dict[str, dict[str, str | None]]:
    owners: dict[str, dict[str, str | None]] = {}
    for name, value in table.items():
        if isinstance(value, str):
            owners[name.strip().casefold()] = {"user": value, "team": None}
        elif isinstance(value, dict) and isinstance(value.get("user"), str):
            owners[name.strip().casefold()] = {"user": value["user"], "team": value.get("team")}
        else:
            raise MappingError(f"{where}: {name!r} must be a user id or {{user = …, team = …}}")
    return owners


def _file(name: str, spec: dict[str, Any], defaults: dict[str, Any], enums: dict[str, Any], where: str) -> FileSpec:
    columns = tuple(
        _column(header, value, defaults, enums, f"{where} column {header!r}")
        for header, value in _table(spec.get("columns", {}), f"{where}.columns").items()
    )
    fields = {c.field for c in columns}
    match = spec.get("match") or [c.header for c in columns if c.required]
    if not isinstance(match, list) or not match:
        raise MappingError(f"{where}: `match` must list the header columns that identify this file")
    rows = spec.get("rows")
    if not isinstance(rows, list) or not rows:
        raise MappingError(f"{where}: no [[files.{name}.rows]]: what does a line make?")
    specs = tuple(_row(r, fields, f"{where}.rows[{i}]") for i, r in enumerate(rows))
    sheet = spec.get("sheet")
    return FileSpec(name, tuple(str(m) for m in match), columns, specs, str(sheet) if sheet else None)


def _column(header: str, value: Any, defaults: dict[str, Any], enums: dict[str, Any], where: str) -> Column:
    if isinstance(value, str):
        value = {"field": value}
    spec = dict(_table(value, where))
    unknown = set(spec) - COLUMN_KEYS
    if unknown:
        raise MappingError(f"{where}: unknown keys {sorted(unknown)}")
    kind = spec.pop("type", "text")
    if kind not in TYPES:
        raise MappingError(f"{where}: type {kind!r} is not one of {sorted(TYPES)}")
    name = spec.pop("field", None)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise MappingError(f"{where}: `field` must be a name (letters, digits, _)")
    required = bool(spec.pop("required", False))
    base = "number" if kind in ("integer", "money") else kind
    options = {**_table(defaults.get(base, {}), f"[defaults.{base}]"), **spec}
    if kind == "enum":
        table = options.get("map") or enums.get(str(options.get("enum")))
        if not isinstance(table, dict):
            raise MappingError(f'{where}: an enum needs `map = {{…}}` or `enum = "<name of an [enums] table>"`')
        options["map"] = {str(k).strip().casefold(): str(v) for k, v in table.items()}
    if kind == "ref" and options.get("kind") not in KINDS:
        raise MappingError(f"{where}: a ref needs `kind`, one of {sorted(KINDS)}")
    if "timezone" in options:
        _zone(options["timezone"], where)
    return Column(header.strip(), name, kind, required, options)


def _row(spec: Any, fields: set[str], where: str) -> RowSpec:
    spec = _table(spec, where)
    kind, key = spec.get("kind"), spec.get("key")
    if kind not in KINDS:
        raise MappingError(f"{where}: kind {kind!r} is not one of {sorted(KINDS)}")
    if not isinstance(key, str) or "{" not in key:
        raise MappingError(f'{where}: `key` must be a template naming the row\'s id column, e.g. "{{id}}"')
    facts = spec.get("facts")
    if not isinstance(facts, list) or not facts:
        raise MappingError(f"{where}: no [[…facts]]: a row makes at least the fact that creates it")
    made = tuple(_fact(f, fields, f"{where}.facts[{i}]") for i, f in enumerate(facts))
    return RowSpec(kind, key, made, _when(spec.get("when"), fields, where))


def _fact(spec: Any, fields: set[str], where: str) -> Fact:
    spec = _table(spec, where)
    command, at, body = spec.get("command"), spec.get("at"), spec.get("body", {})
    if not isinstance(command, str) or not re.fullmatch(r"[a-z_]{1,60}", command):
        raise MappingError(f"{where}: `command` must be a command name (open_deal, move_stage…)")
    times = (at,) if isinstance(at, str) else tuple(at) if isinstance(at, list) else ()
    if not times or not all(isinstance(t, str) and t in fields for t in times):
        raise MappingError(
            f"{where}: `at` must name the date/time field(s) of its occurred time, among {sorted(fields)}"
        )
    return Fact(command, times, _table(body, f"{where}.body"), _when(spec.get("when"), fields, where))


def _when(value: Any, fields: set[str], where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    cond = {"field": value} if isinstance(value, str) else _table(value, f"{where}.when")
    if cond.get("field") not in fields:
        raise MappingError(f"{where}.when: `field` must be one of {sorted(fields)}")
    if len(set(cond) & {"equals", "in", "not_in"}) > 1:
        raise MappingError(f"{where}.when: one of equals, in, not_in")
    return cond
