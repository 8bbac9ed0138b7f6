"""A cell read as its column's type, or the reason it cannot be (``CellError``): the report's "reason" column.

A cell is a string (CSV) or what openpyxl gives (str, int, float, datetime, date, bool). Formula injection is
refused before anything else: a cell that a spreadsheet would run as a formula (``=cmd|' /C calc'!A0``, ``@SUM(…)``,
``+1+cmd``, ``-2+3``) is never passed on, whatever its column's type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from shared.imports.mapping import Column

MAX_CELL_CHARS = 10_000  # any cell: longer is refused whatever its column (a column's `max` may be smaller)
DEFAULT_TEXT_MAX = 2000  # as a command's free text (shared.core.limits.MAX_TEXT_CHARS)
FORMULA_START = re.compile(r"^\s*[=+\-@]\s*\S")
# What may start with + or - and is no formula: a signed number ("-5", "+1.5e3"), a phone ("+84 90 123 45 67"),
# a negative amount written "-1.234,50"
PLAIN = re.compile(r"^\s*[+-]?[\d\s.,()/]+$")
MAX_AMOUNT = Decimal(10**15)
# The formats most exports write, read by ``datetime.fromisoformat`` when a cell has their zero-padded ASCII shape:
# it gives what ``strptime`` gives for such text (the same moment, or an error for the same impossible dates) about
# ten times faster. Any other text (single digits, other digits) goes to ``strptime``.
_ISO_SHAPES = {
    "%Y-%m-%d": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
    "%Y-%m-%d %H:%M": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}\Z"),
    "%Y-%m-%d %H:%M:%S": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\Z"),
}


class CellError(ValueError):
    """The cell cannot be read as its column's type; the message is the report's reason."""


@dataclass(frozen=True)
class Context:
    """What reading a cell needs beyond its column: the mapping's zone, owners and the default owner."""

    timezone: str
    owners: dict[str, dict[str, str | None]]
    default_owner: dict[str, str | None] | None = None


def is_formula(text: str) -> bool:
    """Whether a spreadsheet would evaluate this text (OWASP CSV injection): it starts with = + - @ (or a tab or
    carriage return) and is not a plain signed number or phone."""
    return bool(FORMULA_START.match(text)) and not (text.lstrip()[:1] in "+-" and PLAIN.match(text))


def read(column: Column, raw: Any, ctx: Context) -> Any:
    """The cell's value for the row's fields, ``None`` when empty (after ``default``)."""
    if isinstance(raw, str):
        if len(raw) > MAX_CELL_CHARS:
            raise CellError(f"longer than {MAX_CELL_CHARS} characters")
        if is_formula(raw):
            raise CellError("formula injection: a cell starting with =, +, -, @ that is not a plain number is refused")
        raw = raw.strip()
    if raw is None or raw == "":
        raw = column.options.get("default")
        if raw is None or raw == "":
            return None
    return READERS[column.type](column.options, raw, ctx)


def _text(options: dict[str, Any], raw: Any, ctx: Context) -> str:
    text = _plain(raw)
    limit = int(options.get("max", DEFAULT_TEXT_MAX))
    if len(text) > limit:
        raise CellError(f"longer than {limit} characters")
    return text


def _plain(raw: Any) -> str:
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, datetime | date):
        return raw.isoformat()
    return str(raw)


def _decimal(options: dict[str, Any], raw: Any) -> Decimal:
    if isinstance(raw, bool):
        raise CellError(f"not a number: {raw!r}")
    if isinstance(raw, int | float):
        value = Decimal(str(raw))
    else:
        text = str(raw).replace("\u00a0", " ").strip()
        thousands, decimal = options.get("thousands", ","), options.get("decimal", ".")
        if thousands:
            text = text.replace(thousands, "")
        text = text.replace(" ", "")
        if decimal != ".":
            if "." in text:
                raise CellError(f"not a number written with {decimal!r} for decimals: {str(raw)[:40]!r}")
            text = text.replace(decimal, ".")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise CellError(f"not a number: {str(raw)[:40]!r}") from None
    if not value.is_finite() or abs(value) >= MAX_AMOUNT:
        raise CellError(f"not a number in range: {str(raw)[:40]!r}")
    return value


