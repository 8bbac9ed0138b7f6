"""The production pipeline's rules, pure: no I/O, no clock, no id generation. ``now`` and ids come in.

Stages: new → planned → in_design → procuring → assembling → quality_check (→ rework → quality_check) →
packing → ready_to_ship → shipped (partial shipments) → delivered; on_hold (returns to the stage it left) and
cancelled. ``RULES`` says which commands each stage allows, tested pair by pair.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.production.events import (
    AssemblyCompleted,
    AssemblyStarted,
    Defect,
    DeliveryAddress,
    DesignApproved,
    DesignStarted,
    Material,
    MaterialShortageReported,
    MaterialsReceived,
    MaterialsRequested,
    OrderContactErased,
    OrderDelivered,
    OrderEvent,
    OrderLine,
    OrderPacked,
    OrderShipped,
    ProductionOrderCancelled,
    ProductionOrderCreated,
    ProductionOrderPlanned,
    ProductionOrderPutOnHold,
    ProductionOrderResumed,
    PromisedDateChanged,
    QualityInspectionFailed,
    QualityInspectionPassed,
    ReworkCompleted,
    UnitsProduced,
    UnitsScrapped,
)
from shared.core.decider import AbsentError, Decider, RuleError, replace
from shared.core.events import DomainEvent
from shared.core.limits import (
    MAX_COUNT,
    MAX_TEXT_CHARS,
    MAX_UNIT_CHARS,
    AwareMoment,
    Code,
    ExternalId,
    Identifier,
    Label,
    Quantity,
    ValidatedAs,
)

STAGES = (
    "new",
    "planned",
    "in_design",
    "procuring",
    "assembling",
    "quality_check",
    "rework",
    "packing",
    "ready_to_ship",
    "shipped",
    "delivered",
)
ACTIVE = frozenset(STAGES[:9])  # before anything left the factory
ALL = frozenset({"none", *STAGES, "on_hold", "cancelled"})


class OrderRuleError(RuleError):
    """A production rule refused the command."""


class NotFoundError(OrderRuleError, AbsentError):
    """No such aggregate, or part of one (HTTP 404)."""


@dataclass(frozen=True)
class Order:
    order_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    stage: str = "none"
    held_from: str | None = None
    lines: tuple[OrderLine, ...] = ()
    due_date: date | None = None
    materials_requested: bool = False
    materials_complete: bool = False
    design_started: bool = False
    produced: Decimal = Decimal(0)
    scrapped: Decimal = Decimal(0)
    inspections: int = 0
    packed: Decimal = Decimal(0)
    shipped: Decimal = Decimal(0)
    delivered: Decimal = Decimal(0)
    shipments: Mapping[uuid.UUID, Decimal] = field(default_factory=dict)
    deliveries: frozenset[uuid.UUID] = frozenset()
    contact_id: str | None = None  # the data subject of the delivery address
    contact_erased: bool = False

    @property
    def quantity(self) -> Decimal:
        return sum((line.quantity for line in self.lines), Decimal(0))


def evolve(order: Order, event: DomainEvent) -> Order:
    if not isinstance(event, OrderEvent):
        return order
    o = replace(order, stage=event.stage_after or order.stage)
    match event:
        case ProductionOrderCreated():
            return Order(
                order_id=event.order_id,
                deal_id=event.deal_id,
                stage=event.stage_after,
                lines=event.lines,
                due_date=event.due_date,
                contact_id=event.contact_id,
            )
        case OrderContactErased():
            return replace(o, contact_erased=True)
        case DesignStarted():
            return replace(o, design_started=True)
        case MaterialsRequested():
            return replace(o, materials_requested=True, materials_complete=False)
        case MaterialsReceived():
            return replace(o, materials_complete=event.complete)
        case UnitsProduced():
            return replace(o, produced=o.produced + event.quantity)
        case UnitsScrapped():
            return replace(o, scrapped=o.scrapped + event.quantity, produced=o.produced - event.quantity)
        case QualityInspectionPassed() | QualityInspectionFailed():
            return replace(o, inspections=o.inspections + 1)
        case OrderPacked():
            return replace(o, packed=o.packed + event.quantity)
        case OrderShipped():
            return replace(
                o, shipped=o.shipped + event.quantity, shipments={**o.shipments, event.shipment_id: event.quantity}
            )
        case OrderDelivered():
            return replace(o, delivered=o.delivered + event.quantity, deliveries=o.deliveries | {event.shipment_id})
        case ProductionOrderPutOnHold():
            return replace(o, held_from=order.stage)
        case ProductionOrderResumed():
            return replace(o, held_from=None)
        case PromisedDateChanged():
            return replace(o, due_date=event.new)
    return o


order_decider = Decider(initial=Order(), evolve=evolve, snapshot_every=50, snapshot_version=2)  # 2: contact_id, _erased


# ---------------------------------------------------------------------------------------------- request forms
# The event contract's values as a request gives them: the same fields, each bounded (shared.core.limits). A command
# field holds the plain value (``ValidatedAs``), so events and states never see these classes.
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


# ---------------------------------------------------------------------------------------------- commands
MAX_LINES = 200  # lines, materials or defects in one command


class Command(BaseModel):
    """A command on an order. Its strings are at most MAX_TEXT_CHARS unless a field says less (shared.core.limits)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    name: ClassVar[str]


