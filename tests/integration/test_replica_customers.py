"""The organisations and people of a pipeline's replica of the directory (services/directory/replica_customers.py)
on real PostgreSQL: built from the directory's events by the replica's own ``apply_one`` (twice: a replay changes
nothing), then read as the deals API reads it — an organisation followed through its merges, the family a filter
takes, the people a link may name — and the same answers from the in-memory replica fed the same events."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from services.directory import events as ev
from services.directory.replica import DDL, MemoryReplica, PostgresReplica, apply_one
from services.directory.replica_customers import CustomerReferences, UnknownCustomerError
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact

pytestmark = [pytest.mark.pg]

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
A, B, C, D = (uuid.UUID(int=n) for n in (0xA, 0xB, 0xC, 0xD))  # C merged into B, B into A; D the south's
P1, P2, P3 = (uuid.UUID(int=n) for n in (0x1, 0x2, 0x3))


def events() -> list[Any]:
    def org(o: uuid.UUID, team: str) -> ev.OrganisationRegistered:
        return ev.OrganisationRegistered(
            organisation_id=o, name=str(o), tax_code=None, owner_id="u-lan", team_id=team, registered_at=NOW
        )

    def person(p: uuid.UUID, o: uuid.UUID) -> ev.PersonRegistered:
        return ev.PersonRegistered(
            person_id=p, subject=f"person:{p}", organisation_id=o, name=None, owner_id="u-lan", team_id="north",
            registered_at=NOW,
        )  # fmt: skip

    return [
        org(A, "north"),
        org(B, "north"),
        org(C, "north"),
        org(D, "south"),
        person(P1, C),
        person(P2, D),
        person(P3, A),
        ev.OrganisationMerged(organisation_id=C, into=B, reason="dup", merged_at=NOW),
        ev.OrganisationMerged(organisation_id=B, into=A, reason="dup", merged_at=NOW),
        ev.OrganisationReassigned(
            organisation_id=D,
            old_owner_id="u-lan",
            old_team_id="south",
            owner_id="u-hoa",
            team_id="east",
            reason="moved",
        ),
        ev.PersonMerged(person_id=P3, into=P1, reason="dup", merged_at=NOW),
    ]


def fact(i: int, event: Any) -> Fact:
    envelope = CloudEvent(
        id=str(uuid.uuid4()), source="/pipelines/directory", type=event.event_type, subject="s", time=NOW,
        data=event.model_dump(mode="json"), streamid=f"s-{i}", streamversion=1, position=i + 1,
        schemaversion=event.schema_version, recordedtime=NOW, correlationid="c", causationid="c",
    )  # fmt: skip
    return Fact(envelope, event)


class OneConnection:
    """``ReadModels`` reduced to what the replica asks of it: a connection to its tables."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @contextlib.asynccontextmanager
    async def connection(self, projection: str, **_: Any) -> AsyncIterator[asyncpg.Connection]:
        assert projection == "directory"
        yield self.conn


async def answers(refs: CustomerReferences) -> dict[str, Any]:
    with pytest.raises(UnknownCustomerError) as unknown:
        await refs.organisation(uuid.uuid4())
    assert unknown.value.field == "organisation_id"
    a = await refs.organisation(C)  # followed C → B → A
    with pytest.raises(UnknownCustomerError) as stranger:
        await refs.people_of(a, [P2])
    assert (stranger.value.field, stranger.value.rule) == ("person_ids", "not_of_organisation")
    d = await refs.organisation(D)
    return {
        "followed": (a.organisation_id, a.team_id),
        "family": await refs.family(A),
        "family of B": await refs.family(B),
        "people": await refs.people_of(a, [P1, P3]),  # P3 merged into P1: one person
        "reassigned": (d.team_id, d.owner_id),
    }


async def test_the_replica_answers_as_its_events_say_on_postgresql_and_in_memory(pg_conn: asyncpg.Connection) -> None:
    await pg_conn.execute(DDL)
    for replay in range(2):
        for i, event in enumerate(events()):
            await apply_one(pg_conn, fact(i + 100 * replay, event))
    on_pg = await answers(PostgresReplica(OneConnection(pg_conn)))
    memory = MemoryReplica()
    for event in events():
        memory.apply(event)
    in_memory = await answers(memory)
    assert (
        on_pg
        == in_memory
        == {
            "followed": (A, "north"),
            "family": [A, B, C],
            "family of B": [B, C],
            "people": (P1,),
            "reassigned": ("east", "u-hoa"),
        }
    )
