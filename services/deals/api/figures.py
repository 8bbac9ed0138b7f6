"""What the deals API's numbers answer (``/forecast``, ``/forecast/changes``, ``/analytics/*``), as models: the
OpenAPI documents say it, with an example taken from a real answer, and a fuzz run checks each answer against it
(decision 0029). Amounts are decimals as strings in the asked currency (rounded to its minor unit); ratios and days
are JSON numbers (null when there is nothing to divide by). ``extra="allow"``: a figure added to an answer is
answered before its model names it."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema

Amount = Annotated[str, Field(description="a decimal as a string")]
# a whole or a fractional number, answered as computed (an int stays an int): a JSON number either way
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
Ratio = Annotated[float | None, Field(description="rounded to 6 places; null: nothing to divide by")]
Days = Annotated[float | None, Field(description="days, rounded to 4 places; null: none measured")]


class ForecastRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    period: str = Field(description="YYYY-MM of the close (won) or expected close (open); `unscheduled`: no date")
    owner_id: str
    currency: str
    won: Amount
    open_count: int
    potential: Amount
    weighted: Amount
    expected: Amount = Field(description="won + weighted")


class ForecastMonth(BaseModel):
    model_config = ConfigDict(extra="allow")
    period: str
    currency: str
    won: Amount
    open_count: int
    weighted: Amount
    expected: Amount
    target: Amount | None
    target_from_quarters: Amount | None = Field(description="the part of the target spread from quarter targets")
    expected_of_target: Ratio


_ROW: dict[str, JsonValue] = {
    "period": "2026-07",
    "owner_id": "u-binh",
    "currency": "VND",
    "won": "326100000",
    "open_count": 9,
    "potential": "229200000",
    "weighted": "112416000",
    "expected": "438516000",
}


class Forecast(BaseModel):
    """The forecast per month and owner (``rows``) and per month beside its target (``months``)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "as_of": None,
                    "rows": [_ROW],
                    "months": [
                        {
                            "period": "2026-07",
                            "currency": "VND",
                            "won": "326100000",
                            "open_count": 9,
                            "weighted": "112416000",
                            "expected": "438516000",
                            "target": "400000000",
                            "target_from_quarters": None,
                            "expected_of_target": 1.09629,
                        }
                    ],
                }
            ]
        },
    )
    as_of: str | None = Field(json_schema_extra={"format": "date-time"}, description="null: now")
    rows: list[ForecastRow]
    months: list[ForecastMonth]


class ChangeCount(BaseModel):
    model_config = ConfigDict(extra="allow")
    count: int
    value: Amount


class ChangeSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    created: ChangeCount
    won: ChangeCount
    lost: ChangeCount
    reopened: ChangeCount
    pulled_in: ChangeCount
    pushed_out: ChangeCount
    value_up: ChangeCount
    value_down: ChangeCount
    reassigned: ChangeCount


class DealChange(BaseModel):
    model_config = ConfigDict(extra="allow")
    deal_id: str = Field(json_schema_extra={"format": "uuid"})
    owner_id: str
    previous_owner_id: str | None
    changes: list[str]


_COUNT: dict[str, JsonValue] = {"count": 0, "value": "0"}


