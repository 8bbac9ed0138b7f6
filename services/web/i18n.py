"""The board's languages: texts through gettext catalogs (``catalogs.py``: ``locale/<lang>/LC_MESSAGES/messages.po``,
the msgid being the English text), numbers, money and dates by Babel (``formats.py``), the domain's words
(``domain_words.py``).

A text is its English msgid: ``_("English")`` in templates, ``N_("English")`` for labels defined in Python (translated
where shown: ``_(label)``, ``word(label, lang)``); ids the APIs answer are named by ``domain_words``. There is no
hand-written word list any more; ``python -m services.web.i18n extract`` (``make catalogs``) refreshes the catalogs.
"""

from __future__ import annotations

import sys
from datetime import tzinfo
from decimal import Decimal
from typing import Any, Literal

from services.web import catalogs, domain_words, formats
from services.web.catalogs import N_

__all__ = ["LANGS", "N_", "Lang", "fmt", "gettext", "ngettext", "pick_lang", "word", "zone"]

Lang = Literal["en", "vi"]
LANGS: tuple[Lang, ...] = ("en", "vi")


def gettext(lang: str, message: str) -> str:
    """``message`` (an English msgid) in ``lang``."""
    return catalogs.translations(lang).gettext(message)


def ngettext(lang: str, singular: str, plural: str, n: int) -> str:
    return catalogs.translations(lang).ngettext(singular, plural, n)


def word(message: str, lang: Lang) -> str:
    """An English msgid (a label made with ``N_``) in ``lang``: ``gettext`` with the arguments the other way round."""
    return gettext(lang, message)


def pick_lang(asked: str | None, cookie: str | None, accept_language: str | None) -> Lang:
    """The query's ``lang`` first, then the cookie, then the browser's first choice; English otherwise."""
    for choice in (asked, cookie):
        if choice in LANGS:
            return "en" if choice == "en" else "vi"
    first = (accept_language or "").split(",")[0].strip().lower()
    return "vi" if first.startswith("vi") else "en"


def number(value: Any, lang: Lang, *, places: int | None = None) -> str:
    """A number as people write it: 1,234,567.5 in English, 1.234.567,5 in Vietnamese."""
    return formats.number(value, lang, places=places)


def _money(value: Any, lang: Lang, currency: str | None) -> str:
    if isinstance(value, dict):  # {currency: amount}, as the board sums each currency apart
        return " · ".join(formats.money(a, lang, c) for c, a in sorted(value.items())) or formats.money(0, lang)
    return formats.money(value, lang, currency)


def _scaled(value: Any, lang: Lang, places: int) -> str:
    return formats.number(value, lang, places=places)


FORMATS = {
    "pct": lambda v, lang: formats.percent(v, lang),  # a ratio 0..1 shown as a percentage
    "ratio": lambda v, lang: _scaled(v, lang, 2),
    "days": lambda v, lang: _scaled(v, lang, 1),
    "int": lambda v, lang: formats.number(v, lang),
    "date": lambda v, lang: formats.day(v, lang),
}


def fmt(
    value: Any,
    kind: str,
    lang: Lang,
    tz: tzinfo | None = None,
    *,
    currency: str | None = None,
    row: dict[str, Any] | None = None,
) -> str:
    """One cell's text. ``value`` is exactly what the API answered; only its writing changes (times in ``tz``,
    the business's time zone; money in ``currency``, else the row's, else the business's)."""
    if kind == "alert" and isinstance(row, dict):
        return domain_words.alert(row, lang, tz)
    if kind == "rule" and isinstance(
        value, str
    ):  # an API's refusal by its rule: its sentence, or "" for a rule the board has none for
        return domain_words.refusal(value, "", lang) if domain_words.rule_text(value) else ""
    if value is None:
        return "—"
    if kind == "bool":
        return gettext(lang, N_("yes") if value else N_("no"))
    if kind == "money":
        own = currency or (row.get("currency") if isinstance(row, dict) else None)
        return _money(value, lang, own if isinstance(own, str) else None)
    if kind in FORMATS and isinstance(value, int | float | str | Decimal):
        return FORMATS[kind](value, lang)
    if kind == "datetime" and isinstance(value, str):
        return formats.when(value, lang, tz)
    if kind in domain_words.KINDS and isinstance(value, str):
        return domain_words.label(kind, value, lang)
    if kind == "counts" and isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
    if kind == "list" and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def zone(tz: tzinfo, lang: Lang) -> str:
    """The business's time zone named, for the page: "Vietnam Time (GMT+7)"."""
    return formats.zone(tz, lang)


def main(argv: list[str]) -> int:
    """``python -m services.web.i18n extract``: extract the texts again, update the catalogs, list what vi lacks."""
    if argv[1:] != ["extract"]:
        print("usage: python -m services.web.i18n extract", file=sys.stderr)
        return 2
    problems = catalogs.refresh()
    for msgid in problems.get("vi", []):
        print(f"vi: untranslated or fuzzy: {msgid!r}", file=sys.stderr)
    return 1 if problems.get("vi") else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