def _number(options: dict[str, Any], raw: Any, ctx: Context) -> str:
    value = _decimal(options, raw)
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


def _integer(options: dict[str, Any], raw: Any, ctx: Context) -> int:
    value = _decimal(options, raw)
    if value != value.to_integral():
        raise CellError(f"not a whole number: {str(raw)[:40]!r}")
    return int(value)


def _money(options: dict[str, Any], raw: Any, ctx: Context) -> dict[str, str]:
    # the currency is filled in by the row (the `currency` column or `default_currency`): see rows.py
    return {"amount": _number(options, raw, ctx)}


def _parse_time(options: dict[str, Any], raw: Any) -> datetime:
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, date):
        return datetime.combine(raw, time())
    text = str(raw).strip()
    formats = options.get("formats") or []
    for fmt in formats:
        shape = _ISO_SHAPES.get(fmt)
        try:
            if shape is not None and shape.match(text):
                return datetime.fromisoformat(text)
            return datetime.strptime(text, fmt)  # noqa: DTZ007 — the zone is put on it after, from the mapping
        except ValueError:
            continue
    if not formats or "iso" in formats:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    shown = ", ".join(f for f in formats if f != "iso") or "ISO 8601"
    raise CellError(f"not a date/time in the format {shown}: {text[:40]!r}")


def _datetime(options: dict[str, Any], raw: Any, ctx: Context) -> str:
    moment = _parse_time(options, raw)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(options.get("timezone", ctx.timezone)))
    if not 1900 <= moment.year <= 2199:
        raise CellError(f"a year out of range: {moment.year}")
    return moment.isoformat()


def _date(options: dict[str, Any], raw: Any, ctx: Context) -> str:
    day = _parse_time(options, raw).date()
    if not 1900 <= day.year <= 2199:
        raise CellError(f"a year out of range: {day.year}")
    return day.isoformat()


def _enum(options: dict[str, Any], raw: Any, ctx: Context) -> str:
    text = _plain(raw).strip()
    value = options["map"].get(text.casefold(), options.get("other"))
    if value is None:
        known = ", ".join(sorted(options["map"]))[:200]
        raise CellError(f"unknown value {text[:60]!r} (known: {known})")
    return str(value)


def _owner(options: dict[str, Any], raw: Any, ctx: Context) -> dict[str, str | None]:
    text = _plain(raw).strip()
    found = ctx.owners.get(text.casefold()) or ctx.default_owner
    if found is None:
        raise CellError(f"unknown owner {text[:60]!r}: add it to the mapping's [owners] or give --owner")
    return dict(found)


def _ref(options: dict[str, Any], raw: Any, ctx: Context) -> dict[str, dict[str, str]]:
    return {"$import": {"kind": str(options["kind"]), "key": _key(raw)}}


def _key(raw: Any) -> str:
    text = _plain(raw).strip()
    if not 1 <= len(text) <= 128 or not text.isprintable():
        raise CellError("a row id must be 1 to 128 printable characters")
    return text


def _list(options: dict[str, Any], raw: Any, ctx: Context) -> list[str]:
    items = [part.strip() for part in _plain(raw).split(options.get("separator", ","))]
    limit = int(options.get("max", DEFAULT_TEXT_MAX))
    if any(len(item) > limit for item in items):
        raise CellError(f"an item longer than {limit} characters")
    return [item for item in items if item]


def utc_now() -> datetime:
    return datetime.now(UTC)


READERS = {
    "text": _text,
    "integer": _integer,
    "number": _number,
    "money": _money,
    "date": _date,
    "datetime": _datetime,
    "enum": _enum,
    "owner": _owner,
    "ref": _ref,
    "list": _list,
}
