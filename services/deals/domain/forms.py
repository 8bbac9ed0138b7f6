"""The event contract's values as a request gives them: the same fields, each bounded (shared.core.limits). A command
field holds the plain value (``ValidatedAs``), so events and states never see these classes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field

from services.deals.events import Address, Contact, Probability, ProductLine, StageDefinition
from shared.core.limits import MAX_COUNT, DecimalText, Email, Label, MoneyField, Quantity, ValidatedAs


class StageDefinitionInput(StageDefinition):
    order: int = Field(ge=0, le=MAX_COUNT)
    probability: Annotated[Probability, DecimalText()]


class ContactInput(Contact):
    email: Email | None = None


class AddressInput(Address):
    line2: Label | None = None
    region: Label | None = None


class ProductLineInput(ProductLine):
    quantity: Quantity
    unit_price: MoneyField
    discount_pct: Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2), DecimalText()] = Decimal(0)


StageField = Annotated[StageDefinition, ValidatedAs(StageDefinitionInput)]
ContactField = Annotated[Contact, ValidatedAs(ContactInput)]
AddressField = Annotated[Address, ValidatedAs(AddressInput)]
LineField = Annotated[ProductLine, ValidatedAs(ProductLineInput)]