class CreateOrder(Command):
    name: ClassVar[str] = "create"
    customer: Annotated[str, Field(min_length=1, max_length=200)]
    lines: tuple[OrderLineField, ...] = Field(min_length=1, max_length=MAX_LINES)
    due_date: date
    priority: Annotated[str, Field(pattern=r"^(low|normal|high|urgent)$")] = "normal"
    deal_id: uuid.UUID | None = None
    contact_id: Identifier | None = None
    delivery_address: DeliveryAddressField | None = None

    @model_validator(mode="after")
    def _address_needs_subject(self) -> CreateOrder:
        if self.delivery_address is not None and self.contact_id is None:
            raise ValueError("a delivery address needs a contact_id (its data subject)")
        return self


class Plan(Command):
    name: ClassVar[str] = "plan"
    planned_start: date
    planned_end: date
    materials: tuple[MaterialField, ...] = Field((), max_length=MAX_LINES)
    work_centre: Label | None = None


class StartDesign(Command):
    name: ClassVar[str] = "start_design"


class ApproveDesign(Command):
    name: ClassVar[str] = "approve_design"


class RequestMaterials(Command):
    name: ClassVar[str] = "request_materials"
    materials: tuple[MaterialField, ...] = Field(min_length=1, max_length=MAX_LINES)
    supplier: Label | None = None
    expected_on: date | None = None


class ReceiveMaterials(Command):
    name: ClassVar[str] = "receive_materials"
    materials: tuple[MaterialField, ...] = Field(min_length=1, max_length=MAX_LINES)
    complete: bool = True


class ReportShortage(Command):
    name: ClassVar[str] = "report_shortage"
    component: Annotated[str, Field(min_length=1, max_length=200)]
    quantity_short: Quantity
    expected_date: date | None = None


class StartAssembly(Command):
    name: ClassVar[str] = "start_assembly"
    work_centre: Label | None = None


class RecordOutput(Command):
    name: ClassVar[str] = "record_output"
    product: Label
    quantity: Quantity


class Scrap(Command):
    name: ClassVar[str] = "scrap"
    product: Label
    quantity: Quantity
    cause: Annotated[str, Field(min_length=1, max_length=200)]


class CompleteAssembly(Command):
    name: ClassVar[str] = "complete_assembly"


class RecordInspection(Command):
    name: ClassVar[str] = "record_inspection"
    passed: bool
    inspected_quantity: Quantity
    defects: tuple[DefectField, ...] = Field((), max_length=MAX_LINES)

    @model_validator(mode="after")
    def _defects_when_failed(self) -> RecordInspection:
        if not self.passed and not self.defects:
            raise ValueError("a failed inspection names its defects")
        return self


class CompleteRework(Command):
    name: ClassVar[str] = "complete_rework"
    quantity: Quantity


class Pack(Command):
    name: ClassVar[str] = "pack"
    packages: int = Field(ge=1, le=MAX_COUNT)
    quantity: Quantity | None = None  # default: everything produced and not yet packed


class Ship(Command):
    name: ClassVar[str] = "ship"
    shipment_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    carrier: Annotated[str, Field(min_length=1, max_length=100)]
    tracking_no: ExternalId | None = None
    quantity: Quantity


class ConfirmDelivery(Command):
    name: ClassVar[str] = "confirm_delivery"
    shipment_id: uuid.UUID
    delivered_at: AwareMoment | None = None


class Hold(Command):
    name: ClassVar[str] = "hold"
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class Resume(Command):
    name: ClassVar[str] = "resume"
    reason: str | None = None


class ChangeDueDate(Command):
    name: ClassVar[str] = "change_due_date"
    due_date: date
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class Cancel(Command):
    name: ClassVar[str] = "cancel"
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class EraseContact(Command):
    """Forget the order's contact: the key of their data subject (``contact_id``) is destroyed, so the delivery
    address reads as null in every store, topic and read model, and backups' copies within the erasure window
    (docs/OPERATIONS.md); whatever else is sealed under that key in any service (the deal's contact, the lead's
    details) goes with it. The order, its lines and its history stay."""

    name: ClassVar[str] = "erase_contact"
    reason: Annotated[str, Field(min_length=1, max_length=500)]


