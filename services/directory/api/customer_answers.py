"""What the customer 360 and the customer analytics answer (``services.directory.projections.customer360_queries``),
as models: the OpenAPI documents say it, with an example, and a fuzz run checks each answer against it (decision
0029). Amounts are decimal strings per currency (deals keep theirs); ``extra="allow"``: a field added to an answer
is answered before its model names it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_ORG = "2b3c4d5e-6f70-4a81-9b2c-3d4e5f607182"
_DEAL = "6d1f0a52-3c2b-4f7e-9a0d-1b2c3d4e5f60"
_DEAL_ROW: dict[str, Any] = {
    "deal_id": _DEAL,
    "organisation_id": _ORG,
    "title": "Tủ mát cho chuỗi cà phê",
    "owner_id": "u-lan",
    "status": "won",
    "value": "120000000",
    "currency": "VND",
    "opened_at": "2026-10-01T02:00:00+00:00",
    "won_at": "2026-11-02T03:00:00+00:00",
    "lost_at": None,
    "lost_reason": None,
}
_ORDER_ROW: dict[str, Any] = {
    "order_id": "7e6d5c4b-3a29-4f18-8e7d-6c5b4a392817",
    "deal_id": _DEAL,
    "created_at": "2026-11-02T03:00:01+00:00",
    "due_date": "2026-12-10",
    "quantity": "2",
    "shipments": 1,
    "shipped": "2",
    "first_shipped_at": "2026-12-05T02:00:00+00:00",
    "last_shipped_at": "2026-12-05T02:00:00+00:00",
    "delivered": "2",
    "last_delivered_at": "2026-12-06T04:00:00+00:00",
    "late_deliveries": 0,
    "cancelled": False,
}
_FOLLOW_UP_ROW: dict[str, Any] = {
    "follow_up_id": "8f7e6d5c-4b3a-4291-8e7d-6c5b4a392818",
    "deal_id": _DEAL,
    "kind": "satisfaction",
    "due_on": "2026-12-13",
    "completed": True,
    "contacts": 1,
    "csat": 5,
    "nps": 9,
    "last_contact_at": "2026-12-12T03:00:00+00:00",
}


class DealRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    deal_id: str = Field(json_schema_extra={"format": "uuid"})
    organisation_id: str | None = Field(description="the organisation of the family its link names")
    title: str
    owner_id: str
    status: str = Field(description="open, won or lost")
    value: str = Field(description="a decimal as a string, in its currency")
    currency: str
    opened_at: str = Field(json_schema_extra={"format": "date-time"})
    won_at: str | None = Field(json_schema_extra={"format": "date-time"})
    lost_at: str | None = Field(json_schema_extra={"format": "date-time"})
    lost_reason: str | None


class DealsOfStatus(BaseModel):
    count: int
    listed: list[DealRow] = Field(description="the newest first, at most 100")


class Deals(BaseModel):
    open: DealsOfStatus
    won: DealsOfStatus
    lost: DealsOfStatus


class RepeatShare(BaseModel):
    by_count: float | None = Field(description="the purchases after the first / all purchases")
    by_value: dict[str, float | None] = Field(description="per currency: their value / lifetime revenue")


class OrderRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    order_id: str = Field(json_schema_extra={"format": "uuid"})
    deal_id: str = Field(json_schema_extra={"format": "uuid"})
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    due_date: str = Field(json_schema_extra={"format": "date"})
    quantity: str = Field(description="a decimal as a string")
    shipments: int
    shipped: str
    first_shipped_at: str | None = Field(json_schema_extra={"format": "date-time"})
    last_shipped_at: str | None = Field(json_schema_extra={"format": "date-time"})
    delivered: str
    last_delivered_at: str | None = Field(json_schema_extra={"format": "date-time"})
    late_deliveries: int
    cancelled: bool


class Orders(BaseModel):
    count: int
    cancelled: int
    shipments: int
    late_deliveries: int
    listed: list[OrderRow] = Field(description="the newest first, at most 100")


class FollowUpRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    follow_up_id: str = Field(json_schema_extra={"format": "uuid"})
    deal_id: str = Field(json_schema_extra={"format": "uuid"})
    kind: str
    due_on: str = Field(json_schema_extra={"format": "date"})
    completed: bool
    contacts: int
    csat: int | None = Field(description="1 to 5")
    nps: int | None = Field(description="0 to 10")
    last_contact_at: str | None = Field(json_schema_extra={"format": "date-time"})


class FollowUps(BaseModel):
    count: int
    open: int
    listed: list[FollowUpRow] = Field(description="the latest due first, at most 100")


class Satisfaction(BaseModel):
    responses: int = Field(description="follow-ups that recorded a CSAT or an NPS")
    csat_mean: float | None
    nps_mean: float | None


class Activities(BaseModel):
    count: int
    by_type: dict[str, int]


class Customer360(BaseModel):
    """One organisation's 360, with every organisation merged into it (``organisations``): its deals, orders and
    shipments, follow-ups and satisfaction, activities, lifetime revenue per currency, first and last purchase,
    repeat-purchase share and last contact. ``asked``: the id asked for (a merged one answers for the one it was
    merged into, ``organisation_id``)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "asked": _ORG,
                    "organisation_id": _ORG,
                    "organisations": [_ORG],
                    "deals": {
                        "open": {"count": 0, "listed": []},
                        "won": {"count": 1, "listed": [_DEAL_ROW]},
                        "lost": {"count": 0, "listed": []},
                    },
                    "lifetime_revenue": {"VND": "120000000"},
                    "purchases": 1,
                    "first_purchase_at": "2026-11-02T03:00:00+00:00",
                    "last_purchase_at": "2026-11-02T03:00:00+00:00",
                    "repeat_purchase_share": {"by_count": 0.0, "by_value": {"VND": 0.0}},
                    "orders": {
                        "count": 1,
                        "cancelled": 0,
                        "shipments": 1,
                        "late_deliveries": 0,
                        "listed": [_ORDER_ROW],
                    },
                    "follow_ups": {"count": 1, "open": 0, "listed": [_FOLLOW_UP_ROW]},
                    "satisfaction": {"responses": 1, "csat_mean": 5.0, "nps_mean": 9.0},
                    "activities": {"count": 3, "by_type": {"call": 2, "meeting": 1}},
                    "last_contact_at": "2026-12-12T03:00:00+00:00",
                }
            ]
        },
    )
    asked: str = Field(json_schema_extra={"format": "uuid"})
    organisation_id: str = Field(json_schema_extra={"format": "uuid"})
    organisations: list[str] = Field(description="it and every organisation merged into it")
    deals: Deals
    lifetime_revenue: dict[str, str] = Field(description="per currency, a decimal as a string")
    purchases: int = Field(description="won deals")
    first_purchase_at: str | None = Field(json_schema_extra={"format": "date-time"})
    last_purchase_at: str | None = Field(json_schema_extra={"format": "date-time"})
    repeat_purchase_share: RepeatShare
    orders: Orders
    follow_ups: FollowUps
    satisfaction: Satisfaction
    activities: Activities
    last_contact_at: str | None = Field(json_schema_extra={"format": "date-time"})


