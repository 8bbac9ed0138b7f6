"""The demand plan of a product for a month: the forecast recorded, then the plan approved and revised."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from services.production.domain.errors import OrderRuleError
from services.production.events import (
    DemandForecastRecorded,
    DemandPlanEvent,
    ProductionPlanApproved,
    ProductionPlanRevised,
)
from shared.core.decider import Decider
from shared.core.events import DomainEvent
from shared.core.limits import MAX_TEXT_CHARS, QuantityOrZero


@dataclass(frozen=True)
class DemandPlan:
    forecast: Decimal | None = None
    planned: Decimal | None = None


def evolve_plan(p: DemandPlan, e: DomainEvent) -> DemandPlan:
    match e:
        case DemandForecastRecorded():
            return DemandPlan(e.quantity, p.planned)
        case ProductionPlanApproved():
            return DemandPlan(p.forecast, e.quantity)
        case ProductionPlanRevised():
            return DemandPlan(p.forecast, e.new)
    return p


plan_decider = Decider(initial=DemandPlan(), evolve=evolve_plan)


class PlanCommand(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    action: str = Field(pattern=r"^(forecast|approve|revise)$")
    quantity: QuantityOrZero
    method: str = Field("manual", pattern=r"^(pipeline_weighted|manual|history)$")
    reason: str | None = None


def decide_plan(p: DemandPlan, cmd: PlanCommand, product: str, period: str, actor: str) -> list[DemandPlanEvent]:
    base = {"product": product, "period": period}
    if cmd.action == "forecast":
        return (
            []
            if p.forecast == cmd.quantity
            else [DemandForecastRecorded(**base, quantity=cmd.quantity, method=cmd.method)]
        )
    if cmd.action == "approve":
        if p.planned is not None:
            raise OrderRuleError("plan_approved", "the plan is approved: revise it with a reason")
        return [ProductionPlanApproved(**base, quantity=cmd.quantity, approved_by=actor)]
    if p.planned is None:
        raise OrderRuleError("plan_not_approved", "approve a plan before revising it")
    if not cmd.reason:
        raise OrderRuleError("reason_required", "a revision says why")
    if p.planned == cmd.quantity:
        return []
    return [ProductionPlanRevised(**base, old=p.planned, new=cmd.quantity, reason=cmd.reason)]