RULES: dict[str, frozenset[str]] = {
    CreateOrder.name: frozenset({"none"}),
    Plan.name: frozenset({"new"}),
    StartDesign.name: frozenset({"planned"}),
    ApproveDesign.name: frozenset({"in_design"}),
    RequestMaterials.name: frozenset({"planned", "procuring"}),
    ReceiveMaterials.name: frozenset({"procuring"}),
    ReportShortage.name: frozenset({"procuring", "assembling"}),
    StartAssembly.name: frozenset({"procuring"}),
    RecordOutput.name: frozenset({"assembling", "rework"}),
    Scrap.name: frozenset({"assembling", "rework"}),
    CompleteAssembly.name: frozenset({"assembling"}),
    RecordInspection.name: frozenset({"quality_check"}),
    CompleteRework.name: frozenset({"rework"}),
    Pack.name: frozenset({"packing"}),
    Ship.name: frozenset({"ready_to_ship", "shipped"}),
    ConfirmDelivery.name: frozenset({"shipped", "delivered"}),
    Hold.name: ACTIVE,
    Resume.name: frozenset({"on_hold"}),
    ChangeDueDate.name: ACTIVE | {"on_hold", "shipped"},
    Cancel.name: ACTIVE | {"on_hold"},
    EraseContact.name: ALL - {"none"},
}


def check_allowed(order: Order, command: Command) -> None:
    if order.stage in RULES[command.name]:
        return
    if order.stage == "none":
        raise NotFoundError("order_not_found", "no such production order")
    if command.name == CreateOrder.name:
        raise OrderRuleError("order_exists", f"order {order.order_id} exists already")
    raise OrderRuleError(f"order_{order.stage}", f"an order in stage {order.stage} does not allow {command.name}")


