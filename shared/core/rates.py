"""Exchange rates as facts (issue 26, decision 0021): totals across currencies converted to VND, exactly.

A rate is the directory's fact ``RateSet{currency, per_vnd, effective_from}``: one unit of ``currency`` is worth
``per_vnd`` đồng from the day ``effective_from`` on (until the next rate of that currency takes effect). A fact in
another currency is converted at the rate in effect on its occurred day (the business time zone's day).

Exact: ``per_vnd`` is a Decimal (sent as a string); each amount × rate is an exact Decimal product, the products
are summed exactly, and only a total is rounded — once, half-even, to the đồng (VND has no minor unit). A total in
VND can therefore differ from the sum of the per-currency VND subtotals by at most half a đồng per currency.

A currency with no rate in effect on a fact's day is not converted: its amounts are still listed per currency, and
it is named in ``unconverted`` (the VND total then covers the other currencies only).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from shared.core.money import MINOR_UNITS, Money

BASE = "VND"
ROUNDING = "each total once, half-even, to the đồng, after summing the exact products"


def _vnd(amount: Decimal) -> str:
    return format(amount.quantize(Decimal(1), ROUND_HALF_EVEN), "f")


def _plain(amount: Decimal, currency: str) -> str:
    quantum = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    return format(amount.quantize(quantum, ROUND_HALF_EVEN), "f")


@dataclass(frozen=True)
class RateTable:
    """Per currency, its rates as ``(effective_from, per_vnd)`` sorted by day."""

    rates: Mapping[str, tuple[tuple[date, Decimal], ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[tuple[str, date, Decimal]]) -> RateTable:
        """From ``(currency, effective_from, per_vnd)`` rows (a later row for the same day replaces an earlier)."""
        by: dict[str, dict[date, Decimal]] = {}
        for currency, day, per_vnd in rows:
            by.setdefault(currency, {})[day] = Decimal(per_vnd)
        return cls({c: tuple(sorted(days.items())) for c, days in by.items()})

    def rate_on(self, currency: str, day: date) -> Decimal | None:
        """VND per unit of ``currency`` in effect on ``day`` (1 for VND; None: no rate took effect by then)."""
        if currency == BASE:
            return Decimal(1)
        table = self.rates.get(currency, ())
        i = bisect.bisect_right(table, day, key=lambda r: r[0])
        return table[i - 1][1] if i else None

    def to_vnd(self, amount: Decimal, currency: str, day: date) -> Decimal | None:
        """The exact VND value (unrounded) of ``amount`` of ``currency`` on ``day``; None: no rate."""
        rate = self.rate_on(currency, day)
        return None if rate is None else amount * rate

    def as_json(self) -> list[dict[str, str]]:
        return [
            {"currency": c, "effective_from": d.isoformat(), "per_vnd": format(r, "f")}
            for c, table in sorted(self.rates.items())
            for d, r in table
        ]


@dataclass
class Converted:
    """A total across currencies: each currency's own total, its VND value, and the VND total of those converted."""

    by_currency: dict[str, Decimal] = field(default_factory=dict)
    vnd_by_currency: dict[str, Decimal] = field(default_factory=dict)
    unconverted: set[str] = field(default_factory=set)

    def add(self, amount: Decimal, currency: str, day: date, rates: RateTable) -> None:
        self.by_currency[currency] = self.by_currency.get(currency, Decimal(0)) + amount
        vnd = rates.to_vnd(amount, currency, day)
        if vnd is None:
            self.unconverted.add(currency)
        else:
            self.vnd_by_currency[currency] = self.vnd_by_currency.get(currency, Decimal(0)) + vnd

    @property
    def vnd(self) -> Decimal:
        """The exact VND total of what was converted."""
        return sum((v for c, v in self.vnd_by_currency.items() if c not in self.unconverted), Decimal(0))

    def complete(self) -> bool:
        return not self.unconverted

    def as_json(self) -> dict[str, Any]:
        return {
            "currency": BASE,
            "total": _vnd(self.vnd),
            "by_currency": {
                c: {
                    "amount": _plain(a, c),
                    "vnd": None if c in self.unconverted else _vnd(self.vnd_by_currency.get(c, Decimal(0))),
                }
                for c, a in sorted(self.by_currency.items())
            },
            "unconverted": sorted(self.unconverted),
        }


def convert(amounts: Iterable[tuple[Money, date]], rates: RateTable) -> Converted:
    """``(amount, occurred day)`` facts totalled per currency and in VND (a currency lacking a rate on any of its
    facts' days is named in ``unconverted`` and left out of the VND total, never partly converted)."""
    out = Converted()
    for money, day in amounts:
        out.add(money.amount, money.currency, day, rates)
    return out


def to_money(vnd: Decimal) -> Money:
    """A VND total as Money (rounded half-even to the đồng)."""
    return Money(amount=vnd.quantize(Decimal(1), ROUND_HALF_EVEN), currency=BASE)
