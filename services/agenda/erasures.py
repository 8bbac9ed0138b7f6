"""An activity's notes and outcome are sealed under its subject's data-subject key (decision 0020): erasing the
lead, the deal's contact or the person destroys that key, and they read as null from then on with no event of the
agenda's. The ``erasures`` reaction records it on each activity too (``ActivityNotesErased``): so its history says
why its notes are gone, the read model drops the tokens, and a restore applies the erasure again
(``shared.messaging.restore``).

It keeps which activity is sealed under which subject (table ``sealed``, from the agenda's own
``ActivityScheduled``) and which subjects were erased (``erased_subjects``, from the leads', deals' and
directory's erasure events), in one runner, so the two orders of a race meet (as the hand-overs do): an erasure
marks every activity of its subject then; an activity scheduled on a subject already erased (its notes sealed
under no key: not kept) is marked when its own event arrives. Event ids derive from the causing event and the
activity, and the activity is reloaded first: a replay, a rebuild or a second delivery changes nothing.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

import structlog

from services.agenda import domain
from services.agenda.events import ActivityScheduled
from services.agenda.handlers import REACTIONS_ACTOR, Agenda
from shared.core.events import registry
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection, one_by_one
from shared.store import DuplicateEventError
from shared.store.commands import Context
from shared.store.db import Conn

log = structlog.get_logger(__name__)
NAME = "erasures"
ERASURES = (
    "pipelines.leads.LeadPersonalDataErased",
    "pipelines.deals.DealContactErased",
    "pipelines.directory.PersonPersonalDataErased",
)
DDL = """
CREATE TABLE IF NOT EXISTS sealed (activity_id uuid PRIMARY KEY, data_subject text NOT NULL);
CREATE INDEX IF NOT EXISTS sealed_by_subject ON sealed (data_subject);
CREATE TABLE IF NOT EXISTS erased_subjects (data_subject text PRIMARY KEY, erased_by text NOT NULL);
"""


async def erase_notes(agenda: Agenda, activity_id: uuid.UUID, reason: str, cause: CloudEvent) -> None:
    """Record on the activity that its data subject was erased, unless it is recorded already."""
    state = (await agenda.activity(activity_id)).state
    if state.activity_id is None or state.notes_erased:
        return
    ctx = dataclasses.replace(
        Context.reacting_to(cause, REACTIONS_ACTOR), derive_ids_from=f"{cause.id}:{activity_id}", reason=reason
    )
    try:
        await agenda.handle(activity_id, domain.EraseNotes(reason=reason), ctx)
    except DuplicateEventError:
        return  # recorded before (a replay)
    log.info("agenda.notes_erased", activity_id=str(activity_id), data_subject=state.data_subject)


def erasures(agenda_on: Callable[[Conn], Agenda], topics: tuple[str, ...]) -> Projection:
    """The ``erasures`` reaction, on the leads', deals', directory's and the agenda's own topics; ``agenda_on(conn)``:
    the agenda appending on the runner's transaction."""

    async def apply(conn: Conn, fact: Fact) -> None:
        envelope = fact.envelope
        here = agenda_on(conn)
        if isinstance(fact.event, ActivityScheduled):
            e = fact.event
            await conn.execute(
                "INSERT INTO sealed VALUES ($1, $2) ON CONFLICT DO NOTHING", e.activity_id, e.data_subject
            )
            erased = await conn.fetchval(
                "SELECT erased_by FROM erased_subjects WHERE data_subject = $1", e.data_subject
            )
            if erased is not None:
                await erase_notes(here, e.activity_id, f"{e.data_subject} erased ({erased})", envelope)
            return
        subject = registry.erased_subject(envelope.type, envelope.data)
        if subject is None:
            return
        kind = envelope.type.rsplit(".", 1)[-1]
        await conn.execute("INSERT INTO erased_subjects VALUES ($1, $2) ON CONFLICT DO NOTHING", subject, kind)
        rows = await conn.fetch("SELECT activity_id FROM sealed WHERE data_subject = $1 ORDER BY activity_id", subject)
        for r in rows:
            await erase_notes(here, r["activity_id"], f"{subject} erased ({kind})", envelope)

    return Projection(
        name=NAME,
        topics=topics,
        ddl=DDL,
        apply=one_by_one(apply),
        accepts=(*ERASURES, ActivityScheduled.event_type),
        tables=("sealed", "erased_subjects"),
    )
