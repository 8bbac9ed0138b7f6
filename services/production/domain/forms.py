"""Request forms: the event contract's values as a request gives them, the same fields, each bounded
(shared.core.limits). A command field holds the plain value (``ValidatedAs``), so events and states never see these
classes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from services.production.events import Defect, DeliveryAddress, Material, OrderLine
from shared.core.limits import MAX_COUNT, MAX_UNIT_CHARS, Code, Label, Quantity, ValidatedAs

MAX_LINES = 200  # lines, materials or defects in one command


class OrderLineInput(OrderLine):
    quantity: Quantity
    unit: Annotated[str, Field(max_length=MAX_UNIT_CHARS)] = "pcs"


class MaterialInput(Material):
    quantity: Quantity


class DefectInput(Defect):
    quantity: int = Field(ge=1, le=MAX_COUNT)


class DeliveryAddressInput(DeliveryAddress):
    line1: Label
    line2: Label | None = None
    city: Label
    region: Label | None = None
    country: Code = "VN"


OrderLineField = Annotated[OrderLine, ValidatedAs(OrderLineInput)]
MaterialField = Annotated[Material, ValidatedAs(MaterialInput)]
DefectField = Annotated[Defect, ValidatedAs(DefectInput)]
DeliveryAddressField = Annotated[DeliveryAddress, ValidatedAs(DeliveryAddressInput)]
