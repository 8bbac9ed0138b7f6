"""What the deals API's figures of people and plans answer (``/analytics/scorecard``, ``/analytics/target-plan``,
``/analytics/next-steps``, ``/analytics/success-factors``), as models with an example taken from a real answer
(decision 0029; the types: ``services.deals.api.figures``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.deals.api.figures import Amount, Days, Number, Ratio


class Scorecard(BaseModel):
    """One salesperson's period: activity, results, pipeline now, target and attainment."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "owner_id": "u-an",
                    "period": "2026-09",
                    "currency": "VND",
                    "opened": 40,
                    "won": 25,
                    "lost": 16,
                    "win_rate": 0.609756,
                    "won_value": "893700000",
                    "average_deal_size": "35748000",
                    "mean_cycle_days": 37.8492,
                    "open_now": 41,
                    "weighted_pipeline_now": "727563000",
                    "stuck_now": 21,
                    "activities": {"call": 17, "demo": 9, "email": 9, "meeting": 12},
                    "avg_close_date_pushes": 0.2,
                    "target": "400000000",
                    "attainment": 2.23425,
                }
            ]
        },
    )
    owner_id: str
    period: str
    currency: str
    opened: int
    won: int
    lost: int
    win_rate: Ratio
    won_value: Amount
    average_deal_size: Amount | None
    mean_cycle_days: Days
    open_now: int
    weighted_pipeline_now: Amount
    stuck_now: int
    activities: dict[str, int] = Field(description="per activity type, those logged in the period")
    avg_close_date_pushes: float | None
    target: Amount | None
    attainment: Ratio


class PlanStage(BaseModel):
    model_config = ConfigDict(extra="allow")
    stage_id: str
    p_win: Ratio = Field(description="won / resolved among the deals that entered the stage")
    open_now: int
    new_entries_needed: int | None = Field(description="null: no deal that entered the stage was ever won")


class TargetPlan(BaseModel):
    """The deals still needed at each stage to reach an owner's or a team's target for a period."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "period": "2026-09",
                    "owner_id": "u-hoa",
                    "team_id": None,
                    "currency": "VND",
                    "target": "900000000",
                    "won_so_far": "624900000",
                    "average_deal_size": "32931522",
                    "wins_needed": 9,
                    "expected_wins_from_open": 7.5,
                    "gap": 1.5,
                    "stages": [
                        {"stage_id": "target_identified", "p_win": 0.712629, "open_now": 6, "new_entries_needed": 3},
                        {"stage_id": "negotiation", "p_win": 0.990476, "open_now": 8, "new_entries_needed": 2},
                    ],
                }
            ]
        },
    )
    period: str
    owner_id: str | None
    team_id: str | None
    currency: str
    target: Amount
    won_so_far: Amount
    average_deal_size: Amount | None
    wins_needed: int
    expected_wins_from_open: Number
    gap: Number
    stages: list[PlanStage]


class OwnerCounts(BaseModel):
    model_config = ConfigDict(extra="allow")
    owner_id: str
    open_deals: int
    without_next_step: int
    with_overdue: int


class TeamCounts(BaseModel):
    model_config = ConfigDict(extra="allow")
    team_id: str | None = Field(description="null: the deals of no team")
    open_deals: int
    without_next_step: int
    with_overdue: int


class StageCounts(BaseModel):
    model_config = ConfigDict(extra="allow")
    stage_id: str
    name: str | None
    order: int
    open_deals: int
    without_next_step: int
    with_overdue: int


class NextSteps(BaseModel):
    """Open deals, those without a next step and those with an overdue activity: in all, per owner, team and
    stage."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-12-07T02:45:44.333144+00:00",
                    "pipeline_id": "default",
                    "open_deals": 3,
                    "without_next_step": 1,
                    "with_overdue": 1,
                    "by_owner": [{"owner_id": "u-lan", "open_deals": 3, "without_next_step": 1, "with_overdue": 1}],
                    "by_team": [{"team_id": "north", "open_deals": 3, "without_next_step": 1, "with_overdue": 1}],
                    "by_stage": [
                        {
                            "stage_id": "target_identified",
                            "name": "Target identified",
                            "order": 10,
                            "open_deals": 3,
                            "without_next_step": 1,
                            "with_overdue": 1,
                        }
                    ],
                }
            ]
        },
    )
    as_of: str = Field(json_schema_extra={"format": "date-time"})
    pipeline_id: str
    open_deals: int
    without_next_step: int = Field(description="open deals with no open activity")
    with_overdue: int = Field(description="open deals with an activity past due")
    by_owner: list[OwnerCounts]
    by_team: list[TeamCounts]
    by_stage: list[StageCounts]


class SuccessFactor(BaseModel):
    """Per stage and activity type (or channel, with ``by=channel``): conversion with and without it."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "stage_id": "target_identified",
                    "activity_type": "demo",
                    "deals_with": 103,
                    "conversion_with": 0.883495,
                    "deals_without": 872,
                    "conversion_without": 0.827982,
                    "lift": 1.067046,
                }
            ]
        },
    )
    stage_id: str
    activity_type: str | None = Field(None, description="with by=activity_type (absent otherwise)")
    channel: str | None = Field(None, description="with by=channel (absent otherwise)")
    deals_with: int
    conversion_with: Ratio
    deals_without: int
    conversion_without: Ratio
    lift: float | None = Field(description="conversion with / without; null when either is missing or zero")
