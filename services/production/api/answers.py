"""What the production API's read routes answer, as models: the OpenAPI documents say it, with an example, and a
fuzz run checks each answer against it (decision 0029). ``extra="allow"``: a field added to a view is answered
before its model names it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.edge.queries import Page

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


_BOARD_ORDER: dict[str, Any] = {
    "order_id": "7e6d5c4b-3a29-4f18-8e7d-6c5b4a392817",
    "deal_id": "6d1f0a52-3c2b-4f7e-9a0d-1b2c3d4e5f60",
    "customer": "Công ty Hòa Bình",
    "products": "Tủ mát",
    "quantity": "2",
    "stage": "assembling",
    "due_date": "2027-01-10",
    "hold_reason": None,
    "shortage": None,
    "produced": "1",
    "delivered": "0",
    "created_at": "2026-12-01T02:30:00+00:00",
    "entered_stage_at": "2026-12-03T01:00:00+00:00",
    "age_days": 5,
    "days_in_stage": 3,
    "late": False,
}


class BoardOrder(BaseModel):
    """An open order on the board (and in ``GET /orders``): where it is, how old, whether it is late."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_BOARD_ORDER]})
    order_id: str = Field(json_schema_extra={"format": "uuid"})
    deal_id: str | None = Field(json_schema_extra={"format": "uuid"})
    customer: str
    products: str = Field(description="what it makes, as one line")
    quantity: DecimalText
    stage: str
    due_date: str = Field(json_schema_extra={"format": "date"})
    hold_reason: str | None
    shortage: str | None = Field(description="what it waits for, while procuring")
    produced: DecimalText
    delivered: DecimalText
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    entered_stage_at: str = Field(json_schema_extra={"format": "date-time"})
    age_days: int
    days_in_stage: int
    late: bool = Field(description="past its due date (the business time zone's day)")


class BoardColumn(BaseModel):
    model_config = ConfigDict(extra="allow")
    stage: str
    orders: int
    quantity: DecimalText
    late: int = Field(description="how many of its orders are late")
    oldest_age_days: int
    items: list[BoardOrder]


class FloorBoard(BaseModel):
    """The open orders per stage (the stages in their order, on hold last; a stage without orders is absent):
    work in progress, age, lateness."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-12-06T03:00:00+00:00",
                    "stages": [
                        {
                            "stage": "assembling",
                            "orders": 1,
                            "quantity": "2",
                            "late": 0,
                            "oldest_age_days": 5,
                            "items": [_BOARD_ORDER],
                        }
                    ],
                    "open_orders": 1,
                    "wip": 1,
                    "late": 0,
                }
            ]
        },
    )
    as_of: str = Field(json_schema_extra={"format": "date-time"})
    stages: list[BoardColumn]
    open_orders: int
    wip: int = Field(description="open orders past new and planned")
    late: int


OrderPage = Page[BoardOrder]


class StageTime(BaseModel):
    stage: str
    visits: int = Field(description="visits that ended in the window")
    median_days: float | None
    p90_days: float | None


class LeadTime(BaseModel):
    orders: int = Field(description="orders completed in the window")
    median_days: float | None
    p90_days: float | None


class LeadTimeBin(BaseModel):
    from_days: int
    to_days: int | None = Field(description="null: no upper bound")
    orders: int


class FlowPoint(BaseModel):
    """How many orders were in each stage at ``at``."""

    model_config = ConfigDict(extra="allow")
    at: str = Field(json_schema_extra={"format": "date-time"})
    new: int
    planned: int
    in_design: int
    procuring: int
    assembling: int
    quality_check: int
    rework: int
    packing: int
    ready_to_ship: int
    shipped: int
    delivered: int


class CycleTimes(BaseModel):
    """Time in each stage and order lead time (days), the lead times' histogram and the cumulative flow."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "stages": [{"stage": "assembling", "visits": 3, "median_days": 2.5, "p90_days": 4.1}],
                    "lead_time": {"orders": 2, "median_days": 12.0, "p90_days": 15.2},
                    "lead_time_histogram": [
                        {"from_days": 7, "to_days": 14, "orders": 1},
                        {"from_days": 84, "to_days": None, "orders": 0},
                    ],
                    "flow": [
                        {
                            "at": "2026-12-01T00:00:00+07:00",
                            "new": 1,
                            "planned": 0,
                            "in_design": 0,
                            "procuring": 1,
                            "assembling": 2,
                            "quality_check": 0,
                            "rework": 0,
                            "packing": 0,
                            "ready_to_ship": 0,
                            "shipped": 0,
                            "delivered": 3,
                        }
                    ],
                }
            ]
        },
    )
    stages: list[StageTime]
    lead_time: LeadTime
    lead_time_histogram: list[LeadTimeBin]
    flow: list[FlowPoint] = Field(description="the cumulative flow diagram: the window's start, each week, its end")


class Quality(BaseModel):
    """First-pass yield, rework and scrap over the orders first inspected in the window (units as decimal
    strings, rates as fractions; null: nothing to divide by)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "inspected": "10",
                    "first_pass": "8",
                    "scrapped_before_inspection": "0",
                    "fpy": 0.8,
                    "reworked": "2",
                    "rework_rate": 0.2,
                    "units_made": "11",
                    "units_scrapped": "1",
                    "scrap_rate": 0.090909,
                }
            ]
        },
    )
    inspected: DecimalText
    first_pass: DecimalText
    scrapped_before_inspection: DecimalText
    fpy: float | None
    reworked: DecimalText
    rework_rate: float | None
    units_made: DecimalText
    units_scrapped: DecimalText
    scrap_rate: float | None


class Delivery(BaseModel):
    """On-time delivery and OTIF of the orders completed in the window."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"completed": 4, "on_time": 3, "otd": 0.75, "otif_orders": 2, "otif": 0.5, "avg_days_late": 2.0}
            ]
        },
    )
    completed: int
    on_time: int
    otd: float | None
    otif_orders: int
    otif: float | None
    avg_days_late: float | None = Field(description="of the late ones")


class DemandRow(BaseModel):
    """A product's month: the demand the sales pipeline implies, the forecast and plan recorded, what was made."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "product": "Tủ mát",
                    "period": "2027-01",
                    "pipeline_demand": "7.5",
                    "forecast": "8",
                    "planned": "10",
                    "produced": "4",
                    "plan_attainment": 0.4,
                }
            ]
        },
    )
    product: str
    period: str = Field(description="YYYY-MM")
    pipeline_demand: str | None = Field(description="a decimal as a string: won deals whole, open ones weighted")
    forecast: str | None
    planned: str | None
    produced: DecimalText
    plan_attainment: float | None
