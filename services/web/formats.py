"""How numbers, money, percentages, dates and times are written in each language, by Babel (CLDR): ``88.000.000 ₫``
and ``07/12/2026 04:31`` in Vietnamese, ``₫88,000,000`` and ``7 Dec 2026, 04:31`` in English. Babel separates a
figure from its unit with a no-break space, so a figure never wraps inside itself."""

from __future__ import annotations

import functools
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime, get_timezone_location
from babel.numbers import format_currency, format_decimal, format_percent

from shared.core.money import DEFAULT_CURRENCY

DATE = {"en": "d MMM yyyy", "vi": "dd/MM/yyyy"}
NBSP = "\u00a0"
DATETIME = {"en": "d MMM yyyy, HH:mm", "vi": "dd/MM/yyyy HH:mm"}


def nowrap(text: str) -> str:
    """Spaces inside one figure (a date, an amount) made no-break: the figure never wraps inside itself."""
    return text.replace(" ", NBSP)


def decimal(value: Any) -> Decimal | None:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def number(value: Any, lang: str, *, places: int | None = None) -> str:
    """1,234,567.5 in English, 1.234.567,5 in Vietnamese; ``places`` fixes the decimals shown."""
    return _number(str(value), lang, places)


@functools.lru_cache(maxsize=4096)  # a page writes the same counts many times
def _number(value: str, lang: str, places: int | None) -> str:
    d = decimal(value)
    if d is None:
        return value
    if places is None:
        return format_decimal(d, format="#,##0.###", locale=locale_of(lang), decimal_quantization=False)
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return format_decimal(d, format=pattern, locale=locale_of(lang))


@functools.lru_cache(maxsize=16)
def locale_of(lang: str) -> Locale:
    """Babel's locale, parsed once (parsing it on every figure was a third of a page's formatting time)."""
    return Locale.parse(lang)


def money(value: Any, lang: str, currency: str | None = None) -> str:
    """An amount in its currency (the business's, VND, unless another is named), with the currency's own decimals."""
    return _money(str(value), lang, (currency or DEFAULT_CURRENCY).upper())


@functools.lru_cache(maxsize=4096)  # a page writes the same amounts many times (zeros, a stage's totals)
def _money(value: str, lang: str, currency: str) -> str:
    d = decimal(value)
    if d is None:
        return value
    return format_currency(d, currency, locale=locale_of(lang))


def percent(ratio: Any, lang: str) -> str:
    """A ratio 0..1 as a percentage with one decimal: 83.3% / 83,3%."""
    d = decimal(ratio)
    if d is None:
        return str(ratio)
    return format_percent(d, format="#,##0.0%", locale=locale_of(lang))


def when(value: Any, lang: str, tz: tzinfo | None) -> str:
    """An instant in the business's time zone (named once on the page, see ``zone``)."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if tz is not None and at.tzinfo is not None:
        at = at.astimezone(tz)
    return nowrap(format_datetime(at.replace(tzinfo=None), DATETIME.get(lang, DATETIME["en"]), locale=locale_of(lang)))


def day(value: Any, lang: str) -> str:
    """A calendar day: 07/12/2026 in Vietnamese, 7 Dec 2026 in English."""
    try:
        d = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return nowrap(format_date(d, DATE.get(lang, DATE["en"]), locale=locale_of(lang)))


def zone(tz: tzinfo, lang: str, at: datetime | None = None) -> str:
    """The time zone by name and offset: "Vietnam Time (GMT+7)", "giờ Việt Nam (GMT+7)"."""
    offset = (at or datetime.now(tz)).astimezone(tz).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    gmt = f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "")
    key = str(getattr(tz, "key", tz))
    if key in {"UTC", "GMT", "Etc/UTC", "Etc/GMT", "Universal", "Zulu"}:  # no region: its own name
        name = "UTC" if lang == "en" else "Giờ UTC"  # CLDR has no better name for it ("Unknown Region (UTC)")
    else:
        name = get_timezone_location(tz, locale=lang, return_city=False)
    if lang == "vi":
        name = name[:1].lower() + name[1:]
    return f"{name} ({gmt})"
