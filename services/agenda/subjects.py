"""What an activity is about, as the agenda knows it (decision 0020, "Subjects are checked against replicas").

Deals and leads: the agenda's own small read model ``subjects`` from the deals' and leads' topics — tables
``deal_subjects`` and ``lead_subjects`` (id, owner, team, open, data subject). Organisations and people: the
directory's replica (``services.directory.replica``: the ``organisations`` and ``people`` tables). No personal
field is kept: a check needs where a subject belongs and whose key seals notes about it.

A subject's data subject (the key the activity's notes and outcomes are sealed under): a lead's id (the leads'
own subject), a deal's ``contact_id`` (``deal:<id>`` for a deal without one), ``person:<id>``,
``organisation:<id>``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from services.deals import events as deals
from services.directory import replica
from services.directory.replica import PostgresReplica
from services.directory.replica_customers import CustomerReferences
from services.leads import events as leads
from shared.core.events import DomainEvent
from shared.messaging.projections import Fact, Projection, ReadModelBehindError, ReadModels
from shared.messaging.rows import Rows, Table
from shared.store.db import Conn

NAME = "subjects"
AFTER_HEADER = "X-Subject-After"  # a deal or lead the client has just opened: its answer's stream_id@version
WAIT_S = 5.0
_AFTER = re.compile(r"^((?:deal|lead)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})@([1-9][0-9]{0,9})$")
DDL = """
CREATE TABLE IF NOT EXISTS deal_subjects (
    deal_id uuid PRIMARY KEY, owner_id text NOT NULL, team_id text, open boolean NOT NULL, data_subject text NOT NULL);
CREATE TABLE IF NOT EXISTS lead_subjects (
    lead_id uuid PRIMARY KEY, owner_id text, team_id text, open boolean NOT NULL);
"""
DEAL_EVENTS = tuple(
    e.event_type for e in (deals.DealOpened, deals.DealReassigned, deals.DealWon, deals.DealLost, deals.DealReopened)
)
LEAD_EVENTS = tuple(
    e.event_type
    for e in (
        leads.LeadCaptured,
        leads.LeadAssigned,
        leads.LeadConverted,
        leads.LeadDisqualified,
        leads.LeadMergedInto,
        leads.LeadRecycled,
    )
)


@dataclass(frozen=True)
class Subject:
    """A deal, lead, organisation or person as a scheduling checks it."""

    subject_type: str
    subject_id: uuid.UUID
    owner_id: str | None
    team_id: str | None
    open: bool
    data_subject: str


def deal_data_subject(deal_id: uuid.UUID, contact_id: str | None) -> str:
    return contact_id or f"deal:{deal_id}"


# ---------------------------------------------------------------------------------------------- the read model
DEAL_SUBJECTS = Table(
    "deal_subjects",
    {"deal_id": "uuid", "owner_id": "text", "team_id": "text", "open": "boolean", "data_subject": "text"},
)
LEAD_SUBJECTS = Table("lead_subjects", {"lead_id": "uuid", "owner_id": "text", "team_id": "text", "open": "boolean"})


def _fold(deal_rows: Rows, lead_rows: Rows, event: DomainEvent) -> None:
    match event:
        case deals.DealOpened() as e:
            data_subject = deal_data_subject(e.deal_id, e.contact_id)
            row = DEAL_SUBJECTS.new(
                deal_id=e.deal_id, owner_id=e.owner_id, team_id=e.team_id, open=True, data_subject=data_subject
            )
            deal_rows.insert(row)
        case deals.DealReassigned() as e:
            deal_rows.update(e.deal_id, owner_id=e.to_owner_id, team_id=e.to_team_id)
        case deals.DealWon() | deals.DealLost() as e:
            deal_rows.update(e.deal_id, open=False)
        case deals.DealReopened() as e:
            deal_rows.update(e.deal_id, open=True)
        case leads.LeadCaptured() as e:
            lead_rows.insert(LEAD_SUBJECTS.new(lead_id=e.lead_id, open=True))
        case leads.LeadAssigned() as e:
            if (cur := lead_rows.get(e.lead_id)) is not None:
                lead_rows.update(e.lead_id, owner_id=e.owner_id, team_id=e.team_id or cur["team_id"])
        case leads.LeadConverted() | leads.LeadDisqualified() | leads.LeadMergedInto() as e:
            lead_rows.update(e.lead_id, open=False)
        case leads.LeadRecycled() as e:
            lead_rows.update(e.lead_id, open=True)


async def apply(conn: Conn, facts: Sequence[Fact]) -> None:
    """A batch of deals and leads events in order: the rows read once, folded, written once."""
    events = [f.event for f in facts]
    deal_rows = await DEAL_SUBJECTS.rows(conn, {e.deal_id for e in events if isinstance(e, deals.DealEvent)})
    lead_rows = await LEAD_SUBJECTS.rows(conn, {e.lead_id for e in events if isinstance(e, leads.LeadEvent)})
    for event in events:
        _fold(deal_rows, lead_rows, event)
    await deal_rows.flush(conn)
    await lead_rows.flush(conn)


async def apply_one(conn: Conn, fact: Fact) -> None:
    """One deals or leads event on the tables (a batch of one)."""
    await apply(conn, [fact])


def subjects(deals_topic: str, leads_topic: str) -> Projection:
    """The agenda's ``subjects`` read model, from the deals' and leads' topics."""
    return Projection(
        name=NAME,
        topics=(deals_topic, leads_topic),
        ddl=DDL,
        apply=apply,
        accepts=(*DEAL_EVENTS, *LEAD_EVENTS),
        tables=("deal_subjects", "lead_subjects"),
    )


