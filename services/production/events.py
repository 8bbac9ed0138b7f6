"""The production service's event contract: orders from won deal to delivery, and demand plans.

Streams: ``production-order-<uuid>`` and ``demand-plan-<product>-<period>``. Every order event carries
``stage_after`` (the order's stage once the event happened), so a subscriber can follow stages and their
durations without knowing every event type, and ``deal_id`` when the order came from a deal.
The delivery address is personal data, sealed under the deal contact's key (the lead's, when it came from one);
``OrderContactErased`` records that this key was destroyed.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.core.events import DomainEvent

Qty = Annotated[Decimal, Field(gt=0, max_digits=18, allow_inf_nan=False)]
Stage = Annotated[str, Field(pattern=r"^[a-z_]*$")]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderLine(_Value):
    product: Annotated[str, Field(min_length=1, max_length=200)]
    quantity: Qty
    unit: str = "pcs"


class Material(_Value):
    component: Annotated[str, Field(min_length=1, max_length=200)]
    quantity: Qty


class Defect(_Value):
    code: Annotated[str, Field(min_length=1, max_length=60)]
    quantity: int = Field(ge=1)


class DeliveryAddress(_Value):
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    country: str = "VN"


class OrderEvent(DomainEvent):
    order_id: uuid.UUID
    deal_id: uuid.UUID | None = None
    stage_after: Stage = ""


class ProductionOrderCreated(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.ProductionOrderCreated"
    personal_fields: ClassVar[tuple[str, ...]] = ("delivery_address",)
    subject_field: ClassVar[str | None] = "contact_id"
    erased_by: ClassVar[str | None] = "pipelines.production.OrderContactErased"
    customer: str
    lines: tuple[OrderLine, ...]
    due_date: date  # the promised delivery date
    priority: Annotated[str, Field(pattern=r"^(low|normal|high|urgent)$")] = "normal"
    origin: Annotated[str, Field(pattern=r"^(deal|api)$")]
    contact_id: str | None = None
    delivery_address: DeliveryAddress | None = None
    created_at: AwareDatetime


class ProductionOrderPlanned(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.ProductionOrderPlanned"
    planned_start: date
    planned_end: date
    materials: tuple[Material, ...] = ()
    work_centre: str | None = None


class DesignStarted(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.DesignStarted"
    revision: int = 1


class DesignApproved(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.DesignApproved"
    revision: int
    approved_by: str


class MaterialsRequested(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.MaterialsRequested"
    materials: tuple[Material, ...]
    supplier: str | None = None
    expected_on: date | None = None


class MaterialsReceived(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.MaterialsReceived"
    materials: tuple[Material, ...]
    complete: bool  # everything requested has arrived


class MaterialShortageReported(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.MaterialShortageReported"
    component: str
    quantity_short: Decimal
    expected_date: date | None = None


class AssemblyStarted(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.AssemblyStarted"
    work_centre: str | None = None
    started_at: AwareDatetime


class UnitsProduced(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.UnitsProduced"
    product: str
    quantity: Qty


class UnitsScrapped(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.UnitsScrapped"
    product: str
    quantity: Qty
    cause: str


class AssemblyCompleted(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.AssemblyCompleted"
    good_quantity: Decimal


class QualityInspectionPassed(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.QualityInspectionPassed"
    attempt: int = Field(ge=1)  # 1 = first pass
    inspected_quantity: Decimal
    at: AwareDatetime


class QualityInspectionFailed(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.QualityInspectionFailed"
    attempt: int = Field(ge=1)
    inspected_quantity: Decimal
    defects: tuple[Defect, ...]
    at: AwareDatetime


class ReworkCompleted(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.ReworkCompleted"
    quantity: Decimal


class OrderPacked(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.OrderPacked"
    packages: int = Field(ge=1)
    quantity: Decimal


class OrderShipped(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.OrderShipped"
    shipment_id: uuid.UUID
    carrier: str
    tracking_no: str | None = None
    quantity: Decimal
    shipped_at: AwareDatetime
    promised_date: date | None = None


class OrderDelivered(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.OrderDelivered"
    shipment_id: uuid.UUID
    delivered_at: AwareDatetime
    quantity: Decimal
    on_time: bool  # delivered on or before the promised date (business time zone)


class ProductionOrderPutOnHold(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.ProductionOrderPutOnHold"
    reason: str
    held_at: AwareDatetime


class ProductionOrderResumed(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.ProductionOrderResumed"
    reason: str | None = None


class PromisedDateChanged(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.PromisedDateChanged"
    old: date | None
    new: date
    reason: str


class ProductionOrderCancelled(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.ProductionOrderCancelled"
    reason: str


class OrderContactErased(OrderEvent):
    """The order's contact was forgotten: the key of their data subject (``contact_id``) is destroyed, so the
    delivery address (and whatever else is sealed under that key, in any service) reads as null from now on
    (within the erasure window for copies in backups: docs/OPERATIONS.md)."""

    event_type: ClassVar[str] = "pipelines.production.OrderContactErased"
    subject_field: ClassVar[str | None] = "contact_id"
    erasure: ClassVar[bool] = True
    contact_id: str
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    erased_at: AwareDatetime


# ---------------------------------------------------------------------------------------------- demand plans
class DemandPlanEvent(DomainEvent):
    product: str
    period: Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


class DemandForecastRecorded(DemandPlanEvent):
    """A proposed demand (from the weighted sales pipeline, or typed in)."""

    event_type: ClassVar[str] = "pipelines.production.DemandForecastRecorded"
    quantity: Decimal
    method: Annotated[str, Field(pattern=r"^(pipeline_weighted|manual|history)$")]


class ProductionPlanApproved(DemandPlanEvent):
    event_type: ClassVar[str] = "pipelines.production.ProductionPlanApproved"
    quantity: Decimal
    approved_by: str


class ProductionPlanRevised(DemandPlanEvent):
    event_type: ClassVar[str] = "pipelines.production.ProductionPlanRevised"
    old: Decimal
    new: Decimal
    reason: str
