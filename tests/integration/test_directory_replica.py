"""The directory's replica and the hand-over reaction on PostgreSQL (services.directory.replica): the tables as
the directory's events leave them (the same as the in-memory replica the unit tests use), and both orders of a
deactivation racing with a deal opened for the user hand the deal over exactly once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from services.deals import handovers as deal_handovers
from services.deals.events import DealOpened, DealWon
from services.directory import events as ev
from services.directory.replica import (
    DDL,
    MemoryReplica,
    PostgresReplica,
    UnknownReferenceError,
    apply_one,
    handovers,
    replica,
)
from shared.core.events import DomainEvent
from shared.core.money import Money
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, ReadModelBehindError, ReadModels
from shared.messaging.runner import ProjectionRunner

pytestmark = pytest.mark.pg
NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def fact(event: DomainEvent, stream: str, n: int) -> Fact:
    envelope = CloudEvent(
        id=str(uuid.UUID(int=n)),
        source="/pipelines/test",
        type=event.event_type,
        subject=stream,
        time=NOW,
        data=event.model_dump(mode="json"),
        streamid=stream,
        streamversion=1,
        position=n,
        schemaversion=1,
        recordedtime=NOW,
        correlationid="c",
        causationid="c",
    )
    return Fact(envelope, event)


def registered(user: str, team: str) -> ev.UserRegistered:
    return ev.UserRegistered(
        user_id=user,
        subject=f"user:{user}",
        name=None,
        email=None,
        language="vi",
        time_zone="Asia/Ho_Chi_Minh",
        team_id=team,
        roles=("sales",),
        registered_at=NOW,
    )


HISTORY: list[DomainEvent] = [
    ev.TeamCreated(team_id="north", name="Bắc", created_at=NOW),
    ev.TeamCreated(team_id="south", name="Nam", created_at=NOW),
    registered("u-lan", "north"),
    registered("u-binh", "north"),
    ev.UserMovedToTeam(user_id="u-lan", old="north", new="south", reason="moved"),
    ev.UserRolesChanged(user_id="u-lan", old=("sales",), new=("sales", "sales_manager"), reason="promoted"),
    ev.UserDeactivated(user_id="u-binh", team_id="north", handed_to="u-lan", reason="left", deactivated_at=NOW),
    ev.TeamClosed(team_id="north", reason="merged", closed_at=NOW),
]


async def test_the_tables_hold_what_the_in_memory_replica_holds_and_a_replay_changes_nothing(
    pg_conn: asyncpg.Connection,
) -> None:
    await pg_conn.execute(DDL)
    memory = MemoryReplica()
    for _ in range(2):  # the second time: a replay
        for n, e in enumerate(HISTORY, 1):
            await apply_one(pg_conn, fact(e, "directory-x", n))
            memory.apply(e)
    users = await pg_conn.fetch("SELECT user_id, team_id, roles, active, handed_to FROM users ORDER BY user_id")
    assert [tuple(r.values()) for r in users] == [
        ("u-binh", "north", ["sales"], False, "u-lan"),
        ("u-lan", "south", ["sales", "sales_manager"], True, None),
    ]
    assert {u.user_id: (u.team_id, list(u.roles), u.active, u.handed_to) for u in memory.users.values()} == {
        r["user_id"]: (r["team_id"], r["roles"], r["active"], r["handed_to"]) for r in users
    }
    teams = await pg_conn.fetch("SELECT team_id, active FROM teams ORDER BY team_id")
    assert [tuple(r.values()) for r in teams] == [("north", False), ("south", True)]
    assert {t.team_id: t.active for t in memory.teams.values()} == {"north": False, "south": True}


@pytest.mark.parametrize("whole", [False, True])  # each event in its own batch, or the race in one
@pytest.mark.parametrize("deactivation_first", [True, False])
async def test_a_deal_racing_with_its_owners_deactivation_is_handed_over_once(
    pg_conn: asyncpg.Connection, deactivation_first: bool, whole: bool
) -> None:
    handed: list[tuple[str, str, str]] = []

    async def hand_over(conn: object, item: str, old: str, new: str, reason: str, cause: CloudEvent) -> None:
        handed.append((item, old, new))

    projection = handovers("dir", "deals", deal_handovers.EVENTS, deal_handovers.ownership, hand_over)
    await pg_conn.execute(projection.ddl)
    deal, won = uuid.uuid4(), uuid.uuid4()
    opened = [
        fact(DealOpened.model_construct(deal_id=d, owner_id="u-binh", team_id="north"), f"deal-{d}", i)
        for i, d in ((1, deal), (2, won))
    ]
    closed = fact(DealWon.model_construct(deal_id=won, value=Money.zero(), won_at=NOW, lines=()), f"deal-{won}", 3)
    gone = ev.UserDeactivated(user_id="u-binh", team_id="north", handed_to="u-lan", reason="left", deactivated_at=NOW)
    deactivated = fact(gone, "directory-user-u-binh", 4)
    order = [*opened, closed, deactivated] if deactivation_first is False else [deactivated, *opened, closed]
    for batch in [order] if whole else [[f] for f in order]:
        await projection.apply(pg_conn, batch)
    # opened before: handed over by the deactivation; opened after: by its own opening. Won before it: never.
    expected = [(str(deal), "u-binh", "u-lan")]
    if deactivation_first:
        expected.append((str(won), "u-binh", "u-lan"))  # open when its opening arrived; its reaction reloads it
    assert handed == expected
    reactivated = ev.UserReactivated(user_id="u-binh", team_id="north", reason="back")
    await projection.apply(pg_conn, [fact(reactivated, "directory-user-u-binh", 5)])
    later = uuid.uuid4()
    await projection.apply(
        pg_conn, [fact(DealOpened.model_construct(deal_id=later, owner_id="u-binh"), f"deal-{later}", 6)]
    )
    assert handed == expected  # reactivated: their new deal stays theirs


async def test_the_check_waits_for_the_directory_answers_named_then_reads_the_tables(
    pg_pool: asyncpg.Pool, pg_schema: str
) -> None:
    runner = ProjectionRunner(pg_pool, replica("x"), namespace=pg_schema, bootstrap_servers="x", dead_letter_topic="x")
    await runner.setup()
    references = PostgresReplica(ReadModels(pg_pool, pg_schema), wait_s=0.3)
    named = [("directory-user-u-new", 1)]
    with pytest.raises(ReadModelBehindError):  # 503: the replica has not applied the registration yet
        await references.check(owner_id="u-new", team_id="north", after=named)
    with pytest.raises(UnknownReferenceError) as unknown:  # without waiting: refused at once
        await references.check(owner_id="u-new", team_id="north")
    assert (unknown.value.rule, unknown.value.field) == ("unknown_team", "team_id")
    async with pg_pool.acquire() as conn:
        await conn.execute(f"SET search_path TO {runner.schema(1)}")
        for n, e in enumerate(
            [
                *(ev.TeamCreated(team_id=t, name=t, created_at=NOW) for t in ("north", "south")),
                registered("u-new", "north"),
            ]
        ):
            await apply_one(conn, fact(e, "directory-user-u-new", n + 1))
        await conn.execute("INSERT INTO projection_progress VALUES ('directory-user-u-new', 1)")
    await references.check(owner_id="u-new", team_id="north", after=named)  # reached: decided on the tables
    with pytest.raises(UnknownReferenceError) as outside:
        await references.check(owner_id="u-new", team_id="south", after=named)
    assert (outside.value.rule, outside.value.field) == ("not_in_team", "owner_id")
    await references.check(owner_id="u-new", filtering=True)
