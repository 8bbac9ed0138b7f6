"""A record made into the batch rows the services take (the contract's ``{"row", "kind", "key", "facts"}``), or
its bad cells: (row number, column, reason), nothing of such a record being sent.

Templates (a fact's ``body``, a row's ``key``): a string that is exactly ``"{field}"`` or ``"{field.sub}"`` puts
the field's value as it is (a string, a list, a dict such as money or a reference); an empty field leaves its key
out (and a dict left empty is left out); a string with text around its fields interpolates them as text (left out
if one is empty); ``{a|b}`` is the first of a and b that is not empty; ``{{`` and ``}}`` are literal braces;
anything else is literal.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from shared.imports import cells
from shared.imports.cells import CellError, Context
from shared.imports.mapping import Column, Fact, FileSpec, RowSpec, fold

NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
CHOICES = rf"{NAME}(?:\|{NAME})*"  # "{a|b}": the first of a, b that is not empty
PLACEHOLDER = re.compile(rf"\{{\{{|\}}\}}|\{{({CHOICES})\}}")
WHOLE = re.compile(rf"^\{{({CHOICES})\}}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
MISSING = object()
REFERENCE = "$import"


@dataclass(frozen=True)
class Bad:
    row: int
    column: str
    reason: str


@dataclass
class Built:
    """A row to send, and what maps a service's answer back to the file: its spec and which facts it made."""

    row: dict[str, Any]
    spec: RowSpec
    facts: list[int] = field(default_factory=list)  # indices in spec.facts of the facts sent


def read_fields(
    spec: FileSpec, cells_by_header: dict[str, Any], ctx: Context, number: int
) -> tuple[dict[str, Any], list[Bad]]:
    """The record's fields by the spec's columns, and its bad cells."""
    values: dict[str, Any] = {}
    bad: list[Bad] = []
    for column in spec.columns:
        raw = cells_by_header.get(column.key)
        try:
            value = cells.read(column, raw, ctx)
            if column.type == "money" and value is not None:
                value["currency"] = _currency(column, cells_by_header)
        except CellError as error:
            bad.append(Bad(number, column.header, str(error)))
            continue
        if value is None and column.required:
            bad.append(Bad(number, column.header, "empty: a value is required"))
        values[column.field] = value
    return values, bad


def _currency(column: Column, record: dict[str, Any]) -> str:
    header = column.options.get("currency")
    raw = record.get(_folded(header)) if header else None
    text = str(raw).strip().upper() if raw not in (None, "") else column.options.get("default_currency")
    if not text:
        raise CellError("no currency: the mapping names no currency column or default_currency")
    if not CURRENCY.match(str(text)):
        raise CellError(f"not a currency code (ISO 4217, three letters): {str(text)[:20]!r}")
    return str(text)


@functools.lru_cache(maxsize=1024)
def _folded(header: str) -> str:
    return fold(header)


def build(
    spec: FileSpec, number: int, record: dict[str, Any], ctx: Context, now: datetime
) -> tuple[list[Built], list[Bad]]:
    """The rows this record makes, or (none and) its bad cells."""
    values, bad = read_fields(spec, record, ctx, number)
    if bad:
        return [], bad
    headers = {c.field: c.header for c in spec.columns}
    built: list[Built] = []
    for row_spec in spec.rows:
        if not holds(row_spec.when, values):
            continue
        made, problems = _row(row_spec, values, headers, number, ctx, now)
        bad.extend(problems)
        if made is not None:
            built.append(made)
    return ([], bad) if bad else (built, [])


def _row(
    spec: RowSpec, values: dict[str, Any], headers: dict[str, str], number: int, ctx: Context, now: datetime
) -> tuple[Built | None, list[Bad]]:
    key = render(spec.key, values)
    key_column = headers.get(_fields_of(spec.key)[0], "") if _fields_of(spec.key) else ""
    if key is MISSING or not isinstance(key, str | int) or not 1 <= len(str(key)) <= 128:
        return None, [Bad(number, key_column, "no row id (1 to 128 characters)")]
    facts: list[dict[str, Any]] = []
    made = Built({"row": number, "kind": spec.kind, "key": str(key), "facts": facts}, spec)
    previous: tuple[datetime, str] | None = None
    for index, fact in enumerate(spec.facts):
        if not holds(fact.when, values):
            continue
        moment, column = _moment(fact, values, headers, ctx)
        if moment is None:
            if index == 0:
                return None, [Bad(number, column, "empty: the time the row's first fact occurred is required")]
            continue
        if moment > now:
            return None, [Bad(number, column, f"in the future: {moment.isoformat()}")]
        if previous is not None and moment < previous[0]:
            return None, [Bad(number, column, f"before {previous[1]} ({previous[0].isoformat()}): facts go in order")]
        previous = (moment, column)
        body = render(fact.body, values)
        facts.append(
            {"command": fact.command, "occurred_at": moment.isoformat(), "body": {} if body is MISSING else body}
        )
        made.facts.append(index)
    if not facts:
        return None, [Bad(number, key_column, "the row makes no fact")]
    return made, []


