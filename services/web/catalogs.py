"""The board's gettext catalogs: ``locale/<lang>/LC_MESSAGES/messages.po`` read at start and compiled in memory (no
compiled ``.mo`` is kept anywhere), and the extraction that refreshes them from the templates and the Python code.

The msgid of a text is its English sentence; English is the source language, so its catalog has empty msgstrs.
A pseudo-locale (every text wrapped in ``⟦…⟧``) is built from the same catalog for the tests: a page rendered in
it shows at once any text that did not go through the catalog.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from markupsafe import Markup

HERE = Path(__file__).parent
LOCALES = HERE / "locale"
DOMAIN = "messages"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2), "N_": None}
CONFIG = HERE / "babel.cfg"  # what is extracted, and how (also pybabel's -F)
PSEUDO = ("⟦", "⟧")


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "extract this text, translate it when shown"
    return message


def po_path(lang: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(lang: str) -> Catalog:
    with po_path(lang).open("rb") as f:
        return read_po(f, locale=lang, domain=DOMAIN)


def compiled(catalog: Catalog) -> gettext.GNUTranslations:
    """The catalog as Python's gettext reads it, compiled in memory (fuzzy entries left out, as msgfmt does)."""
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of ``lang`` (English: the msgids themselves)."""
    if lang == "en" or not po_path(lang).exists():
        return gettext.NullTranslations()
    return compiled(read(lang))


def pseudo(catalog: Catalog | None = None) -> gettext.GNUTranslations:
    """Every msgid of the catalog (default: the English one) translated as ``⟦msgid⟧``, placeholders kept."""
    source = catalog or read("en")
    out = Catalog(locale="en", domain=DOMAIN)
    for m in source:
        if not m.id:
            continue
        if isinstance(m.id, tuple | list):
            out.add(m.id, tuple(PSEUDO[0] + s + PSEUDO[1] for s in m.id), context=m.context)
        else:
            out.add(m.id, PSEUDO[0] + m.id + PSEUDO[1], context=m.context)
    return compiled(out)


@dataclass(frozen=True)
class Calls:
    """The translation calls a template gets (Jinja's newstyle gettext: values passed by name, escaped)."""

    gettext: Callable[..., Markup]
    ngettext: Callable[..., Markup]
    pgettext: Callable[..., Markup]

    def context(self) -> dict[str, Any]:
        return {"_": self.gettext, "gettext": self.gettext, "ngettext": self.ngettext, "pgettext": self.pgettext}


def calls(tr: gettext.NullTranslations) -> Calls:
    def gettext_(message: str, **values: Any) -> Markup:
        text = Markup(tr.gettext(message))  # noqa: S704 - the catalog is ours; values are escaped by Markup's %
        return text % values if values else text

    def ngettext_(singular: str, plural: str, num: int, **values: Any) -> Markup:
        values.setdefault("num", num)
        return Markup(tr.ngettext(singular, plural, num)) % values  # noqa: S704 - as gettext_

    def pgettext_(ctx: str, message: str, **values: Any) -> Markup:
        text = Markup(tr.pgettext(ctx, message))  # noqa: S704 - as gettext_
        return text % values if values else text

    return Calls(gettext_, ngettext_, pgettext_)


def extract(root: Path = HERE) -> Catalog:
    """Every translatable text of the board's templates and Python code, as a template catalog."""
    pot = Catalog(domain=DOMAIN, project="Pipelines board", charset="utf-8")
    with CONFIG.open() as f:
        methods, options = parse_mapping_cfg(f)  # type: ignore[no-untyped-call]
    for filename, lineno, message, comments, context in extract_from_dir(
        root, methods, options, KEYWORDS, comment_tags=("Translators:",), strip_comment_tags=True
    ):
        pot.add(message, None, [(f"services/web/{filename}", lineno)], auto_comments=comments, context=context)
    return pot


def refresh(known: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Extract again and update every catalog (vi keeps its translations). ``known``: texts the code does not
    name (English -> Vietnamese), added to the catalogs with their Vietnamese (the board passes none since the old
    word list is gone). Answers the vi msgids left
    untranslated or fuzzy: each needs a translator before the tests pass."""
    pot = extract()
    for msgid in known or {}:
        if msgid not in pot:
            pot.add(msgid, None, [("services/web/i18n.py", 0)])
    problems: dict[str, list[str]] = {}
    for lang in ("en", "vi"):
        catalog = read(lang) if po_path(lang).exists() else Catalog(locale=lang, domain=DOMAIN)
        catalog.update(pot, no_fuzzy_matching=True)
        catalog.project, catalog.version, catalog.fuzzy = "Pipelines board", "", False
        catalog.last_translator = catalog.language_team = "Pipelines <board@pipelines.invalid>"
        if lang == "vi":
            for m in catalog:
                if m.id and not m.string and isinstance(m.id, str) and known and m.id in known:
                    m.string = known[m.id]
            problems[lang] = [str(m.id) for m in catalog if m.id and (not m.string or m.fuzzy)]
        po_path(lang).parent.mkdir(parents=True, exist_ok=True)
        with po_path(lang).open("wb") as f:
            write_po(f, catalog, width=120, omit_header=False, ignore_obsolete=True, sort_output=False)
    translations.cache_clear()
    return problems
