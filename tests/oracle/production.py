"""The production figures from first principles, from a generated plan (plain data). Imports nothing from
services/ or shared/: the stage each step leads to and the formulas are written out here (DOMAIN.md §2.5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.oracle.sales import percentile

NEXT_STAGE = {
    "create": "new",
    "plan": "planned",
    "start_design": "in_design",
    "approve_design": "procuring",
    "request_materials": "procuring",
    "receive_materials": "procuring",
    "start_assembly": "assembling",
    "complete_assembly": "quality_check",
    "rework": "quality_check",
    "pack": "ready_to_ship",
    "ship": "shipped",
    "hold": "on_hold",
    "cancel": "cancelled",
}
DAY = 86400.0


@dataclass
class Order:
    created: datetime
    qty: int
    due: Any
    stage: str = "new"
    entered: datetime | None = None
    held_from: str | None = None
    delivered: int = 0
    shipments: dict[int, int] = field(default_factory=dict)
    completed_at: datetime | None = None
    first_delivery: tuple[datetime, int] | None = None
    inspections: list[tuple[datetime, bool, int]] = field(default_factory=list)  # at, passed, units inspected
    scrapped: list[tuple[datetime, int]] = field(default_factory=list)  # at, units


class Production:
    def __init__(self, actions: list[Any]) -> None:
        self.orders: dict[Any, Order] = {}
        self.visits: list[tuple[str, datetime, datetime | None]] = []  # stage, entered, exited
        self.open_visit: dict[Any, int] = {}
        self.units: list[tuple[datetime, int, int]] = []  # at, good, scrapped
        for a in actions:
            self._apply(a)

    def _move(self, key: Any, stage: str, at: datetime) -> None:
        o = self.orders[key]
        if stage == o.stage:
            return
        i = self.open_visit[key]
        s, entered, _ = self.visits[i]
        self.visits[i] = (s, entered, at)
        self.visits.append((stage, at, None))
        self.open_visit[key] = len(self.visits) - 1
        o.stage, o.entered = stage, at

    def _apply(self, a: Any) -> None:
        p, k = a.params, a.order
        if a.kind == "create":
            self.orders[k] = Order(a.at, p["qty"], p["due"], entered=a.at)
            self.visits.append(("new", a.at, None))
            self.open_visit[k] = len(self.visits) - 1
            return
        o = self.orders[k]
        if a.kind == "output":
            self.units.append((a.at, p["qty"], 0))
        elif a.kind == "scrap":
            self.units.append((a.at, -p["qty"], p["qty"]))
            o.scrapped.append((a.at, p["qty"]))
        elif a.kind == "inspect":
            o.inspections.append((a.at, p["passed"], p.get("qty", 1)))
            self._move(k, "packing" if p["passed"] else "rework", a.at)
        elif a.kind == "redate":
            o.due = p["due"]
        elif a.kind == "hold":
            o.held_from = o.stage
            self._move(k, "on_hold", a.at)
        elif a.kind == "resume":
            self._move(k, o.held_from or "new", a.at)
            o.held_from = None
        elif a.kind == "ship":
            o.shipments[p["n"]] = p["qty"]
            self._move(k, "shipped", a.at)
        elif a.kind == "deliver":
            qty = o.shipments[p["n"]]
            o.delivered += qty
            o.first_delivery = o.first_delivery or (a.at, qty)
            if o.delivered >= o.qty:
                o.completed_at = a.at
                self._move(k, "delivered", a.at)
        elif a.kind in NEXT_STAGE:
            self._move(k, NEXT_STAGE[a.kind], a.at)

    def board(self, now: datetime, tz: str) -> dict[str, Any]:
        today = now.astimezone(ZoneInfo(tz)).date()
        stages: dict[str, dict[str, Any]] = {}
        open_orders = [o for o in self.orders.values() if o.stage not in ("delivered", "cancelled")]
        for o in open_orders:
            s = stages.setdefault(o.stage, {"orders": 0, "quantity": 0, "late": 0, "oldest_age_days": 0})
            s["orders"] += 1
            s["quantity"] += o.qty
            s["late"] += o.due < today
            s["oldest_age_days"] = max(s["oldest_age_days"], int((now - o.created).total_seconds() // DAY))
        wip = sum(1 for o in open_orders if o.stage not in ("new", "planned"))
        return {
            "stages": stages,
            "open_orders": len(open_orders),
            "wip": wip,
            "late": sum(s["late"] for s in stages.values()),
        }

    def cycle_times(self, start: datetime, end: datetime) -> dict[str, Any]:
        by_stage: dict[str, list[float]] = {}
        for stage, entered, exited in self.visits:
            if exited is not None and start <= exited < end:
                by_stage.setdefault(stage, []).append((exited - entered).total_seconds() / DAY)
        leads = [
            (o.completed_at - o.created).total_seconds() / DAY
            for o in self.orders.values()
            if o.completed_at and start <= o.completed_at < end
        ]
        return {
            "stages": [
                {"stage": s, "visits": len(v), "median_days": percentile(v, 0.5), "p90_days": percentile(v, 0.9)}
                for s, v in sorted(by_stage.items())
            ],
            "lead_time": {
                "orders": len(leads),
                "median_days": percentile(leads, 0.5),
                "p90_days": percentile(leads, 0.9),
            },
        }

    def quality(self, start: datetime, end: datetime) -> dict[str, Any]:
        """FPY over units (DOMAIN.md §2.5): units passing their first inspection without rework or scrap / units
        inspected, a unit scrapped before its order's first inspection counting as one that did not pass."""
        first = [o for o in self.orders.values() if o.inspections and start <= o.inspections[0][0] < end]
        inspected = sum(o.inspections[0][2] for o in first)
        passed = sum(o.inspections[0][2] for o in first if o.inspections[0][1])
        reworked = inspected - passed
        before = sum(q for o in first for at, q in o.scrapped if at < o.inspections[0][0])
        good = sum(g for at, g, _ in self.units if start <= at < end)
        scrapped = sum(s for at, _, s in self.units if start <= at < end)
        made = good + scrapped
        return {
            "inspected": str(inspected),
            "first_pass": str(passed),
            "scrapped_before_inspection": str(before),
            "fpy": round(passed / (inspected + before), 6) if first else None,
            "reworked": str(reworked),
            "rework_rate": round(reworked / inspected, 6) if first else None,
            "units_made": str(made),
            "units_scrapped": str(scrapped),
            "scrap_rate": round(scrapped / made, 6) if made else None,
        }

    def delivery(self, start: datetime, end: datetime, tz: str) -> dict[str, Any]:
        zone = ZoneInfo(tz)
        done = [o for o in self.orders.values() if o.completed_at and start <= o.completed_at < end]
        on_time = [o for o in done if o.completed_at and o.completed_at.astimezone(zone).date() <= o.due]
        otif = [
            o
            for o in done
            if o.first_delivery
            and o.first_delivery[0].astimezone(zone).date() <= o.due
            and o.first_delivery[1] >= o.qty
        ]
        late = [
            (o.completed_at.astimezone(zone).date() - o.due).days
            for o in done
            if o.completed_at and o.completed_at.astimezone(zone).date() > o.due
        ]
        return {
            "completed": len(done),
            "on_time": len(on_time),
            "otd": round(len(on_time) / len(done), 6) if done else None,
            "otif_orders": len(otif),
            "otif": round(len(otif) / len(done), 6) if done else None,
            "avg_days_late": round(sum(late) / len(late), 4) if late else None,
        }
