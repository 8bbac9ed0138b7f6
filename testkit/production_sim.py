"""A generated factory history: orders planned, designed, short of materials, built, failing inspection and
reworked, held, re-dated, shipped in parts, delivered late or on time, some cancelled. Plain data."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

START = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
DAYS = 150
PRODUCTS = ["Tủ đông 500L", "Tủ mát 2 cánh", "Quầy bar inox", "Bếp công nghiệp"]


@dataclass(frozen=True)
class Action:
    at: datetime
    order: uuid.UUID
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


def generate(n_orders: int, seed: int = 5) -> list[Action]:
    rng = random.Random(seed)
    out: list[Action] = []
    end = START + timedelta(days=DAYS)
    for _ in range(n_orders):
        order = uuid.UUID(int=rng.getrandbits(128))
        at = START + timedelta(days=rng.uniform(0, DAYS - 20), minutes=rng.randrange(600))
        product, qty = rng.choice(PRODUCTS), rng.randint(2, 12)
        due = (at + timedelta(days=rng.randint(14, 45))).date()
        acts: list[tuple[str, dict[str, Any]]] = [
            ("create", {"product": product, "qty": qty, "due": due}),
            ("plan", {}),
        ]
        if rng.random() < 0.4:
            acts += [("start_design", {}), ("approve_design", {})]
        acts.append(("request_materials", {}))
        if rng.random() < 0.15:
            acts.append(("report_shortage", {}))
        acts += [("receive_materials", {}), ("start_assembly", {})]
        scrap = rng.random() < 0.15
        acts.append(("output", {"qty": qty}))
        if scrap:
            acts += [("scrap", {"qty": 1}), ("output", {"qty": 1})]
        acts.append(("complete_assembly", {}))
        fails = 0
        while rng.random() < (0.25 if fails == 0 else 0.2) and fails < 3:
            fails += 1
            acts += [("inspect", {"passed": False, "qty": qty}), ("rework", {})]
        acts += [("inspect", {"passed": True, "qty": qty}), ("pack", {})]
        if rng.random() < 0.3:
            first = rng.randint(1, qty - 1)
            acts += [
                ("ship", {"n": 1, "qty": first}),
                ("ship", {"n": 2, "qty": qty - first}),
                ("deliver", {"n": 1}),
                ("deliver", {"n": 2}),
            ]
        else:
            acts += [("ship", {"n": 1, "qty": qty}), ("deliver", {"n": 1})]
        hold_at = rng.randrange(2, len(acts) - 3) if rng.random() < 0.12 else None
        redate_at = rng.randrange(2, len(acts) - 3) if rng.random() < 0.12 else None
        cancel_at = rng.randrange(2, 8) if rng.random() < 0.04 else None
        stop_at = rng.randrange(3, len(acts)) if rng.random() < 0.15 else None
        shipped = False
        for i, (kind, params) in enumerate(acts):
            if at >= end or (stop_at is not None and i >= stop_at):
                break
            if cancel_at == i:
                out.append(Action(at, order, "cancel"))
                break
            if hold_at == i and not shipped:
                out.append(Action(at, order, "hold"))
                at += timedelta(days=rng.uniform(1, 10))
                out.append(Action(at, order, "resume"))
            if redate_at == i:
                due = max(due + timedelta(days=rng.choice([3, 7, 14])), (at + timedelta(days=7)).date())
                out.append(Action(at, order, "redate", {"due": due}))
            out.append(Action(at, order, kind, params))
            shipped = shipped or kind == "ship"
            at += timedelta(days=rng.uniform(0.2, 4), minutes=rng.randrange(1, 300))
    out.sort(key=lambda a: (a.at, a.order.int))
    return out


def command(action: Action, product_of: dict[uuid.UUID, str]) -> Any:
    """The production service's command for an action."""
    from decimal import Decimal

    from services.production import domain
    from services.production.events import Defect, Material, OrderLine

    p, o = action.params, action.order
    materials = (Material(component="thép tấm", quantity=Decimal(2)),)
    match action.kind:
        case "create":
            product_of[o] = p["product"]
            return domain.CreateOrder(
                customer="Khách",
                lines=(OrderLine(product=p["product"], quantity=Decimal(p["qty"])),),
                due_date=p["due"],
            )
        case "plan":
            d = action.at.date()
            return domain.Plan(planned_start=d, planned_end=d + timedelta(days=20))
        case "start_design":
            return domain.StartDesign()
        case "approve_design":
            return domain.ApproveDesign()
        case "request_materials":
            return domain.RequestMaterials(materials=materials)
        case "report_shortage":
            return domain.ReportShortage(component="thép tấm", quantity_short=Decimal(1))
        case "receive_materials":
            return domain.ReceiveMaterials(materials=materials)
        case "start_assembly":
            return domain.StartAssembly()
        case "output":
            return domain.RecordOutput(product=product_of[o], quantity=Decimal(p["qty"]))
        case "scrap":
            return domain.Scrap(product=product_of[o], quantity=Decimal(p["qty"]), cause="móp")
        case "complete_assembly":
            return domain.CompleteAssembly()
        case "inspect":
            defects = () if p["passed"] else (Defect(code="xước", quantity=1),)
            inspected = Decimal(p.get("qty", 1))  # the units the inspection covers (the whole lot when generated)
            return domain.RecordInspection(passed=p["passed"], inspected_quantity=inspected, defects=defects)
        case "rework":
            return domain.CompleteRework(quantity=Decimal(1))
        case "pack":
            return domain.Pack(packages=1)
        case "ship":
            return domain.Ship(shipment_id=uuid.uuid5(o, str(p["n"])), carrier="GHN", quantity=Decimal(p["qty"]))
        case "deliver":
            return domain.ConfirmDelivery(shipment_id=uuid.uuid5(o, str(p["n"])))
        case "hold":
            return domain.Hold(reason="máy hỏng")
        case "resume":
            return domain.Resume()
        case "redate":
            return domain.ChangeDueDate(due_date=p["due"], reason="khách dời")
        case "cancel":
            return domain.Cancel(reason="khách hủy")
    raise AssertionError(action.kind)


def due_of(action: Action) -> date:
    return action.params["due"]