# ---------------------------------------------------------------------------------------------- the lookups
def parse_after(value: str | None) -> tuple[tuple[str, int], ...]:
    """``X-Subject-After``: the deals' or leads' answers (``stream_id@version``, comma-separated) a scheduling
    waits for, as ``X-Directory-After`` does for the directory's (else 422 naming the header)."""
    return replica.parse_after(
        value, header=AFTER_HEADER, pattern=_AFTER, rule="invalid_subject_after", what="deals' or leads' answers"
    )


class Subjects:
    """A subject by type and id (None: unknown). Subclasses read deals and leads; organisations and people come
    from the directory's replica (``customers``)."""

    customers: CustomerReferences

    async def deal(self, deal_id: uuid.UUID) -> Subject | None:
        raise NotImplementedError

    async def lead(self, lead_id: uuid.UUID) -> Subject | None:
        raise NotImplementedError

    async def wait(self, after: Sequence[tuple[str, int]]) -> None:
        """Until the deals' and leads' events named have been applied (bounded; else ``ReadModelBehindError``)."""

    async def subject(
        self, subject_type: str, subject_id: uuid.UUID, after: Sequence[tuple[str, int]] = ()
    ) -> Subject | None:
        await self.wait(after)
        if subject_type == "deal":
            return await self.deal(subject_id)
        if subject_type == "lead":
            return await self.lead(subject_id)
        orgs, people = await self.customers.customers(
            [subject_id] if subject_type == "organisation" else [], [subject_id] if subject_type == "person" else []
        )
        if subject_type == "organisation" and (o := orgs.get(subject_id)) is not None:
            return Subject(
                "organisation", subject_id, o.owner_id, o.team_id, o.merged_into is None, f"organisation:{subject_id}"
            )
        if subject_type == "person" and (p := people.get(subject_id)) is not None:
            return Subject("person", subject_id, None, p.team_id, p.merged_into is None, f"person:{subject_id}")
        return None


class PostgresSubjects(Subjects):
    """The ``subjects`` read model and the directory replica, as the agenda's projector keeps them."""

    def __init__(self, read_models: ReadModels, replica: PostgresReplica, wait_s: float = WAIT_S) -> None:
        self.read_models = read_models
        self.customers = replica
        self.wait_s = wait_s

    async def wait(self, after: Sequence[tuple[str, int]]) -> None:
        deadline = time.monotonic() + self.wait_s
        for stream, version in after:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReadModelBehindError(NAME, stream, version, 0)
            async with self.read_models.connection(NAME, wait_for=(stream, version), wait_s=left):
                pass

    async def deal(self, deal_id: uuid.UUID) -> Subject | None:
        async with self.read_models.connection(NAME) as conn:
            r = await conn.fetchrow("SELECT * FROM deal_subjects WHERE deal_id = $1", deal_id)
        return (
            None if r is None else Subject("deal", deal_id, r["owner_id"], r["team_id"], r["open"], r["data_subject"])
        )

    async def lead(self, lead_id: uuid.UUID) -> Subject | None:
        async with self.read_models.connection(NAME) as conn:
            r = await conn.fetchrow("SELECT * FROM lead_subjects WHERE lead_id = $1", lead_id)
        return None if r is None else Subject("lead", lead_id, r["owner_id"], r["team_id"], r["open"], str(lead_id))


@dataclass
class MemorySubjects(Subjects):
    """The subjects in memory (the in-memory apps and unit tests): seeded, or fed the deals' and leads' events."""

    customers: CustomerReferences
    deals: dict[uuid.UUID, Subject] = field(default_factory=dict)
    leads: dict[uuid.UUID, Subject] = field(default_factory=dict)

    async def deal(self, deal_id: uuid.UUID) -> Subject | None:
        return self.deals.get(deal_id)

    async def lead(self, lead_id: uuid.UUID) -> Subject | None:
        return self.leads.get(lead_id)

    def apply(self, event: DomainEvent) -> None:
        """What ``apply_one`` does to the tables, on the dictionaries."""
        match event:
            case deals.DealOpened() as e:
                data_subject = deal_data_subject(e.deal_id, e.contact_id)
                self.deals.setdefault(e.deal_id, Subject("deal", e.deal_id, e.owner_id, e.team_id, True, data_subject))
            case deals.DealReassigned() as e if e.deal_id in self.deals:
                self.deals[e.deal_id] = replace(self.deals[e.deal_id], owner_id=e.to_owner_id, team_id=e.to_team_id)
            case deals.DealWon() | deals.DealLost() as e if e.deal_id in self.deals:
                self.deals[e.deal_id] = replace(self.deals[e.deal_id], open=False)
            case deals.DealReopened() as e if e.deal_id in self.deals:
                self.deals[e.deal_id] = replace(self.deals[e.deal_id], open=True)
            case leads.LeadCaptured() as e:
                self.leads.setdefault(e.lead_id, Subject("lead", e.lead_id, None, None, True, str(e.lead_id)))
            case leads.LeadAssigned() as e if e.lead_id in self.leads:
                lead = self.leads[e.lead_id]
                self.leads[e.lead_id] = replace(lead, owner_id=e.owner_id, team_id=e.team_id or lead.team_id)
            case leads.LeadConverted() | leads.LeadDisqualified() | leads.LeadMergedInto() as e if (
                e.lead_id in self.leads
            ):
                self.leads[e.lead_id] = replace(self.leads[e.lead_id], open=False)
            case leads.LeadRecycled() as e if e.lead_id in self.leads:
                self.leads[e.lead_id] = replace(self.leads[e.lead_id], open=True)