class RepeatRevenue(BaseModel):
    """A month's won revenue in one currency from new customers (their first purchase) and from repeat ones."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "period": "2026-11",
                    "currency": "VND",
                    "new_revenue": "120000000",
                    "repeat_revenue": "40000000",
                    "repeat_share": 0.25,
                    "new_customers": 1,
                    "repeat_customers": 1,
                }
            ]
        },
    )
    period: str = Field(description="YYYY-MM in the business time zone")
    currency: str
    new_revenue: str
    repeat_revenue: str
    repeat_share: float | None
    new_customers: int
    repeat_customers: int


class Segment(BaseModel):
    model_config = ConfigDict(extra="allow")
    industry: str | None
    customers: int
    buying: int = Field(description="customers with a purchase in the currency")
    revenue: str


class ValueClass(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    class_: str = Field(alias="class", description="A (the first 80 % of revenue), B (to 95 %) or C")
    customers: int
    revenue: str


class CustomerSegments(BaseModel):
    """Customers by segment (industry) and by value class (ABC on lifetime revenue), in one currency."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "currency": "VND",
                    "segments": [{"industry": "hospitality", "customers": 3, "buying": 2, "revenue": "160000000"}],
                    "value_classes": [
                        {"class": "A", "customers": 1, "revenue": "120000000"},
                        {"class": "B", "customers": 1, "revenue": "40000000"},
                        {"class": "C", "customers": 0, "revenue": "0"},
                    ],
                    "without_purchase": 1,
                }
            ]
        },
    )
    currency: str
    segments: list[Segment]
    value_classes: list[ValueClass]
    without_purchase: int = Field(description="customers with no purchase in the currency")
