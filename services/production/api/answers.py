"""What the production API's read routes answer, as models: the OpenAPI documents say it, with an example, and a
fuzz run checks each answer against it (decision 0029). ``extra="allow"``: a field added to a view is answered
before its model names it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

DecimalText = Annotated[str, Field(description="a decimal as a string")]


class ShipmentView(BaseModel):
    model_config = ConfigDict(extra="allow")
    shipment_id: str = Field(json_schema_extra={"format": "uuid"})
    quantity: str
    delivered: bool


class OrderView(BaseModel):
    """An order now: its stage, what was made, packed, shipped and delivered. Its delivery address only for those
    who may see personal data."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "order_id": "7e6d5c4b-3a29-4f18-8e7d-6c5b4a392817",
                    "deal_id": "6d1f0a52-3c2b-4f7e-9a0d-1b2c3d4e5f60",
                    "stage": "in_production",
                    "held_from": None,
                    "lines": [{"product": "Tủ mát", "quantity": "2", "unit": "pcs"}],
                    "quantity": "2",
                    "due_date": "2027-01-10",
                    "produced": "1",
                    "scrapped": "0",
                    "inspections": 1,
                    "packed": "0",
                    "shipped": "0",
                    "delivered": "0",
                    "shipments": [],
                    "contact_erased": False,
                    "version": 6,
                }
            ]
        },
    )

    order_id: str | None = Field(json_schema_extra={"format": "uuid"})
    deal_id: str | None = Field(json_schema_extra={"format": "uuid"})
    stage: str
    held_from: str | None = Field(description="the stage it was held from, while on hold")
    lines: list[dict[str, Any]]
    quantity: DecimalText
    due_date: str | None = Field(json_schema_extra={"format": "date"})
    produced: DecimalText
    scrapped: DecimalText
    inspections: int
    packed: DecimalText
    shipped: DecimalText
    delivered: DecimalText
    shipments: list[ShipmentView]
    contact_erased: bool
    version: int = Field(description="the order's version (its ETag)")
    delivery_address: dict[str, Any] | None = Field(None, description="only for those who may see personal data")