def decide(
    order: Order,
    command: Command,
    now: datetime,
    order_id: uuid.UUID,
    *,
    actor: str = "system",
    tz: tzinfo = UTC,
) -> list[OrderEvent]:
    """The events a command produces on an order; dates are judged in the business time zone ``tz``."""
    check_allowed(order, command)
    today = now.astimezone(tz).date()
    base: dict[str, Any] = {"order_id": order_id, "deal_id": order.deal_id if order.order_id else None}
    match command:
        case CreateOrder():
            return [
                ProductionOrderCreated(
                    order_id=order_id,
                    deal_id=command.deal_id,
                    stage_after="new",
                    customer=command.customer,
                    lines=command.lines,
                    due_date=command.due_date,
                    priority=command.priority,
                    origin="deal" if command.deal_id else "api",
                    contact_id=command.contact_id,
                    delivery_address=command.delivery_address,
                    created_at=now,
                )
            ]
        case Plan():
            if command.planned_end < command.planned_start:
                raise OrderRuleError("plan_ends_before_start", "a plan ends after it starts")
            return [
                ProductionOrderPlanned(
                    **base,
                    stage_after="planned",
                    planned_start=command.planned_start,
                    planned_end=command.planned_end,
                    materials=command.materials,
                    work_centre=command.work_centre,
                )
            ]
        case StartDesign():
            return [DesignStarted(**base, stage_after="in_design")]
        case ApproveDesign():
            return [DesignApproved(**base, stage_after="procuring", revision=1, approved_by=actor)]
        case RequestMaterials():
            return [
                MaterialsRequested(
                    **base,
                    stage_after="procuring",
                    materials=command.materials,
                    supplier=command.supplier,
                    expected_on=command.expected_on,
                )
            ]
        case ReceiveMaterials():
            if not order.materials_requested:
                raise OrderRuleError("nothing_requested", "no materials were requested")
            return [
                MaterialsReceived(
                    **base, stage_after="procuring", materials=command.materials, complete=command.complete
                )
            ]
        case ReportShortage():
            return [
                MaterialShortageReported(
                    **base,
                    stage_after=order.stage,
                    component=command.component,
                    quantity_short=command.quantity_short,
                    expected_date=command.expected_date,
                )
            ]
        case StartAssembly():
            if order.materials_requested and not order.materials_complete:
                raise OrderRuleError("materials_pending", "materials were requested and have not all arrived")
            return [AssemblyStarted(**base, stage_after="assembling", work_centre=command.work_centre, started_at=now)]
        case RecordOutput():
            _known_product(order, command.product)
            return [UnitsProduced(**base, stage_after=order.stage, product=command.product, quantity=command.quantity)]
        case Scrap():
            _known_product(order, command.product)
            if command.quantity > order.produced:
                raise OrderRuleError("scrap_exceeds_output", f"only {order.produced} units were produced")
            return [
                UnitsScrapped(
                    **base,
                    stage_after=order.stage,
                    product=command.product,
                    quantity=command.quantity,
                    cause=command.cause,
                )
            ]
        case CompleteAssembly():
            if order.produced < order.quantity:
                raise OrderRuleError("short_output", f"{order.produced} good units of {order.quantity} ordered")
            return [AssemblyCompleted(**base, stage_after="quality_check", good_quantity=order.produced)]
        case RecordInspection():
            attempt = order.inspections + 1
            if command.passed:
                return [
                    QualityInspectionPassed(
                        **base,
                        stage_after="packing",
                        attempt=attempt,
                        inspected_quantity=command.inspected_quantity,
                        at=now,
                    )
                ]
            return [
                QualityInspectionFailed(
                    **base,
                    stage_after="rework",
                    attempt=attempt,
                    inspected_quantity=command.inspected_quantity,
                    defects=command.defects,
                    at=now,
                )
            ]
        case CompleteRework():
            return [ReworkCompleted(**base, stage_after="quality_check", quantity=command.quantity)]
        case Pack():
            quantity = command.quantity or (order.produced - order.packed)
            if quantity <= 0 or order.packed + quantity > order.produced:
                raise OrderRuleError("pack_exceeds_output", f"{order.produced - order.packed} units are left to pack")
            return [OrderPacked(**base, stage_after="ready_to_ship", packages=command.packages, quantity=quantity)]
        case Ship():
            if command.shipment_id in order.shipments:
                return []  # this shipment was recorded (a retried request)
            if order.shipped + command.quantity > order.packed:
                raise OrderRuleError("ship_exceeds_packed", f"{order.packed - order.shipped} packed units are left")
            return [
                OrderShipped(
                    **base,
                    stage_after="shipped",
                    shipment_id=command.shipment_id,
                    carrier=command.carrier,
                    tracking_no=command.tracking_no,
                    quantity=command.quantity,
                    shipped_at=now,
                    promised_date=order.due_date,
                )
            ]
        case ConfirmDelivery():
            qty = order.shipments.get(command.shipment_id)
            if qty is None:
                raise OrderRuleError("unknown_shipment", f"no shipment {command.shipment_id}")
            if command.shipment_id in order.deliveries:
                return []
            delivered_at = command.delivered_at or now
            if delivered_at > now:
                raise OrderRuleError("delivery_in_future", "a delivery is confirmed once it happened")
            complete = order.delivered + qty >= order.quantity
            on_time = order.due_date is not None and delivered_at.astimezone(tz).date() <= order.due_date
            return [
                OrderDelivered(
                    **base,
                    stage_after="delivered" if complete else "shipped",
                    shipment_id=command.shipment_id,
                    delivered_at=delivered_at,
                    quantity=qty,
                    on_time=on_time,
                )
            ]
        case Hold():
            return [ProductionOrderPutOnHold(**base, stage_after="on_hold", reason=command.reason, held_at=now)]
        case Resume():
            return [ProductionOrderResumed(**base, stage_after=order.held_from or "new", reason=command.reason)]
        case ChangeDueDate():
            if command.due_date == order.due_date:
                return []
            if command.due_date < today:
                raise OrderRuleError("due_date_past", "a promised date is today or later")
            return [
                PromisedDateChanged(
                    **base, stage_after=order.stage, old=order.due_date, new=command.due_date, reason=command.reason
                )
            ]
        case Cancel():
            return [ProductionOrderCancelled(**base, stage_after="cancelled", reason=command.reason)]
        case EraseContact():
            if order.contact_id is None:
                raise OrderRuleError("no_contact", "the order has no contact to erase")
            if order.contact_erased:
                raise OrderRuleError("contact_erased", "the order's contact was erased already")
            return [OrderContactErased(**base, contact_id=order.contact_id, reason=command.reason, erased_at=now)]
    raise AssertionError(f"no decision for {command!r}")


def _known_product(order: Order, product: str) -> None:
    if product not in {line.product for line in order.lines}:
        raise OrderRuleError("unknown_product", f"the order has no line for {product!r}")


def state_as_json(o: Order) -> dict[str, Any]:
    return {
        "order_id": str(o.order_id) if o.order_id else None,
        "deal_id": str(o.deal_id) if o.deal_id else None,
        "stage": o.stage,
        "held_from": o.held_from,
        "lines": [line.model_dump(mode="json") for line in o.lines],
        "quantity": format(o.quantity, "f"),
        "due_date": o.due_date.isoformat() if o.due_date else None,
        "produced": format(o.produced, "f"),
        "scrapped": format(o.scrapped, "f"),
        "inspections": o.inspections,
        "packed": format(o.packed, "f"),
        "shipped": format(o.shipped, "f"),
        "delivered": format(o.delivered, "f"),
        "shipments": [
            {"shipment_id": str(k), "quantity": format(v, "f"), "delivered": k in o.deliveries}
            for k, v in o.shipments.items()
        ],
        "contact_erased": o.contact_erased,
    }
