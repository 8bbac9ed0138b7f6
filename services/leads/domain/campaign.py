"""The campaign: created, launched/paused/ended, budget, spend per day (idempotent per day; corrections
explicit). Pure: the campaign's id and the spend's day come in as arguments."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from services.leads.domain.errors import LeadRuleError, NotFoundError
from services.leads.events import (
    CampaignBudgetChanged,
    CampaignCreated,
    CampaignEvent,
    CampaignSpendCorrected,
    CampaignSpendRecorded,
    CampaignStatusChanged,
)
from shared.core.decider import Decider, replace
from shared.core.events import DomainEvent
from shared.core.limits import MAX_TEXT_CHARS, Code, Count, Day, MoneyField
from shared.core.money import Money


@dataclass(frozen=True)
class Campaign:
    campaign_id: uuid.UUID | None = None
    status: str = "none"  # none, draft, active, paused, ended
    name: str = ""
    channel: str = ""
    code: str | None = None
    budget: Money | None = None
    spend: Mapping[date, Money] = field(default_factory=dict)


def evolve_campaign(c: Campaign, event: DomainEvent) -> Campaign:
    if not isinstance(event, CampaignEvent):
        return c
    match event:
        case CampaignCreated():
            return Campaign(event.campaign_id, "draft", event.name, event.channel, event.code, event.budget)
        case CampaignStatusChanged():
            return replace(c, status=event.status)
        case CampaignBudgetChanged():
            return replace(c, budget=event.new)
        case CampaignSpendRecorded():
            return replace(c, spend={**c.spend, event.day: event.amount})
        case CampaignSpendCorrected():
            return replace(c, spend={**c.spend, event.day: event.new})
    return c


campaign_decider = Decider(initial=Campaign(), evolve=evolve_campaign)


# ---------------------------------------------------------------------------------------------- commands
class CreateCampaign(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    name: Annotated[str, Field(min_length=1, max_length=200)]
    channel: Annotated[str, Field(min_length=1, max_length=60)]
    code: Code | None = None
    budget: MoneyField
    starts_on: Day | None = None
    ends_on: Day | None = None


class ChangeCampaignStatus(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    status: Annotated[str, Field(pattern=r"^(active|paused|ended)$")]
    reason: str | None = None


class ChangeBudget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    budget: MoneyField


class RecordSpend(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    amount: MoneyField
    impressions: Count = 0
    clicks: Count = 0
    source: Code = "manual"
    correction_reason: str | None = None  # to change a day already recorded


STATUS_MOVES = {"active": {"draft", "paused"}, "paused": {"active"}, "ended": {"draft", "active", "paused"}}


# ---------------------------------------------------------------------------------------------- decisions
def _create(c: Campaign, command: CreateCampaign, campaign_id: uuid.UUID, day: date | None) -> list[DomainEvent]:
    if c.status != "none":
        raise LeadRuleError("campaign_exists", "the campaign exists already")
    if command.ends_on and command.starts_on and command.ends_on < command.starts_on:
        raise LeadRuleError("ends_before_start", "a campaign ends after it starts")
    return [
        CampaignCreated(
            campaign_id=campaign_id,
            name=command.name,
            channel=command.channel,
            code=command.code,
            budget=command.budget,
            starts_on=command.starts_on,
            ends_on=command.ends_on,
        )
    ]


def _change_status(
    c: Campaign, command: ChangeCampaignStatus, campaign_id: uuid.UUID, day: date | None
) -> list[DomainEvent]:
    if c.status == command.status:
        return []
    if c.status not in STATUS_MOVES[command.status]:
        raise LeadRuleError("campaign_status", f"a {c.status} campaign cannot become {command.status}")
    return [CampaignStatusChanged(campaign_id=campaign_id, status=command.status, reason=command.reason)]


def _change_budget(c: Campaign, command: ChangeBudget, campaign_id: uuid.UUID, day: date | None) -> list[DomainEvent]:
    assert c.budget is not None
    if command.budget.currency != c.budget.currency:
        raise LeadRuleError("currency_mismatch", f"the campaign's budget is in {c.budget.currency}")
    if command.budget == c.budget:
        return []
    return [CampaignBudgetChanged(campaign_id=campaign_id, old=c.budget, new=command.budget)]


def _record_spend(c: Campaign, command: RecordSpend, campaign_id: uuid.UUID, day: date | None) -> list[DomainEvent]:
    assert day is not None and c.budget is not None
    if command.amount.currency != c.budget.currency:
        raise LeadRuleError("currency_mismatch", f"the campaign's spend is in {c.budget.currency}")
    if command.amount.amount < 0:
        raise LeadRuleError("negative_spend", "spend is zero or more")
    if c.status == "draft":
        raise LeadRuleError("campaign_not_launched", "spend is recorded once the campaign runs")
    previous = c.spend.get(day)
    if previous is None:
        return [
            CampaignSpendRecorded(
                campaign_id=campaign_id,
                day=day,
                amount=command.amount,
                impressions=command.impressions,
                clicks=command.clicks,
                source=command.source,
            )
        ]
    if previous == command.amount and command.correction_reason is None:
        return []  # the same day imported again
    if command.correction_reason is None:
        raise LeadRuleError("spend_recorded", f"spend for {day} is recorded: send a correction_reason")
    return [
        CampaignSpendCorrected(
            campaign_id=campaign_id,
            day=day,
            old=previous,
            new=command.amount,
            impressions=command.impressions,
            clicks=command.clicks,
            reason=command.correction_reason,
        )
    ]


CampaignDecision = Callable[[Campaign, Any, uuid.UUID, date | None], list[DomainEvent]]
DECISIONS: dict[type[BaseModel], CampaignDecision] = {
    CreateCampaign: _create,
    ChangeCampaignStatus: _change_status,
    ChangeBudget: _change_budget,
    RecordSpend: _record_spend,
}


def decide_campaign(
    c: Campaign, command: BaseModel, campaign_id: uuid.UUID, day: date | None = None
) -> list[DomainEvent]:
    """The events a command produces on a campaign (``day``: the day of a spend). Only a creation finds none."""
    decision = DECISIONS.get(type(command))
    if decision is None:
        raise AssertionError(f"no decision for {command!r}")
    if c.status == "none" and not isinstance(command, CreateCampaign):
        raise NotFoundError("campaign_not_found", "no such campaign")
    return decision(c, command, campaign_id, day)
