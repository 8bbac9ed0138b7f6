"""The ``customer360`` read model (issue 24 item 4, decision 0017): what the directory's organisations bought and
how they were served, from three topics — the directory's (organisations: name, industry, team, merges), the deals
service's (each deal, its link to an organisation, its activities and follow-ups) and production's (the orders
won deals started, their shipments and deliveries: ``deal_id`` on every order event).

Stored: facts, one row per deal, activity, follow-up and order, each deal keyed by the organisation its last
``DealCustomerLinked`` gave it (NULL: not linked yet; a deal's events before its link are kept all the same, so a
late link brings its whole history). The figures (revenue, first and last purchase, repeat share, last contact)
are computed when asked (``customer360_queries``), over an organisation and every one merged into it: a merge
moves nothing here, so a rebuild equals the live read model whatever order the three topics interleave in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.deals import events as deals
from services.directory import events as directory
from services.production import events as production
from shared.messaging.projections import Fact, Projection
from shared.messaging.rows import Rows, Table
from shared.store.db import Conn

NAME = "customer360"
TABLES = ("c360_organisations", "c360_deals", "c360_activities", "c360_follow_ups", "c360_orders")
DDL = """
CREATE TABLE IF NOT EXISTS c360_organisations (
    organisation_id uuid PRIMARY KEY, name text NOT NULL, industry text, team_id text NOT NULL, merged_into uuid);
CREATE INDEX IF NOT EXISTS c360_organisations_merged ON c360_organisations (merged_into)
    WHERE merged_into IS NOT NULL;
CREATE TABLE IF NOT EXISTS c360_deals (
    deal_id uuid PRIMARY KEY, organisation_id uuid, title text NOT NULL, owner_id text NOT NULL, status text NOT NULL,
    value numeric NOT NULL, currency text NOT NULL, opened_at timestamptz NOT NULL, won_at timestamptz,
    lost_at timestamptz, lost_reason text);
