"""The ``adoption`` read model: what the directory knows of each deal, from the deals' topic, for the command that
adopts old deals' customer strings and contacts (``services.directory.adoption``, decision 0017 "Old deals keep
working by a command").

``adoption_deals``: one row per deal — its typed ``customer``, its team and owner as they are now (reassignments
followed), its contact's data subject (``contact_id``) and the contact as the sealed token the deals service
stored (opened by the command with the shared key store: an erased contact opens as None), whether the contact
was erased (``DealContactErased``), the lead it came from, and the organisation its last ``DealCustomerLinked``
named (NULL: not linked yet — the deals the command adopts). No plaintext personal data is kept here.

A batch's rows are read once, folded in order and written once (``shared.messaging.rows``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from services.deals import events as deals
from shared.messaging.projections import Fact, Projection, ReadModels
from shared.messaging.rows import Table
from shared.store.db import Conn

NAME = "adoption"
TABLES = ("adoption_deals",)
DDL = """
CREATE TABLE IF NOT EXISTS adoption_deals (
    deal_id uuid PRIMARY KEY, customer text NOT NULL, team_id text, owner_id text NOT NULL, contact_id text,
    contact text, contact_erased boolean NOT NULL DEFAULT false, source_lead_id uuid, organisation_id uuid);
CREATE INDEX IF NOT EXISTS adoption_deals_unlinked ON adoption_deals (team_id) WHERE organisation_id IS NULL;
"""


@dataclass(frozen=True)
class DealRow:
    """A deal as the adoption reads it; ``contact``: the sealed token (None: no contact, or erased)."""

    deal_id: uuid.UUID
    customer: str
    team_id: str | None
    owner_id: str
    contact_id: str | None = None
    contact: str | None = None
    contact_erased: bool = False
    source_lead_id: uuid.UUID | None = None


DEALS = Table(
    "adoption_deals",
    {
        "deal_id": "uuid",
        "customer": "text",
        "team_id": "text",
        "owner_id": "text",
        "contact_id": "text",
        "contact": "text",
        "contact_erased": "boolean",
        "source_lead_id": "uuid",
        "organisation_id": "uuid",
    },
    defaults={"contact_erased": False},
)


async def apply(conn: Conn, facts: Sequence[Fact]) -> None:
    """A batch of deals events in order: the deals' rows read once, folded, written once."""
    rows = await DEALS.rows(conn, {f.event.deal_id for f in facts if isinstance(f.event, deals.DealEvent)})
    for fact in facts:
        event = fact.event
        match event:
            case deals.DealOpened():
                token = fact.envelope.data.get("contact")  # sealed under contact_id's key
                row = DEALS.new(
                    deal_id=event.deal_id,
                    customer=event.customer,
                    team_id=event.team_id,
                    owner_id=event.owner_id,
                    contact_id=event.contact_id,
                    contact=token if isinstance(token, str) else None,
                    source_lead_id=event.source_lead_id,
                )
                rows.insert(row)
            case deals.DealReassigned():
                rows.update(event.deal_id, owner_id=event.to_owner_id, team_id=event.to_team_id)
            case deals.DealCustomerLinked():  # before the opening (a conversion's): no row yet, the opening restates it
                rows.update(event.deal_id, organisation_id=event.organisation_id)
            case deals.DealContactErased():
                rows.update(event.deal_id, contact=None, contact_erased=True)
    await rows.flush(conn)


async def unlinked_deals(conn: Conn, team_id: str | None) -> list[DealRow]:
    """The deals no organisation is linked to yet: of ``team_id`` and those of no team (their owner's team is
    looked up by the command), or of every team (None)."""
    rows = await conn.fetch(
        """SELECT deal_id, customer, team_id, owner_id, contact_id, contact, contact_erased, source_lead_id
           FROM adoption_deals
           WHERE organisation_id IS NULL AND ($1::text IS NULL OR team_id = $1 OR team_id IS NULL)
           ORDER BY deal_id""",
        team_id,
    )
    return [DealRow(**dict(r)) for r in rows]


def adoption(deals_topic: str) -> Projection:
    """The directory's ``adoption`` read model, from the deals' topic."""
    return Projection(
        name=NAME,
        topics=(deals_topic,),
        ddl=DDL,
        apply=apply,
        accepts=(
            "pipelines.deals.DealOpened",
            "pipelines.deals.DealReassigned",
            "pipelines.deals.DealCustomerLinked",
            "pipelines.deals.DealContactErased",
        ),
        tables=TABLES,
    )


async def team_organisations(conn: Conn, team_id: str) -> list[tuple[uuid.UUID, str]]:
    """The team's organisations not merged away, with their names (the ``customers`` read model's table)."""
    rows = await conn.fetch(
        "SELECT organisation_id, name FROM customer_organisations WHERE team_id = $1 AND merged_into IS NULL",
        team_id,
    )
    return [(r["organisation_id"], r["name"]) for r in rows]


class ReadModelSource:
    """The adoption's ``Source`` in the service: the ``adoption`` and ``customers`` read models."""

    def __init__(self, read_models: ReadModels) -> None:
        self.read_models = read_models

    async def unlinked_deals(self, team_id: str | None) -> list[DealRow]:
        async with self.read_models.connection(NAME) as conn:
            return await unlinked_deals(conn, team_id)

    async def organisations(self, team_id: str) -> list[tuple[uuid.UUID, str]]:
        async with self.read_models.connection("customers") as conn:
            return await team_organisations(conn, team_id)
