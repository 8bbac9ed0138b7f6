"""The production order's rule table, pair by pair, and the rules inside the stages."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.production import domain as d
from services.production.events import (
    AssemblyCompleted,
    AssemblyStarted,
    Defect,
    DemandForecastRecorded,
    DesignApproved,
    DesignStarted,
    Material,
    MaterialsReceived,
    MaterialsRequested,
    OrderContactErased,
    OrderDelivered,
    OrderLine,
    OrderPacked,
    OrderShipped,
    ProductionOrderCreated,
    ProductionOrderPlanned,
    ProductionOrderPutOnHold,
    ProductionOrderResumed,
    ProductionPlanApproved,
    ProductionPlanRevised,
    PromisedDateChanged,
    QualityInspectionFailed,
    QualityInspectionPassed,
    ReworkCompleted,
    UnitsProduced,
)
from testkit.slices import Slice

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
ORDER = uuid.UUID("00000000-0000-0000-0000-0000000000f1")
S1 = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
S2 = uuid.UUID("00000000-0000-0000-0000-0000000000a2")
LINES = (OrderLine(product="Tủ đông 500L", quantity=Decimal(4)),)


def run(state: d.Order, command: d.Command, now: datetime = NOW) -> list:
    return d.decide(state, command, now, ORDER, actor="u-prod", tz=TZ)


def build(*commands: d.Command) -> d.Order:
    state = d.Order()
    for c in commands:
        state = d.order_decider.fold(run(state, c), state)
    return state


CREATE = d.CreateOrder(customer="Siêu thị Bình An", lines=LINES, due_date=date(2026, 12, 20), contact_id="c-7")
PLAN = d.Plan(planned_start=date(2026, 11, 25), planned_end=date(2026, 12, 15))
MATERIALS = (Material(component="máy nén", quantity=Decimal(4)),)
PATH = [
    CREATE,
    PLAN,
    d.StartDesign(),
    d.ApproveDesign(),
    d.RequestMaterials(materials=MATERIALS),
    d.ReceiveMaterials(materials=MATERIALS),
    d.StartAssembly(),
    d.RecordOutput(product="Tủ đông 500L", quantity=Decimal(4)),
    d.CompleteAssembly(),
    d.RecordInspection(passed=True, inspected_quantity=Decimal(4)),
    d.Pack(packages=2),
]
STATES = {
    "none": d.Order(),
    "new": build(*PATH[:1]),
    "planned": build(*PATH[:2]),
    "in_design": build(*PATH[:3]),
    "procuring": build(*PATH[:6]),
    "assembling": build(*PATH[:8]),
    "quality_check": build(*PATH[:9]),
    "rework": build(
        *PATH[:9],
        d.RecordInspection(passed=False, inspected_quantity=Decimal(4), defects=(Defect(code="xước", quantity=1),)),
    ),
    "packing": build(*PATH[:10]),
    "ready_to_ship": build(*PATH),
    "shipped": build(*PATH, d.Ship(shipment_id=S1, carrier="GHN", quantity=Decimal(2))),
    "delivered": build(
        *PATH, d.Ship(shipment_id=S1, carrier="GHN", quantity=Decimal(4)), d.ConfirmDelivery(shipment_id=S1)
    ),
    "on_hold": build(*PATH[:2], d.Hold(reason="thiếu nhân công")),
    "cancelled": build(*PATH[:2], d.Cancel(reason="khách hủy")),
}
COMMANDS: dict[str, d.Command] = {
    "create": CREATE,
    "plan": PLAN,
    "start_design": d.StartDesign(),
    "approve_design": d.ApproveDesign(),
    "request_materials": d.RequestMaterials(materials=MATERIALS),
    "receive_materials": d.ReceiveMaterials(materials=MATERIALS),
    "report_shortage": d.ReportShortage(component="máy nén", quantity_short=Decimal(1)),
    "start_assembly": d.StartAssembly(),
    "record_output": d.RecordOutput(product="Tủ đông 500L", quantity=Decimal(1)),
    "scrap": d.Scrap(product="Tủ đông 500L", quantity=Decimal(1), cause="móp vỏ"),
    "complete_assembly": d.CompleteAssembly(),
    "record_inspection": d.RecordInspection(passed=True, inspected_quantity=Decimal(4)),
    "complete_rework": d.CompleteRework(quantity=Decimal(1)),
    "pack": d.Pack(packages=1),
    "ship": d.Ship(shipment_id=S2, carrier="Viettel Post", quantity=Decimal(2)),
    "confirm_delivery": d.ConfirmDelivery(shipment_id=S1),
    "hold": d.Hold(reason="máy hỏng"),
    "resume": d.Resume(),
    "change_due_date": d.ChangeDueDate(due_date=date(2027, 1, 10), reason="khách dời ngày"),
    "cancel": d.Cancel(reason="khách hủy"),
    "erase_contact": d.EraseContact(reason="data subject request"),
}
ORDERED = (
    "none",
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
    "on_hold",
    "cancelled",
)
# The expected table, written out: the stages where each command is allowed (everything else is refused)
ALLOWED = {
    "create": {"none"},
    "plan": {"new"},
    "start_design": {"planned"},
    "approve_design": {"in_design"},
    "request_materials": {"planned", "procuring"},
    "receive_materials": {"procuring"},
    "report_shortage": {"procuring", "assembling"},
    "start_assembly": {"procuring"},
    "record_output": {"assembling", "rework"},
    "scrap": {"assembling", "rework"},
    "complete_assembly": {"assembling"},
    "record_inspection": {"quality_check"},
    "complete_rework": {"rework"},
    "pack": {"packing"},
    "ship": {"ready_to_ship", "shipped"},
    "confirm_delivery": {"shipped", "delivered"},
    "hold": {
        "new",
        "planned",
        "in_design",
        "procuring",
        "assembling",
        "quality_check",
        "rework",
        "packing",
        "ready_to_ship",
    },
    "resume": {"on_hold"},
    "change_due_date": {
        "new",
        "planned",
        "in_design",
        "procuring",
        "assembling",
        "quality_check",
        "rework",
        "packing",
        "ready_to_ship",
        "on_hold",
        "shipped",
    },
    "cancel": {
        "new",
        "planned",
        "in_design",
        "procuring",
        "assembling",
        "quality_check",
        "rework",
        "packing",
        "ready_to_ship",
        "on_hold",
    },
    "erase_contact": set(ORDERED) - {"none"},  # whatever the order's stage: the person may be forgotten
}
PAIRS = [(s, c) for c in COMMANDS for s in ORDERED]


def test_the_table_matches_the_code() -> None:
    assert {c: set(v) for c, v in d.RULES.items()} == ALLOWED


@pytest.mark.parametrize(("stage", "command"), PAIRS, ids=[f"{s}-{c}" for s, c in PAIRS])
def test_rule(stage: str, command: str) -> None:
    state = STATES[stage]
    assert state.stage == stage
    if stage in ALLOWED[command]:
        events = run(state, COMMANDS[command])
        if command == "confirm_delivery" and stage == "delivered":
            assert events == [], "a delivery confirmed twice is recorded once"
        else:
            assert events, f"{command} in {stage} should produce events"
    else:
        with pytest.raises(d.OrderRuleError) as refused:
            run(state, COMMANDS[command])
        expected = "order_not_found" if stage == "none" else "order_exists" if command == "create" else f"order_{stage}"
        assert refused.value.rule == expected
        assert str(refused.value)


# ---------------------------------------------------------------------------------------------- given → when → then
# Where the answer depends on the order's history: the history as events, a command, the events it adds (or the
# rule refusing it). The history below is an order's path from creation to packed, event by event.
PRODUCT = "Tủ đông 500L"
DUE = date(2026, 12, 20)
CREATED = ProductionOrderCreated(
    order_id=ORDER,
    stage_after="new",
    customer="Siêu thị Bình An",
    lines=LINES,
    due_date=DUE,
    origin="api",
    contact_id="c-7",
    created_at=NOW,
)
PLANNED = ProductionOrderPlanned(
    order_id=ORDER, stage_after="planned", planned_start=date(2026, 11, 25), planned_end=date(2026, 12, 15)
)
IN_DESIGN = DesignStarted(order_id=ORDER, stage_after="in_design")
DESIGNED = DesignApproved(order_id=ORDER, stage_after="procuring", revision=1, approved_by="u-prod")
REQUESTED = MaterialsRequested(order_id=ORDER, stage_after="procuring", materials=MATERIALS)
RECEIVED = MaterialsReceived(order_id=ORDER, stage_after="procuring", materials=MATERIALS, complete=True)
ASSEMBLING = AssemblyStarted(order_id=ORDER, stage_after="assembling", started_at=NOW)
PRODUCED = UnitsProduced(order_id=ORDER, stage_after="assembling", product=PRODUCT, quantity=Decimal(4))
ASSEMBLED = AssemblyCompleted(order_id=ORDER, stage_after="quality_check", good_quantity=Decimal(4))
FAILED = QualityInspectionFailed(
    order_id=ORDER,
    stage_after="rework",
    attempt=1,
    inspected_quantity=Decimal(4),
    defects=(Defect(code="xước", quantity=1),),
    at=NOW,
)
PASSED = QualityInspectionPassed(
    order_id=ORDER, stage_after="packing", attempt=1, inspected_quantity=Decimal(4), at=NOW
)
PACKED = OrderPacked(order_id=ORDER, stage_after="ready_to_ship", packages=2, quantity=Decimal(4))
TO_ASSEMBLY = (CREATED, PLANNED, IN_DESIGN, DESIGNED, REQUESTED, RECEIVED, ASSEMBLING)
TO_INSPECTION = (*TO_ASSEMBLY, PRODUCED, ASSEMBLED)
TO_SHIPPING = (*TO_INSPECTION, PASSED, PACKED)
LATE = datetime(2026, 12, 20, 17, 30, tzinfo=UTC)  # 21 December 00:30 in Hà Nội: a day after the promised date


def order_slice(now: datetime = NOW) -> Slice[d.Order]:
    return Slice(d.order_decider, lambda order, command: d.decide(order, command, now, ORDER, actor="u-prod", tz=TZ))


def shipped(shipment: uuid.UUID, quantity: int) -> OrderShipped:
    return OrderShipped(
        order_id=ORDER,
        stage_after="shipped",
        shipment_id=shipment,
        carrier="GHN",
        quantity=Decimal(quantity),
        shipped_at=NOW,
        promised_date=DUE,
    )


def test_the_given_history_is_the_path_the_commands_take() -> None:
    """The events above are what the commands of PATH record: the slices start from states the table knows."""
    assert d.order_decider.fold(TO_SHIPPING) == STATES["ready_to_ship"]


def test_a_shipment_is_recorded_once_and_never_more_than_was_packed() -> None:
    given = order_slice().given(*TO_SHIPPING, shipped(S1, 1))
    given.when(d.Ship(shipment_id=S2, carrier="GHN", quantity=Decimal(3))).then(shipped(S2, 3))
    given.when(d.Ship(shipment_id=S1, carrier="GHN", quantity=Decimal(1))).then()  # a retried request
    refused = given.when(d.Ship(shipment_id=S2, carrier="GHN", quantity=Decimal(4))).refused("ship_exceeds_packed")
    assert "3 packed units are left" in refused.message


def test_partial_deliveries_are_on_time_by_the_promised_date_in_the_business_time_zone() -> None:
    two_shipments = (*TO_SHIPPING, shipped(S1, 1), shipped(S2, 3))
    on_the_19th = datetime(2026, 12, 19, 9, tzinfo=UTC)
    first = OrderDelivered(
        order_id=ORDER, stage_after="shipped", shipment_id=S1, delivered_at=on_the_19th, quantity=1, on_time=True
    )
    late = order_slice(now=LATE)
    late.given(*two_shipments).when(d.ConfirmDelivery(shipment_id=S1, delivered_at=on_the_19th)).then(first)
    late.given(*two_shipments, first).when(d.ConfirmDelivery(shipment_id=S2)).then(
        OrderDelivered(
            order_id=ORDER, stage_after="delivered", shipment_id=S2, delivered_at=LATE, quantity=3, on_time=False
        )
    )
    late.given(*two_shipments, first).when(d.ConfirmDelivery(shipment_id=S1)).then()  # confirmed twice: once
    order_slice().given(*two_shipments).when(d.ConfirmDelivery(shipment_id=uuid.uuid4())).refused("unknown_shipment")
    order_slice().given(*two_shipments).when(d.ConfirmDelivery(shipment_id=S1, delivered_at=LATE)).refused(
        "delivery_in_future"
    )


def test_inspection_attempts_count_and_rework_returns_to_inspection() -> None:
    reworked = ReworkCompleted(order_id=ORDER, stage_after="quality_check", quantity=Decimal(1))
    order_slice().given(*TO_INSPECTION, FAILED).when(d.CompleteRework(quantity=Decimal(1))).then(reworked)
    order_slice().given(*TO_INSPECTION, FAILED, reworked).when(
        d.RecordInspection(passed=True, inspected_quantity=Decimal(4))
    ).then(QualityInspectionPassed(order_id=ORDER, stage_after="packing", attempt=2, inspected_quantity=4, at=NOW))


def test_rules_inside_the_stages() -> None:
    order = order_slice()
    order.given(*TO_ASSEMBLY).when(d.CompleteAssembly()).refused("short_output")
    order.given(*TO_ASSEMBLY, PRODUCED).when(d.CompleteAssembly()).then(ASSEMBLED)
    order.given(*TO_ASSEMBLY[:5]).when(d.StartAssembly()).refused("materials_pending")
    order.given(*TO_ASSEMBLY).when(d.RecordOutput(product="Lò nướng", quantity=Decimal(1))).refused("unknown_product")
    order.given(*TO_ASSEMBLY, PRODUCED).when(d.Scrap(product=PRODUCT, quantity=Decimal(9), cause="x")).refused(
        "scrap_exceeds_output"
    )
    order.given(CREATED).when(d.ChangeDueDate(due_date=NOW.date() - timedelta(days=1), reason="x")).refused(
        "due_date_past"
    )
    order.given(CREATED).when(d.ChangeDueDate(due_date=DUE, reason="x")).then()  # the date it has: nothing new
    order.given(CREATED).when(d.ChangeDueDate(due_date=date(2027, 1, 10), reason="khách dời")).then(
        PromisedDateChanged(order_id=ORDER, stage_after="new", old=DUE, new=date(2027, 1, 10), reason="khách dời")
    )


def test_an_order_resumes_in_the_stage_it_left() -> None:
    held = ProductionOrderPutOnHold(order_id=ORDER, stage_after="on_hold", reason="thiếu nhân công", held_at=NOW)
    order_slice().given(CREATED, PLANNED, held).when(d.Resume()).then(
        ProductionOrderResumed(order_id=ORDER, stage_after="planned")
    )


def test_a_contact_is_erased_once() -> None:
    erased = OrderContactErased(order_id=ORDER, contact_id="c-7", reason="data subject request", erased_at=NOW)
    erase = d.EraseContact(reason="data subject request")
    order_slice().given(*TO_SHIPPING).when(erase).then(erased)
    order_slice().given(*TO_SHIPPING, erased).when(erase).refused("contact_erased")
    order_slice().given(CREATED.model_copy(update={"contact_id": None})).when(erase).refused("no_contact")


def plan_slice() -> Slice[d.DemandPlan]:
    return Slice(d.plan_decider, lambda plan, command: d.decide_plan(plan, command, PRODUCT, "2026-12", "u-prod"))


def test_a_demand_plan_is_approved_once_and_then_revised_with_a_reason() -> None:
    month = {"product": PRODUCT, "period": "2026-12"}
    forecast = DemandForecastRecorded(**month, quantity=Decimal(10), method="manual")
    approved = ProductionPlanApproved(**month, quantity=Decimal(12), approved_by="u-prod")
    plan = plan_slice()
    plan.given(forecast).when(d.PlanCommand(action="forecast", quantity=Decimal(10))).then()  # the same forecast
    plan.given(forecast).when(d.PlanCommand(action="approve", quantity=Decimal(12))).then(approved)
    plan.given(forecast).when(d.PlanCommand(action="revise", quantity=Decimal(9), reason="x")).refused(
        "plan_not_approved"
    )
    plan.given(forecast, approved).when(d.PlanCommand(action="approve", quantity=Decimal(9))).refused("plan_approved")
    plan.given(forecast, approved).when(d.PlanCommand(action="revise", quantity=Decimal(9))).refused("reason_required")
    plan.given(forecast, approved).when(d.PlanCommand(action="revise", quantity=Decimal(9), reason="khách giảm")).then(
        ProductionPlanRevised(**month, old=Decimal(12), new=Decimal(9), reason="khách giảm")
    )
