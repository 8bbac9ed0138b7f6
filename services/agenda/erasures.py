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
from collections.abc import Callable, Sequence

import structlog

from services.agenda import domain
from services.agenda.events import ActivityScheduled
from services.agenda.handlers import REACTIONS_ACTOR, Agenda
from shared.core.events import registry
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection
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


async def _scheduled(conn: Conn, here: Agenda, facts: list[Fact]) -> None:
    """A run of ``ActivityScheduled`` in order: each activity's subject kept (the first time: one statement), and
    the notes of those scheduled on a subject already erased erased (the erased subjects read once: only an
    erasure event, which ends a run, adds to them)."""
    if not facts:
        return
    sealed: dict[uuid.UUID, str] = {}
    for f in facts:
        assert isinstance(f.event, ActivityScheduled)
        sealed.setdefault(f.event.activity_id, f.event.data_subject)
    await conn.execute(
        "INSERT INTO sealed SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING",
        list(sealed),
        list(sealed.values()),
    )
    subjects = list({f.event.data_subject for f in facts if isinstance(f.event, ActivityScheduled)})
    rows = await conn.fetch(
        "SELECT data_subject, erased_by FROM erased_subjects WHERE data_subject = ANY($1::text[])", subjects
    )
    erased: dict[str, str] = {r["data_subject"]: r["erased_by"] for r in rows}
    for f in facts:
        e = f.event
        assert isinstance(e, ActivityScheduled)
        if (by := erased.get(e.data_subject)) is not None:
            await erase_notes(here, e.activity_id, f"{e.data_subject} erased ({by})", f.envelope)


async def _erasure(conn: Conn, here: Agenda, fact: Fact) -> None:
    """A subject erased: recorded, and the notes of every activity sealed under it erased."""
    envelope = fact.envelope
    subject = registry.erased_subject(envelope.type, envelope.data)
    if subject is None:
        return
    kind = envelope.type.rsplit(".", 1)[-1]
    await conn.execute("INSERT INTO erased_subjects VALUES ($1, $2) ON CONFLICT DO NOTHING", subject, kind)
    rows = await conn.fetch("SELECT activity_id FROM sealed WHERE data_subject = $1 ORDER BY activity_id", subject)
    for r in rows:
        await erase_notes(here, r["activity_id"], f"{subject} erased ({kind})", envelope)


def erasures(agenda_on: Callable[[Conn], Agenda], topics: tuple[str, ...]) -> Projection:
    """The ``erasures`` reaction, on the leads', deals', directory's and the agenda's own topics; ``agenda_on(conn)``:
    the agenda appending on the runner's transaction. A batch in order: each run of schedulings between two
    erasures in two statements (decision 0030), each erasure on its own."""

    async def apply(conn: Conn, facts: Sequence[Fact]) -> None:
        here = agenda_on(conn)
        run: list[Fact] = []
        for fact in facts:
            if isinstance(fact.event, ActivityScheduled):
                run.append(fact)
                continue
            await _scheduled(conn, here, run)
            run = []
            await _erasure(conn, here, fact)
        await _scheduled(conn, here, run)

    return Projection(
        name=NAME,
        topics=topics,
        ddl=DDL,
        apply=apply,
        accepts=(*ERASURES, ActivityScheduled.event_type),
        tables=("sealed", "erased_subjects"),
    )