class ForecastChanges(BaseModel):
    """What moved the forecast between two recorded times, in all and deal by deal."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "since": "2026-11-01T00:00:00+00:00",
                    "until": None,
                    "currency": "VND",
                    "summary": {
                        "created": {"count": 1, "value": "35000000"},
                        "won": {"count": 1, "value": "35000000"},
                        "lost": _COUNT,
                        "reopened": _COUNT,
                        "pulled_in": _COUNT,
                        "pushed_out": _COUNT,
                        "value_up": _COUNT,
                        "value_down": _COUNT,
                        "reassigned": {"count": 1, "value": "25200000"},
                    },
                    "deals": [
                        {
                            "deal_id": "002c64c8-39bf-e3f3-4b82-f5a40029fdec",
                            "owner_id": "u-giang",
                            "previous_owner_id": "u-giang",
                            "changes": ["created", "won"],
                        },
                        {
                            "deal_id": "02f6a6f5-95c0-59fa-7b96-f8b83e948889",
                            "owner_id": "u-hoa",
                            "previous_owner_id": "u-an",
                            "changes": ["reassigned"],
                        },
                    ],
                }
            ]
        },
    )
    since: str = Field(json_schema_extra={"format": "date-time"})
    until: str | None = Field(json_schema_extra={"format": "date-time"}, description="null: now")
    currency: str
    summary: ChangeSummary
    deals: list[DealChange]


class StageFigures(BaseModel):
    model_config = ConfigDict(extra="allow")
    stage_id: str
    name: str
    entered: int = Field(description="deals whose first entry into the stage is in the window")
    advanced: int
    lost: int
    still_open: int
    conversion_rate: Ratio
    visits_ended: int
    mean_days: Days
    median_days: Days
    p90_days: Days
    backward_moves: int
    skipped: int


class ConvertedTotal(BaseModel):
    model_config = ConfigDict(extra="allow")
    currency: str
    total: Amount
    by_currency: dict[str, dict[str, str | None]] = Field(description="per currency: its `amount` and `vnd`")
    unconverted: list[str] = Field(description="currencies without a rate (left out of the total)")


class PipelineValue(ConvertedTotal):
    rate_day: str = Field(json_schema_extra={"format": "date"})


class AllCurrencies(BaseModel):
    model_config = ConfigDict(extra="allow")
    currency: str
    rounding: str
    revenue: ConvertedTotal
    pipeline_value: PipelineValue
    average_deal_size: Amount | None
    velocity_per_day: Amount | None


_CONVERTED: dict[str, JsonValue] = {
    "currency": "VND",
    "total": "19143300000",
    "by_currency": {"VND": {"amount": "19143300000", "vnd": "19143300000"}},
    "unconverted": [],
}


class StageAnalytics(BaseModel):
    """Per stage: conversion, time in stage, backward moves, skips; then win rate, size, cycle and velocity (in
    ``currency``, and every currency at once in VND: ``all_currencies``)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "pipeline_id": "default",
                    "from": "2026-06-01T00:00:00+07:00",
                    "to": "2026-11-01T00:00:00+07:00",
                    "stages": [
                        {
                            "stage_id": "contacted",
                            "name": "Contacted",
                            "entered": 593,
                            "advanced": 517,
                            "lost": 46,
                            "still_open": 30,
                            "conversion_rate": 0.918295,
                            "visits_ended": 653,
                            "mean_days": 14.1378,
                            "median_days": 11.3257,
                            "p90_days": 28.0047,
                            "backward_moves": 72,
                            "skipped": 107,
                        }
                    ],
                    "currency": "VND",
                    "won": 553,
                    "lost": 223,
                    "win_rate": 0.712629,
                    "won_value": "19143300000",
                    "average_deal_size": "34617179",
                    "mean_cycle_days": 42.8059,
                    "median_cycle_days": 37.3202,
                    "open_now": 224,
                    "velocity_per_day": "129091996",
                    "all_currencies": {
                        "currency": "VND",
                        "rounding": "each total once, half-even, to the đồng, after summing the exact products",
                        "revenue": _CONVERTED,
                        "pipeline_value": _CONVERTED | {"total": "8322000000", "rate_day": "2026-10-29"},
                        "average_deal_size": "34617179",
                        "velocity_per_day": "129091972",
                    },
                }
            ]
        },
    )
    pipeline_id: str
    from_: str = Field(alias="from", json_schema_extra={"format": "date-time"})
    to: str = Field(json_schema_extra={"format": "date-time"})
    stages: list[StageFigures]
    currency: str
    won: int
    lost: int
    win_rate: Ratio
    won_value: Amount
    average_deal_size: Amount | None
    mean_cycle_days: Days
    median_cycle_days: Days
    open_now: int
    velocity_per_day: Amount | None
    all_currencies: AllCurrencies


class WinRateMonth(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "month": "2026-07",
                    "currency": "VND",
                    "won": 92,
                    "lost": 58,
                    "win_rate": 0.613333,
                    "won_value": "2915400000",
                }
            ]
        },
    )
    month: str = Field(description="YYYY-MM of the close, in the business time zone")
    currency: str
    won: int
    lost: int
    win_rate: Ratio
    won_value: Amount


class LostReason(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "reason": "giá cao",
                    "stage_at_loss": "target_identified",
                    "competitor": "Rival Co",
                    "count": 19,
                    "value": "695400000",
                }
            ]
        },
    )
    reason: str | None
    stage_at_loss: str | None
    competitor: str | None
    count: int
    value: Amount