CREATE INDEX IF NOT EXISTS c360_deals_by_organisation ON c360_deals (organisation_id, status);
CREATE TABLE IF NOT EXISTS c360_activities (
    activity_id uuid PRIMARY KEY, deal_id uuid NOT NULL, activity_type text NOT NULL, channel text NOT NULL,
    direction text NOT NULL, at timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS c360_activities_by_deal ON c360_activities (deal_id, at);
CREATE TABLE IF NOT EXISTS c360_follow_ups (
    follow_up_id uuid PRIMARY KEY, deal_id uuid NOT NULL, kind text NOT NULL, due_on date NOT NULL,
    completed boolean NOT NULL DEFAULT false, contacts integer NOT NULL DEFAULT 0, csat integer, nps integer,
    last_contact_at timestamptz);
CREATE INDEX IF NOT EXISTS c360_follow_ups_by_deal ON c360_follow_ups (deal_id);
CREATE TABLE IF NOT EXISTS c360_orders (
    order_id uuid PRIMARY KEY, deal_id uuid NOT NULL, created_at timestamptz NOT NULL, due_date date NOT NULL,
    quantity numeric NOT NULL, shipments integer NOT NULL DEFAULT 0, shipped numeric NOT NULL DEFAULT 0,
    first_shipped_at timestamptz, last_shipped_at timestamptz, delivered numeric NOT NULL DEFAULT 0,
    last_delivered_at timestamptz, late_deliveries integer NOT NULL DEFAULT 0, cancelled boolean NOT NULL DEFAULT false);
CREATE INDEX IF NOT EXISTS c360_orders_by_deal ON c360_orders (deal_id);
"""


ORGANISATIONS = Table(
    "c360_organisations",
    {"organisation_id": "uuid", "name": "text", "industry": "text", "team_id": "text", "merged_into": "uuid"},
)
DEALS = Table(
    "c360_deals",
    {
        "deal_id": "uuid",
        "organisation_id": "uuid",
        "title": "text",
        "owner_id": "text",
        "status": "text",
        "value": "numeric",
        "currency": "text",
        "opened_at": "timestamptz",
        "won_at": "timestamptz",
        "lost_at": "timestamptz",
        "lost_reason": "text",
    },
)
ACTIVITIES = Table(
    "c360_activities",
    {
        "activity_id": "uuid",
        "deal_id": "uuid",
        "activity_type": "text",
        "channel": "text",
        "direction": "text",
        "at": "timestamptz",
    },
)
FOLLOW_UPS = Table(
    "c360_follow_ups",
    {
        "follow_up_id": "uuid",
        "deal_id": "uuid",
        "kind": "text",
        "due_on": "date",
        "completed": "boolean",
        "contacts": "integer",
        "csat": "integer",
        "nps": "integer",
        "last_contact_at": "timestamptz",
    },
    defaults={"completed": False, "contacts": 0},
)
ORDERS = Table(
    "c360_orders",
    {
        "order_id": "uuid",
        "deal_id": "uuid",
        "created_at": "timestamptz",
        "due_date": "date",
        "quantity": "numeric",
        "shipments": "integer",
        "shipped": "numeric",
        "first_shipped_at": "timestamptz",
        "last_shipped_at": "timestamptz",
        "delivered": "numeric",
        "last_delivered_at": "timestamptz",
        "late_deliveries": "integer",
        "cancelled": "boolean",
    },
    defaults={"shipments": 0, "shipped": Decimal(0), "delivered": Decimal(0), "late_deliveries": 0, "cancelled": False},
)


def _greatest(a: Any, b: Any) -> Any:
    """PostgreSQL's ``greatest``: NULLs ignored."""
    return b if a is None else a if b is None else max(a, b)


def _least(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


@dataclass
class _Batch:
    organisations: Rows
    deals: Rows
    activities: Rows
    follow_ups: Rows
    orders: Rows

    @classmethod
    async def load(cls, conn: Conn, events: list[Any]) -> _Batch:
        def ids(kind: type | tuple[type, ...], attr: str) -> set[Any]:
            return {getattr(e, attr) for e in events if isinstance(e, kind)}

        return cls(
            await ORGANISATIONS.rows(conn, ids(directory.OrganisationEvent, "organisation_id")),
            await DEALS.rows(conn, ids(deals.DealEvent, "deal_id")),
            await ACTIVITIES.rows(conn, ids(deals.ActivityLogged, "activity_id")),
            await FOLLOW_UPS.rows(conn, ids(_FOLLOW_UP_EVENTS, "follow_up_id")),
            await ORDERS.rows(conn, ids(production.OrderEvent, "order_id")),
        )

    async def flush(self, conn: Conn) -> None:
        for rows in (self.organisations, self.deals, self.activities, self.follow_ups, self.orders):
            await rows.flush(conn)


_FOLLOW_UP_EVENTS = (
    deals.FollowUpStarted,
    deals.FollowUpDueChanged,
    deals.FollowUpContactRecorded,
    deals.CustomerFeedbackRecorded,
    deals.FollowUpCompleted,
)


async def apply(conn: Conn, facts: Sequence[Fact]) -> None:
    """A batch of the three topics' events in order: the rows they touch read once, folded, written once."""
    batch = await _Batch.load(conn, [f.event for f in facts])
    for fact in facts:
        event = fact.event
        if isinstance(event, directory.OrganisationEvent):
            _organisation(batch.organisations, event)
        elif isinstance(event, deals.DealEvent):
            if not _deal(batch, fact, event):
                _after_sale(batch.follow_ups, fact, event)
        elif isinstance(event, production.OrderEvent) and event.deal_id is not None:
            _order(batch.orders, event)
    await batch.flush(conn)


async def apply_one(conn: Conn, fact: Fact) -> None:
    """One event of any of the three topics on the tables (a batch of one)."""
    await apply(conn, [fact])


def _organisation(rows: Rows, event: directory.OrganisationEvent) -> None:
    match event:
        case directory.OrganisationRegistered():
            row = ORGANISATIONS.new(
                organisation_id=event.organisation_id, name=event.name, industry=event.industry, team_id=event.team_id
            )
            rows.insert(row)
        case directory.OrganisationChanged():
            rows.update(event.organisation_id, name=event.name, industry=event.industry)
        case directory.OrganisationReassigned():
            rows.update(event.organisation_id, team_id=event.team_id)
        case directory.OrganisationMerged():
            rows.update(event.organisation_id, merged_into=event.into)


def _deal(batch: _Batch, fact: Fact, event: deals.DealEvent) -> bool:
    """A deal's own row; False for the events of what came after the sale (``_after_sale``)."""
    d, rows = event.deal_id, batch.deals
    match event:
        case deals.DealOpened():
            row = DEALS.new(
                deal_id=d,
                title=event.title,
                owner_id=event.owner_id,
                status="open",
                value=event.value.amount,
                currency=event.value.currency,
                opened_at=event.opened_at,
            )
            rows.insert(row)
        case deals.DealCustomerLinked():  # before the opening: no row yet, and the opening restates it
            rows.update(d, organisation_id=event.organisation_id)
        case deals.DealValueChanged() | deals.DealLinesChanged():
            value = event.new if isinstance(event, deals.DealValueChanged) else event.value
            rows.update(d, value=value.amount)
        case deals.DealReassigned():
            rows.update(d, owner_id=event.to_owner_id)
        case deals.DealWon():
            rows.update(d, status="won", won_at=event.won_at, value=event.value.amount)
        case deals.DealLost():
            rows.update(d, status="lost", lost_at=event.lost_at, lost_reason=event.reason)
        case deals.DealReopened():
            rows.update(d, status="open", won_at=None, lost_at=None, lost_reason=None)
        case deals.ActivityLogged():
            row = ACTIVITIES.new(
                activity_id=event.activity_id,
                deal_id=d,
                activity_type=event.activity_type.value,
                channel=event.channel.value,
                direction=event.direction,
                at=fact.envelope.time,
            )
            batch.activities.insert(row)
        case _:
            return False
    return True


def _after_sale(rows: Rows, fact: Fact, event: deals.DealEvent) -> None:
    """A follow-up's events: when it is due, each contact (its time the last contact's), the scores, done."""
    match event:
        case deals.FollowUpStarted():
            row = FOLLOW_UPS.new(
                follow_up_id=event.follow_up_id, deal_id=event.deal_id, kind=event.kind, due_on=event.due_on
            )
            rows.insert(row)
        case deals.FollowUpDueChanged():
            rows.update(event.follow_up_id, due_on=event.due_on)
        case deals.FollowUpContactRecorded():
            if (cur := rows.get(event.follow_up_id)) is not None:
                rows.update(
                    event.follow_up_id,
                    contacts=cur["contacts"] + 1,
                    last_contact_at=_greatest(cur["last_contact_at"], fact.envelope.time),
                )
        case deals.CustomerFeedbackRecorded():
            if (cur := rows.get(event.follow_up_id)) is not None:
                rows.update(
                    event.follow_up_id,
                    csat=cur["csat"] if event.csat is None else event.csat,
                    nps=cur["nps"] if event.nps is None else event.nps,
                    last_contact_at=_greatest(cur["last_contact_at"], fact.envelope.time),
                )
        case deals.FollowUpCompleted():
            rows.update(event.follow_up_id, completed=True)


def _order(rows: Rows, event: production.OrderEvent) -> None:
    """An order a won deal started: its shipments and deliveries (by parts), or its cancellation."""
    match event:
        case production.ProductionOrderCreated():
            row = ORDERS.new(
                order_id=event.order_id,
                deal_id=event.deal_id,
                created_at=event.created_at,
                due_date=event.due_date,
                quantity=sum((line.quantity for line in event.lines), start=Decimal(0)),
            )
            rows.insert(row)
        case production.OrderShipped():
            if (cur := rows.get(event.order_id)) is not None:
                rows.update(
                    event.order_id,
                    shipments=cur["shipments"] + 1,
                    shipped=cur["shipped"] + event.quantity,
                    first_shipped_at=_least(cur["first_shipped_at"], event.shipped_at),
                    last_shipped_at=_greatest(cur["last_shipped_at"], event.shipped_at),
                )
        case production.OrderDelivered():
            if (cur := rows.get(event.order_id)) is not None:
                rows.update(
                    event.order_id,
                    delivered=cur["delivered"] + event.quantity,
                    last_delivered_at=_greatest(cur["last_delivered_at"], event.delivered_at),
                    late_deliveries=cur["late_deliveries"] + (0 if event.on_time else 1),
                )
        case production.ProductionOrderCancelled():
            rows.update(event.order_id, cancelled=True)


def customer360(directory_topic: str, deals_topic: str, production_topic: str) -> Projection:
    """The directory's ``customer360`` read model, from its own topic and the deals' and production's."""
    return Projection(
        name=NAME,
        topics=(directory_topic, deals_topic, production_topic),
        ddl=DDL,
        apply=apply,
        accepts=(
            "pipelines.directory.Organisation",
            "pipelines.deals.",
            "pipelines.production.",
        ),
        tables=TABLES,
    )
