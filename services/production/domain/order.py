"""The production order: its stages, its state folded from its events, and the decision of each command, pure: no
I/O, no clock, no id generation. ``now`` and ids come in.

Stages: new → planned → in_design → procuring → assembling → quality_check (→ rework → quality_check) →
packing → ready_to_ship → shipped (partial shipments) → delivered; on_hold (returns to the stage it left) and
cancelled. ``RULES`` says which commands each stage allows, tested pair by pair; ``DECISIONS`` names the function
that decides each command.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from services.production.domain.commands import (
    ApproveDesign,
    Cancel,
    ChangeDueDate,
    Command,
    CompleteAssembly,
    CompleteRework,
    ConfirmDelivery,
    CreateOrder,
    EraseContact,
    Hold,
    Pack,
    Plan,
    ReceiveMaterials,
    RecordInspection,
    RecordOutput,
    ReportShortage,
    RequestMaterials,
    Resume,
    Scrap,
    Ship,
    StartAssembly,
    StartDesign,
)
from services.production.domain.errors import NotFoundError, OrderRuleError
from services.production.events import (
    AssemblyCompleted,
    AssemblyStarted,
    DesignApproved,
    DesignStarted,
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
from shared.core.decider import Decider, replace
from shared.core.events import DomainEvent

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


def evolve(order: Order, event: DomainEvent) -> Order:  # noqa: C901 - a flat table: one arm per event type
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


@dataclass(frozen=True)
class Moment:
    """What a decision knows besides the state and the command: when, on which order, by whom, and the business
    time zone dates are judged in."""

    now: datetime
    order_id: uuid.UUID
    actor: str
    tz: tzinfo

    def base(self, order: Order) -> dict[str, Any]:
        """The fields every order event after the first carries."""
        return {"order_id": self.order_id, "deal_id": order.deal_id if order.order_id else None}


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
    decision = DECISIONS.get(command.name)
    if decision is None:
        raise AssertionError(f"no decision for {command!r}")
    return decision(order, command, Moment(now, order_id, actor, tz))


# ---------------------------------------------------------------------------------------------- the decisions
def create_order(order: Order, command: CreateOrder, at: Moment) -> list[OrderEvent]:
    return [
        ProductionOrderCreated(
            order_id=at.order_id,
            deal_id=command.deal_id,
            stage_after="new",
            customer=command.customer,
            lines=command.lines,
            due_date=command.due_date,
            priority=command.priority,
            origin="deal" if command.deal_id else "api",
            contact_id=command.contact_id,
            delivery_address=command.delivery_address,
            created_at=at.now,
        )
    ]


def plan(order: Order, command: Plan, at: Moment) -> list[OrderEvent]:
    if command.planned_end < command.planned_start:
        raise OrderRuleError("plan_ends_before_start", "a plan ends after it starts")
    return [
        ProductionOrderPlanned(
            **at.base(order),
            stage_after="planned",
            planned_start=command.planned_start,
            planned_end=command.planned_end,
            materials=command.materials,
            work_centre=command.work_centre,
        )
    ]


def start_design(order: Order, command: StartDesign, at: Moment) -> list[OrderEvent]:
    return [DesignStarted(**at.base(order), stage_after="in_design")]


def approve_design(order: Order, command: ApproveDesign, at: Moment) -> list[OrderEvent]:
    return [DesignApproved(**at.base(order), stage_after="procuring", revision=1, approved_by=at.actor)]


def request_materials(order: Order, command: RequestMaterials, at: Moment) -> list[OrderEvent]:
    return [
        MaterialsRequested(
            **at.base(order),
            stage_after="procuring",
            materials=command.materials,
            supplier=command.supplier,
            expected_on=command.expected_on,
        )
    ]


def receive_materials(order: Order, command: ReceiveMaterials, at: Moment) -> list[OrderEvent]:
    if not order.materials_requested:
        raise OrderRuleError("nothing_requested", "no materials were requested")
    return [
        MaterialsReceived(
            **at.base(order), stage_after="procuring", materials=command.materials, complete=command.complete
        )
    ]


def report_shortage(order: Order, command: ReportShortage, at: Moment) -> list[OrderEvent]:
    return [
        MaterialShortageReported(
            **at.base(order),
            stage_after=order.stage,
            component=command.component,
            quantity_short=command.quantity_short,
            expected_date=command.expected_date,
        )
    ]


def start_assembly(order: Order, command: StartAssembly, at: Moment) -> list[OrderEvent]:
    if order.materials_requested and not order.materials_complete:
        raise OrderRuleError("materials_pending", "materials were requested and have not all arrived")
    return [
        AssemblyStarted(**at.base(order), stage_after="assembling", work_centre=command.work_centre, started_at=at.now)
    ]


def record_output(order: Order, command: RecordOutput, at: Moment) -> list[OrderEvent]:
    _known_product(order, command.product)
    return [
        UnitsProduced(**at.base(order), stage_after=order.stage, product=command.product, quantity=command.quantity)
    ]


def scrap(order: Order, command: Scrap, at: Moment) -> list[OrderEvent]:
    _known_product(order, command.product)
    if command.quantity > order.produced:
        raise OrderRuleError("scrap_exceeds_output", f"only {order.produced} units were produced")
    return [
        UnitsScrapped(
            **at.base(order),
            stage_after=order.stage,
            product=command.product,
            quantity=command.quantity,
            cause=command.cause,
        )
    ]


def complete_assembly(order: Order, command: CompleteAssembly, at: Moment) -> list[OrderEvent]:
    if order.produced < order.quantity:
        raise OrderRuleError("short_output", f"{order.produced} good units of {order.quantity} ordered")
    return [AssemblyCompleted(**at.base(order), stage_after="quality_check", good_quantity=order.produced)]


def record_inspection(order: Order, command: RecordInspection, at: Moment) -> list[OrderEvent]:
    attempt = order.inspections + 1
    if command.passed:
        return [
            QualityInspectionPassed(
                **at.base(order),
                stage_after="packing",
                attempt=attempt,
                inspected_quantity=command.inspected_quantity,
                at=at.now,
            )
        ]
    return [
        QualityInspectionFailed(
            **at.base(order),
            stage_after="rework",
            attempt=attempt,
            inspected_quantity=command.inspected_quantity,
            defects=command.defects,
            at=at.now,
        )
    ]


def complete_rework(order: Order, command: CompleteRework, at: Moment) -> list[OrderEvent]:
    return [ReworkCompleted(**at.base(order), stage_after="quality_check", quantity=command.quantity)]


def pack(order: Order, command: Pack, at: Moment) -> list[OrderEvent]:
    quantity = command.quantity or (order.produced - order.packed)
    if quantity <= 0 or order.packed + quantity > order.produced:
        raise OrderRuleError("pack_exceeds_output", f"{order.produced - order.packed} units are left to pack")
    return [OrderPacked(**at.base(order), stage_after="ready_to_ship", packages=command.packages, quantity=quantity)]


def ship(order: Order, command: Ship, at: Moment) -> list[OrderEvent]:
    if command.shipment_id in order.shipments:
        return []  # this shipment was recorded (a retried request)
    if order.shipped + command.quantity > order.packed:
        raise OrderRuleError("ship_exceeds_packed", f"{order.packed - order.shipped} packed units are left")
    return [
        OrderShipped(
            **at.base(order),
            stage_after="shipped",
            shipment_id=command.shipment_id,
            carrier=command.carrier,
            tracking_no=command.tracking_no,
            quantity=command.quantity,
            shipped_at=at.now,
            promised_date=order.due_date,
        )
    ]


def confirm_delivery(order: Order, command: ConfirmDelivery, at: Moment) -> list[OrderEvent]:
    qty = order.shipments.get(command.shipment_id)
    if qty is None:
        raise OrderRuleError("unknown_shipment", f"no shipment {command.shipment_id}")
    if command.shipment_id in order.deliveries:
        return []
    delivered_at = command.delivered_at or at.now
    if delivered_at > at.now:
        raise OrderRuleError("delivery_in_future", "a delivery is confirmed once it happened")
    complete = order.delivered + qty >= order.quantity
    on_time = order.due_date is not None and delivered_at.astimezone(at.tz).date() <= order.due_date
    return [
        OrderDelivered(
            **at.base(order),
            stage_after="delivered" if complete else "shipped",
            shipment_id=command.shipment_id,
            delivered_at=delivered_at,
            quantity=qty,
            on_time=on_time,
        )
    ]


def hold(order: Order, command: Hold, at: Moment) -> list[OrderEvent]:
    return [ProductionOrderPutOnHold(**at.base(order), stage_after="on_hold", reason=command.reason, held_at=at.now)]


def resume(order: Order, command: Resume, at: Moment) -> list[OrderEvent]:
    return [ProductionOrderResumed(**at.base(order), stage_after=order.held_from or "new", reason=command.reason)]


def change_due_date(order: Order, command: ChangeDueDate, at: Moment) -> list[OrderEvent]:
    if command.due_date == order.due_date:
        return []
    if command.due_date < at.now.astimezone(at.tz).date():
        raise OrderRuleError("due_date_past", "a promised date is today or later")
    return [
        PromisedDateChanged(
            **at.base(order), stage_after=order.stage, old=order.due_date, new=command.due_date, reason=command.reason
        )
    ]


def cancel(order: Order, command: Cancel, at: Moment) -> list[OrderEvent]:
    return [ProductionOrderCancelled(**at.base(order), stage_after="cancelled", reason=command.reason)]


def erase_contact(order: Order, command: EraseContact, at: Moment) -> list[OrderEvent]:
    if order.contact_id is None:
        raise OrderRuleError("no_contact", "the order has no contact to erase")
    if order.contact_erased:
        raise OrderRuleError("contact_erased", "the order's contact was erased already")
    return [OrderContactErased(**at.base(order), contact_id=order.contact_id, reason=command.reason, erased_at=at.now)]


def _known_product(order: Order, product: str) -> None:
    if product not in {line.product for line in order.lines}:
        raise OrderRuleError("unknown_product", f"the order has no line for {product!r}")


Decision = Callable[[Order, Any, Moment], list[OrderEvent]]
DECISIONS: dict[str, Decision] = {
    CreateOrder.name: create_order,
    Plan.name: plan,
    StartDesign.name: start_design,
    ApproveDesign.name: approve_design,
    RequestMaterials.name: request_materials,
    ReceiveMaterials.name: receive_materials,
    ReportShortage.name: report_shortage,
    StartAssembly.name: start_assembly,
    RecordOutput.name: record_output,
    Scrap.name: scrap,
    CompleteAssembly.name: complete_assembly,
    RecordInspection.name: record_inspection,
    CompleteRework.name: complete_rework,
    Pack.name: pack,
    Ship.name: ship,
    ConfirmDelivery.name: confirm_delivery,
    Hold.name: hold,
    Resume.name: resume,
    ChangeDueDate.name: change_due_date,
    Cancel.name: cancel,
    EraseContact.name: erase_contact,
}
