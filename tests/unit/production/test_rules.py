"""The production order's rule table, pair by pair, and the rules inside the stages."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.production import domain as d
from services.production.events import Defect, Material, OrderDelivered, OrderLine

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
ORDER = uuid.UUID("00000000-0000-0000-0000-0000000000f1")
S1 = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
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
    "ship": d.Ship(carrier="Viettel Post", quantity=Decimal(2)),
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


def test_partial_shipments_and_on_time_delivery_in_the_business_time_zone() -> None:
    state = STATES["ready_to_ship"]
    s2 = uuid.uuid4()
    state = d.order_decider.fold(run(state, d.Ship(shipment_id=S1, carrier="GHN", quantity=Decimal(1))), state)
    with pytest.raises(d.OrderRuleError, match="3 packed units are left"):
        run(state, d.Ship(carrier="GHN", quantity=Decimal(4)))
    state = d.order_decider.fold(run(state, d.Ship(shipment_id=s2, carrier="GHN", quantity=Decimal(3))), state)
    late = datetime(2026, 12, 20, 17, 30, tzinfo=UTC)  # 21 December 00:30 in Hà Nội: a day late
    (first,) = run(
        state, d.ConfirmDelivery(shipment_id=S1, delivered_at=datetime(2026, 12, 19, 9, tzinfo=UTC)), now=late
    )
    assert isinstance(first, OrderDelivered)
    assert (first.on_time, first.stage_after) == (True, "shipped")
    state = d.order_decider.fold([first], state)
    (second,) = run(state, d.ConfirmDelivery(shipment_id=s2), now=late)
    assert (second.on_time, second.stage_after) == (False, "delivered")


def test_inspection_attempts_count_and_rework_returns_to_inspection() -> None:
    state = STATES["rework"]
    state = d.order_decider.fold(run(state, d.CompleteRework(quantity=Decimal(1))), state)
    assert state.stage == "quality_check"
    (passed,) = run(state, d.RecordInspection(passed=True, inspected_quantity=Decimal(4)))
    assert passed.attempt == 2


def test_rules_inside_the_stages() -> None:
    cases = [
        (STATES["assembling"], d.CompleteAssembly(), None),
        (build(*PATH[:7]), d.CompleteAssembly(), "short_output"),
        (build(*PATH[:5]), d.StartAssembly(), "materials_pending"),
        (STATES["assembling"], d.RecordOutput(product="Lò nướng", quantity=Decimal(1)), "unknown_product"),
        (STATES["assembling"], d.Scrap(product="Tủ đông 500L", quantity=Decimal(9), cause="x"), "scrap_exceeds_output"),
        (STATES["new"], d.ChangeDueDate(due_date=NOW.date() - timedelta(days=1), reason="x"), "due_date_past"),
        (STATES["shipped"], d.ConfirmDelivery(shipment_id=uuid.uuid4()), "unknown_shipment"),
    ]
    for state, command, rule in cases:
        if rule is None:
            assert run(state, command)
            continue
        with pytest.raises(d.OrderRuleError) as e:
            run(state, command)
        assert e.value.rule == rule
    assert d.order_decider.fold(run(STATES["on_hold"], d.Resume()), STATES["on_hold"]).stage == "planned"
