"""An exchange rate: reference data of the directory (issue 26, decision 0021), one stream per currency.

``PUT /rates/{currency}`` sets the rate in effect from a day on: ``per_vnd`` đồng per unit of the currency. The
same rate for the same day again changes nothing (an import or a script may send it twice); another rate for a day
already set supersedes it (a ``RateSet`` again, with its reason). VND is the base: it has no rate of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from services.directory.domain.errors import DirectoryRuleError
from services.directory.events import RateSet
from shared.core.decider import Decider, replace
from shared.core.events import DomainEvent
from shared.core.limits import DAY_RANGE, Day, DecimalText
from shared.core.money import MINOR_UNITS
from shared.core.rates import BASE

MAX_RATE = 10**9  # đồng per unit: far above any currency's worth
RATE_PLACES = 12  # decimals a rate may have
PerVnd = Annotated[
    Decimal,
    Field(
        gt=0,
        le=MAX_RATE,
        max_digits=22,
        decimal_places=RATE_PLACES,
        allow_inf_nan=False,
        description='đồng per one unit of the currency, an exact decimal as a string (e.g. "25415.5")',
    ),
    DecimalText(),
]
CURRENCY_PATTERN = r"^[A-Z]{3}$"


class SetRate(BaseModel):
    """The body of ``PUT /rates/{currency}``."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=2000)
    per_vnd: PerVnd
    effective_from: Annotated[Day, Field(description=f"the first day it applies (business time zone): {DAY_RANGE}")]
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None


@dataclass(frozen=True)
class Rate:
    currency: str | None = None  # None: never set
    by_day: dict[date, Decimal] = field(default_factory=dict)


def evolve(r: Rate, e: DomainEvent) -> Rate:
    if isinstance(e, RateSet):
        return replace(r, currency=e.currency, by_day={**r.by_day, e.effective_from: e.per_vnd})
    return r


rate_decider: Decider[Rate] = Decider(Rate(), evolve)


def decide_rate(r: Rate, cmd: SetRate, currency: str) -> list[RateSet]:
    """The rate of ``currency`` from ``cmd.effective_from`` on (nothing when it is that already)."""
    if currency == BASE:
        raise DirectoryRuleError("base_currency", f"{BASE} is the base: 1 {BASE} is 1 {BASE}")
    if currency not in MINOR_UNITS:
        raise DirectoryRuleError(
            "unsupported_currency", f"unsupported currency {currency} (supported: {', '.join(sorted(MINOR_UNITS))})"
        )
    if r.by_day.get(cmd.effective_from) == cmd.per_vnd:
        return []
    return [RateSet(currency=currency, per_vnd=cmd.per_vnd, effective_from=cmd.effective_from, reason=cmd.reason)]
