"""The checks the decisions share on amounts: one currency per deal, and the total of product lines."""

from __future__ import annotations

from pydantic import ValidationError

from services.deals.domain.errors import DealRuleError, InvalidCommandError
from services.deals.events import ProductLine
from shared.core.money import Money, totals


def same_currency(deal_currency: str, amounts: list[Money], what: str) -> None:
    for m in amounts:
        if m.currency != deal_currency:
            raise DealRuleError("currency_mismatch", f"{what} is in {m.currency}, the deal in {deal_currency}")


def lines_total(lines: tuple[ProductLine, ...], what: str) -> Money:
    if any(line.unit_price.amount < 0 for line in lines):
        raise InvalidCommandError("negative_price", f"{what} have a negative unit price")
    try:
        sums = totals(line.total() for line in lines)
    except (ValidationError, ArithmeticError):  # a total past Money's 22 digits or the decimal precision
        raise InvalidCommandError("amount_too_large", f"{what} add up to more than an amount can hold") from None
    if len(sums) != 1:
        raise DealRuleError("currency_mismatch", f"{what} mix currencies: {', '.join(sorted(sums))}")
    return next(iter(sums.values()))
