"""What a panel of the board is: one API query, the columns it shows of the answer, and the filters that make
the query. The panels of each page are in ``pages.py``.

A panel never computes a figure: it shows the API's answer for its query, cell by cell (``data-value`` holds
the value as the API gave it, the text is only how it is written), so every number on a page equals the API's.
The same definitions make the CSV exports. The filters a page takes (dates, period, team) become the query.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from services.web.catalogs import N_
from shared.core.limits import MAX_DAY, MIN_DAY
from shared.edge.auth import Principal

Kind = Literal["table", "kanban", "kpis"]
PERIOD = re.compile(r"^[12]\d{3}-(0[1-9]|1[0-2]|Q[1-4])$")
TEAM = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")
CARDS_SHOWN = 8  # a kanban column shows its first cards and "n more", a link to the whole column (``?more=<stage>``)
ROWS_SHOWN = 12  # a table shows its first rows and "n more", a link to all of them (``?more=<panel id>``)


class Said(str):  # a str with one more attribute, read by templates
    """A refusal's English detail (as logged and answered to scripts) carrying ``text``, the English msgid of the
    sentence a page shows in the user's language (``page.html``: the sentence, then the detail as "details")."""

    text: str

    def __new__(cls, detail: str, text: str) -> Said:
        said = super().__new__(cls, detail)
        said.text = text
        return said


class FilterError(ValueError):
    """A filter the user typed is not valid; the message names it, ``text`` says it to the user (an msgid)."""

    def __init__(self, detail: str, text: str = N_("Check the filters")) -> None:
        super().__init__(detail)
        self.text = text


@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    period: str
    as_of: date | None = None
    team: str | None = None
    owner: str | None = None
    deal: str | None = None
    more: str | None = None  # the kanban column shown whole (its stage), else each shows its first CARDS_SHOWN

    @classmethod
    def parse(cls, query: dict[str, str], today: date) -> Filters:
        def day(name: str, default: date | None) -> date | None:
            raw = query.get(name, "").strip()
            if not raw:
                return default
            try:
                return date.fromisoformat(raw)
            except ValueError:
                raise FilterError(
                    f"{name}: {raw[:40]!r} is not a date (YYYY-MM-DD)", N_("A date filter is not a date.")
                ) from None

        start = day("from", today.replace(month=1, day=1)) or today
        end = day("to", today + timedelta(days=1)) or today
        if end <= start:
            raise FilterError("to: must be after from", N_("The end date must be after the start date."))
        if not (MIN_DAY <= start <= MAX_DAY and MIN_DAY <= end <= MAX_DAY):
            raise FilterError(
                f"from, to: days {MIN_DAY} to {MAX_DAY}", N_("The dates are outside the years the board shows.")
            )
        period = query.get("period", "").strip() or f"{today:%Y-%m}"
        if not PERIOD.match(period):
            raise FilterError(
                f"period: {period[:40]!r} is not a month (2026-12) or a quarter (2027-Q1)",
                N_("The period is a month (2026-12) or a quarter (2027-Q1)."),
            )
        as_of = day("as_of", None)
        if as_of is not None and as_of > today:
            raise FilterError(
                "as_of: a date in the future has no recorded forecast yet",
                N_("A day in the future has no recorded forecast yet."),
            )
        names = {}
        for name in ("team", "owner"):
            value = query.get(name, "").strip() or None
            if value is not None and not TEAM.match(value):
                raise FilterError(
                    f"{name}: letters, digits and . _ @ - only", N_("A team or salesperson is not one the board knows.")
                )
            names[name] = value
        deal = query.get("deal", "").strip() or None
        if deal is not None and not re.fullmatch(r"[0-9a-fA-F-]{36}", deal):
            raise FilterError(f"deal: {deal[:40]!r} is not a deal id", N_("This is not a deal."))
        more = query.get("more", "").strip() or None
        if more is not None and not TEAM.match(more):
            raise FilterError("more: letters, digits and . _ @ - only", N_("This column is not one of the board's."))
        return cls(start=start, end=end, period=period, as_of=as_of, deal=deal, more=more, **names)

    def window(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}

    def as_query(self) -> dict[str, str]:
        """The filters as the page's own query string (for links, refreshes and exports)."""
        q = self.window() | {"period": self.period}
        for name in ("as_of", "team", "owner", "deal", "more"):
            value = getattr(self, name)
            if value is not None:
                q[name] = str(value)
        return q


@dataclass(frozen=True)
class Column:
    key: str  # a dotted path into one row of the answer
    label: str  # its English text, marked N_("…") for extraction; translated when shown (i18n.py, catalogs.py)
    kind: str = "text"  # how fmt writes it: text, int, money, pct, ratio, days, date, datetime, bool, counts, list,
    # an id labelled in the user's language (domain_words.KINDS: stage, status, source, activity, service, alert_kind),
    # or alert (the alert's sentence from its kind and parameters)


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    service: str  # whose API answers
    path: str
    columns: tuple[Column, ...]
    kind: Kind = "table"
    rows: str | None = ""  # "": the answer is the list; a key: its list (or one object); None: the answer is one row
    params: Callable[[Filters, Principal], dict[str, str] | None] = lambda f, p: {}
    cards: str | None = None  # kanban: the key of each column's items
    card_columns: tuple[Column, ...] = ()
    highlight: str | None = None  # a boolean key that marks a row or card (stuck, late)
    trigger: str = ""  # what live update refreshes it: a service's events, or "alerts"; defaults to service
    waits: bool = False  # the API takes `position` and answers only once its read model has applied it
    link: str | None = None  # a card's key that links to the deal's audit page
    href: str = "/audit?deal="  # where the link goes: this, then the card's ``link`` value (e.g. "/lead/")
    act: tuple[str, str] | None = None  # an action's form linked from the panel's header: (action id, its label)
    wide: bool = False
    first_cards: bool = False  # kanban: the API lists each column's first cards only (``cards``, ``whole_stage``)

    @property
    def on(self) -> str:
        return self.trigger or self.service


@dataclass(frozen=True)
class Page:
    id: str
    title: str
    panels: tuple[Panel, ...]
    filters: tuple[str, ...] = ()
    by_id: dict[str, Panel] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_id.update({p.id: p for p in self.panels})


def C(key: str, label: str, kind: str = "text") -> Column:  # noqa: N802 - a short constructor for the tables
    return Column(key, label, kind)


def value_at(row: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(row, dict):
            return None
        row = row.get(part)
    return row


def rows_of(answer: Any, panel: Panel) -> list[dict[str, Any]]:
    """The rows a panel shows, exactly as the API answered them."""
    found = answer if panel.rows in (None, "") else value_at(answer, panel.rows)
    if isinstance(found, list):
        return [r for r in found if isinstance(r, dict)]
    return [found] if isinstance(found, dict) else []
