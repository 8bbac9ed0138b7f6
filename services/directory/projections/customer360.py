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

from services.deals import events as deals
from services.directory import events as directory
from services.production import events as production
from shared.messaging.projections import Fact, Projection, one_by_one
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


async def apply_one(conn: Conn, fact: Fact) -> None:
    """One event of any of the three topics on the tables."""
    event = fact.event
    if isinstance(event, directory.OrganisationEvent):
        await _organisation(conn, event)
    elif isinstance(event, deals.DealEvent):
        if not await _deal(conn, fact, event):
            await _after_sale(conn, fact, event)
    elif isinstance(event, production.OrderEvent) and event.deal_id is not None:
        await _order(conn, event)


async def _organisation(conn: Conn, event: directory.OrganisationEvent) -> None:
    match event:
        case directory.OrganisationRegistered():
            await conn.execute(
                "INSERT INTO c360_organisations VALUES ($1, $2, $3, $4, NULL) ON CONFLICT DO NOTHING",
                event.organisation_id,
                event.name,
                event.industry,
                event.team_id,
            )
        case directory.OrganisationChanged():
            await conn.execute(
                "UPDATE c360_organisations SET name = $2, industry = $3 WHERE organisation_id = $1",
                event.organisation_id,
                event.name,
                event.industry,
            )
        case directory.OrganisationReassigned():
            await conn.execute(
                "UPDATE c360_organisations SET team_id = $2 WHERE organisation_id = $1",
                event.organisation_id,
                event.team_id,
            )
        case directory.OrganisationMerged():
            await conn.execute(
                "UPDATE c360_organisations SET merged_into = $2 WHERE organisation_id = $1",
                event.organisation_id,
                event.into,
            )


async def _deal(conn: Conn, fact: Fact, event: deals.DealEvent) -> bool:
    """A deal's own row; False for the events of what came after the sale (``_after_sale``)."""
    d = event.deal_id
    match event:
        case deals.DealOpened():
            await conn.execute(
                """INSERT INTO c360_deals (deal_id, title, owner_id, status, value, currency, opened_at)
                   VALUES ($1, $2, $3, 'open', $4, $5, $6) ON CONFLICT DO NOTHING""",
                d,
                event.title,
                event.owner_id,
                event.value.amount,
                event.value.currency,
                event.opened_at,
            )
        case deals.DealCustomerLinked():  # before the opening: no row yet, and the opening restates it
            await conn.execute(
                "UPDATE c360_deals SET organisation_id = $2 WHERE deal_id = $1", d, event.organisation_id
            )
        case deals.DealValueChanged() | deals.DealLinesChanged():
            value = event.new if isinstance(event, deals.DealValueChanged) else event.value
            await conn.execute("UPDATE c360_deals SET value = $2 WHERE deal_id = $1", d, value.amount)
        case deals.DealReassigned():
            await conn.execute("UPDATE c360_deals SET owner_id = $2 WHERE deal_id = $1", d, event.to_owner_id)
        case deals.DealWon():
            await conn.execute(
                "UPDATE c360_deals SET status = 'won', won_at = $2, value = $3 WHERE deal_id = $1",
                d,
                event.won_at,
                event.value.amount,
            )
        case deals.DealLost():
            await conn.execute(
                "UPDATE c360_deals SET status = 'lost', lost_at = $2, lost_reason = $3 WHERE deal_id = $1",
                d,
                event.lost_at,
                event.reason,
            )
        case deals.DealReopened():
            await conn.execute(
                "UPDATE c360_deals SET status = 'open', won_at = NULL, lost_at = NULL, lost_reason = NULL "
                "WHERE deal_id = $1",
                d,
            )
        case deals.ActivityLogged():
            await conn.execute(
                "INSERT INTO c360_activities VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                event.activity_id,
                d,
                event.activity_type.value,
                event.channel.value,
                event.direction,
                fact.envelope.time,
            )
        case _:
            return False
    return True


async def _after_sale(conn: Conn, fact: Fact, event: deals.DealEvent) -> None:
    """A follow-up's events: when it is due, each contact (its time the last contact's), the scores, done."""
    match event:
        case deals.FollowUpStarted():
            await conn.execute(
                "INSERT INTO c360_follow_ups (follow_up_id, deal_id, kind, due_on) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING",
                event.follow_up_id,
                event.deal_id,
                event.kind,
                event.due_on,
            )
        case deals.FollowUpDueChanged():
            await conn.execute(
                "UPDATE c360_follow_ups SET due_on = $2 WHERE follow_up_id = $1", event.follow_up_id, event.due_on
            )
        case deals.FollowUpContactRecorded():
            await conn.execute(
                """UPDATE c360_follow_ups SET contacts = contacts + 1,
                       last_contact_at = greatest(last_contact_at, $2) WHERE follow_up_id = $1""",
                event.follow_up_id,
                fact.envelope.time,
            )
        case deals.CustomerFeedbackRecorded():
            await conn.execute(
                """UPDATE c360_follow_ups SET csat = coalesce($2, csat), nps = coalesce($3, nps),
                       last_contact_at = greatest(last_contact_at, $4) WHERE follow_up_id = $1""",
                event.follow_up_id,
                event.csat,
                event.nps,
                fact.envelope.time,
            )
        case deals.FollowUpCompleted():
            await conn.execute(
                "UPDATE c360_follow_ups SET completed = true WHERE follow_up_id = $1", event.follow_up_id
            )


async def _order(conn: Conn, event: production.OrderEvent) -> None:
    """An order a won deal started: its shipments and deliveries (by parts), or its cancellation."""
    match event:
        case production.ProductionOrderCreated():
            await conn.execute(
                """INSERT INTO c360_orders (order_id, deal_id, created_at, due_date, quantity)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
                event.order_id,
                event.deal_id,
                event.created_at,
                event.due_date,
                sum((line.quantity for line in event.lines), start=0),
            )
        case production.OrderShipped():
            await conn.execute(
                """UPDATE c360_orders SET shipments = shipments + 1, shipped = shipped + $2,
                       first_shipped_at = least(first_shipped_at, $3), last_shipped_at = greatest(last_shipped_at, $3)
                   WHERE order_id = $1""",
                event.order_id,
                event.quantity,
                event.shipped_at,
            )
        case production.OrderDelivered():
            await conn.execute(
                """UPDATE c360_orders SET delivered = delivered + $2,
                       last_delivered_at = greatest(last_delivered_at, $3), late_deliveries = late_deliveries + $4
                   WHERE order_id = $1""",
                event.order_id,
                event.quantity,
                event.delivered_at,
                0 if event.on_time else 1,
            )
        case production.ProductionOrderCancelled():
            await conn.execute("UPDATE c360_orders SET cancelled = true WHERE order_id = $1", event.order_id)


def customer360(directory_topic: str, deals_topic: str, production_topic: str) -> Projection:
    """The directory's ``customer360`` read model, from its own topic and the deals' and production's."""
    return Projection(
        name=NAME,
        topics=(directory_topic, deals_topic, production_topic),
        ddl=DDL,
        apply=one_by_one(apply_one),
        accepts=(
            "pipelines.directory.Organisation",
            "pipelines.deals.",
            "pipelines.production.",
        ),
        tables=TABLES,
    )