def _moment(fact: Fact, values: dict[str, Any], headers: dict[str, str], ctx: Context) -> tuple[datetime | None, str]:
    for name in fact.at:
        value = values.get(name)
        if value:
            moment = datetime.fromisoformat(str(value))
            if moment.tzinfo is None:  # a date column: its day's start in the mapping's zone
                moment = datetime.combine(moment.date(), time(), ZoneInfo(ctx.timezone))
            return moment, headers.get(name, name)
    return None, headers.get(fact.at[0], fact.at[0])


def holds(cond: dict[str, Any] | None, values: dict[str, Any]) -> bool:
    if cond is None:
        return True
    value = values.get(cond["field"])
    if "equals" in cond:
        return bool(value == cond["equals"])
    if "in" in cond:
        return value in cond["in"]
    if "not_in" in cond:
        return value is not None and value not in cond["not_in"]
    return value not in (None, "", [])


def _lookup(names: str, values: dict[str, Any]) -> Any:
    for name in names.split("|"):
        found = _one(name, values)
        if found is not MISSING:
            return found
    return MISSING


def _one(name: str, values: dict[str, Any]) -> Any:
    value: Any = values
    for part in name.split("."):
        if not isinstance(value, dict) or value.get(part) in (None, "", []):
            return MISSING
        value = value[part]
    return value


def render(template: Any, values: dict[str, Any]) -> Any:
    """The template filled from the record's fields (``MISSING``: left out)."""
    if isinstance(template, str):
        whole = WHOLE.match(template)
        if whole:
            return _lookup(whole.group(1), values)
        missing = False

        def fill(m: re.Match[str]) -> str:
            nonlocal missing
            if m.group(0) in ("{{", "}}"):
                return m.group(0)[0]
            found = _lookup(m.group(1), values)
            missing = missing or found is MISSING
            return "" if found is MISSING else str(found)

        text = PLACEHOLDER.sub(fill, template)
        return MISSING if missing else text
    if isinstance(template, dict):
        out = {k: v for k, v in ((k, render(v, values)) for k, v in template.items()) if v is not MISSING}
        if REFERENCE in template and (not isinstance(out.get(REFERENCE), dict) or "key" not in out[REFERENCE]):
            return MISSING  # a reference to no row is no reference
        return out if out or not template else MISSING
    if isinstance(template, list):
        return [v for v in (render(item, values) for item in template) if v is not MISSING]
    return template


def _fields_of(template: Any) -> list[str]:
    if isinstance(template, str):
        return [f.split(".")[0] for m in PLACEHOLDER.finditer(template) if m.group(1) for f in m.group(1).split("|")]
    if isinstance(template, dict):
        return [f for v in template.values() for f in _fields_of(v)]
    if isinstance(template, list):
        return [f for v in template for f in _fields_of(v)]
    return []


def column_of(built: Built, where: str, columns: Iterable[Column]) -> str:
    """The file's column a service's error field (``facts[1].body.stage_id``, ``facts[0].occurred_at``) came from,
    else the field as the service named it."""
    m = re.match(r"^facts\[(\d+)\](?:\.(occurred_at|body)(?:\.(.*))?)?$", where)
    if not m or int(m.group(1)) >= len(built.facts):
        return where
    fact = built.spec.facts[built.facts[int(m.group(1))]]
    headers = {c.field: c.header for c in columns}
    if m.group(2) == "occurred_at":
        return next((headers[f] for f in fact.at if f in headers), where)
    template: Any = fact.body
    for part in (m.group(3) or "").split("."):
        if isinstance(template, dict) and part in template:
            template = template[part]
        elif isinstance(template, list) and part.isdigit() and int(part) < len(template):
            template = template[int(part)]
        else:
            break
    names = _fields_of(template) or list(fact.at)  # a fact refused as a whole: its time's column
    return next((headers[n] for n in names if n in headers), where)
