"""The sales target aggregate: a revenue target for one owner or one team and a period."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.deals.domain.errors import DealRuleError
from services.deals.events import SalesTargetSet
from shared.core.decider import Decider
from shared.core.events import DomainEvent
from shared.core.limits import MAX_TEXT_CHARS, Identifier, MoneyField
from shared.core.money import Money


@dataclass(frozen=True)
class SalesTarget:
    target_id: uuid.UUID | None = None
    owner_id: str | None = None
    team_id: str | None = None
    period: str = ""
    amount: Money | None = None


def evolve_target(state: SalesTarget, event: DomainEvent) -> SalesTarget:
    if isinstance(event, SalesTargetSet):
        return SalesTarget(event.target_id, event.owner_id, event.team_id, event.period, event.amount)
    return state


target_decider = Decider(initial=SalesTarget(), evolve=evolve_target)


class SetSalesTarget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    owner_id: Identifier | None = None
    team_id: Identifier | None = None
    period: Annotated[str, Field(pattern=r"^[12]\d{3}-(0[1-9]|1[0-2]|Q[1-4])$")]  # a month or a quarter
    amount: MoneyField
    reason: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> SetSalesTarget:
        if (self.owner_id is None) == (self.team_id is None):
            raise ValueError("a target is for one owner or one team")
        if self.amount.amount <= 0:
            raise ValueError("a target is above zero")
        return self


def set_target(state: SalesTarget, target_id: uuid.UUID, cmd: SetSalesTarget) -> list[DomainEvent]:
    if state.target_id is not None and (state.owner_id, state.team_id, state.period) != (
        cmd.owner_id,
        cmd.team_id,
        cmd.period,
    ):
        raise DealRuleError("target_scope_fixed", "a target keeps its owner or team and period; set a new one")
    if state.amount == cmd.amount:
        return []
    return [
        SalesTargetSet(
            target_id=target_id,
            owner_id=cmd.owner_id,
            team_id=cmd.team_id,
            period=cmd.period,
            amount=cmd.amount,
            reason=cmd.reason,
        )
    ]
