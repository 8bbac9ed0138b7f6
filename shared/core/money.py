"""Exact money: a Decimal amount with its ISO 4217 currency. Totals are per currency; nothing converts silently.

On the wire an amount is a decimal string (``{"amount": "12500000", "currency": "VND"}``). An amount may not
have more decimals than its currency has minor units (VND and JPY have none).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

# ISO 4217 minor units of the currencies a Vietnamese business meets; others may be added here.
MINOR_UNITS = {"VND": 0, "USD": 2, "EUR": 2, "JPY": 0, "CNY": 2, "KRW": 0, "THB": 2, "SGD": 2, "GBP": 2, "AUD": 2}
DEFAULT_CURRENCY = "VND"

DecimalStr = Annotated[Decimal, PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")]


class CurrencyMismatchError(ValueError):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"cannot combine {a} and {b}: amounts in different currencies are never converted silently")


class Money(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: DecimalStr = Field(allow_inf_nan=False, max_digits=22)
    currency: str = Field(DEFAULT_CURRENCY, pattern=r"^[A-Z]{3}$")

    @model_validator(mode="after")
    def _check_minor_units(self) -> Money:
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"unsupported currency {self.currency} (supported: {', '.join(sorted(MINOR_UNITS))})")
        quantum = Decimal(1).scaleb(-MINOR_UNITS[self.currency])
        if self.amount != self.amount.quantize(quantum):
            raise ValueError(f"{self.currency} has {MINOR_UNITS[self.currency]} decimal places, got {self.amount}")
        return self

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str = DEFAULT_CURRENCY) -> Money:
        return cls(amount=Decimal(amount), currency=currency)

    @classmethod
    def zero(cls, currency: str = DEFAULT_CURRENCY) -> Money:
        return cls(amount=Decimal(0), currency=currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def times(self, factor: Decimal) -> Money:
        """Multiplied and rounded half-even to the currency's minor unit."""
        quantum = Decimal(1).scaleb(-MINOR_UNITS[self.currency])
        return Money(amount=(self.amount * factor).quantize(quantum, ROUND_HALF_EVEN), currency=self.currency)

    def __str__(self) -> str:
        return f"{self.amount:,f} {self.currency}"


def totals(amounts: Iterable[Money]) -> dict[str, Money]:
    """Sums per currency."""
    out: dict[str, Money] = {}
    for m in amounts:
        out[m.currency] = out[m.currency] + m if m.currency in out else m
    return out
