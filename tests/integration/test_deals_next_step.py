"""The next step on every open deal (issue 25 item 2, Pipedrive's rule): given the deals' and the agenda's events,
the board shows each open deal's next activity and flags "no next step" and "overdue", and the analytics count
them per owner, team and stage with the other analytics' filters. The flags are derived at the query's time, so a
rebuild — whatever order it reads the two topics in, in batches of any size — gives the same rows. Real
PostgreSQL, the projections' ``apply`` called directly on the events (no Kafka: one test across the processes is
``tests/integration/test_next_step_flow.py``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.agenda import events as agenda
from services.deals import analytics, domain, projections
from services.deals.handlers import Deals
from shared.messaging.projections import Fact
from shared.store import NewEvent
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore
from testkit.facts import build, facts_of, schema

pytestmark = [pytest.mark.pg]

START = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
NOW = START + timedelta(days=3)  # the queries' time
TZ = "Asia/Ho_Chi_Minh"
SEN = uuid.UUID(int=0x5E1)
ALL: dict[str, Any] = {"user": "u-admin", "team": None, "all_deals": True}


class Agenda:
    """The agenda's events, appended as its service would record them (its rules are its own tests')."""

    def __init__(self) -> None:
        self.store = InMemoryEventStore()

    async def schedule(self, subject: uuid.UUID, due: timedelta, *, kind: str = "phone", on: str = "deal") -> uuid.UUID:
        activity_id = uuid.uuid4()
        event = agenda.ActivityScheduled(
            activity_id=activity_id, kind=kind, subject_type=on, subject_ref=subject, owner_id="u-lan",
            team_id="north", title=f"{kind} about {str(subject)[:4]}", due_at=START + due, duration_minutes=30,
            data_subject=f"deal:{subject}", scheduled_at=START,
        )  # fmt: skip
        await self.store.append(agenda.activity_stream(activity_id), [NewEvent(event)], expected_version=0)
        return activity_id

    async def then(self, event: agenda.ActivityEvent) -> None:
        stream = agenda.activity_stream(event.activity_id)
        version = len(await self.store.read_stream(stream))
        await self.store.append(stream, [NewEvent(event)], expected_version=version)


async def history() -> tuple[list[Fact], list[Fact], dict[str, uuid.UUID]]:
    """Deals A, B (u-lan, north), C, D (u-binh, north), F (u-tuan, south) open, E (u-tuan) lost; their activities:
    A one due tomorrow; B one an hour overdue and one in two days, B in negotiation; C none; D one completed and one
    cancelled; F one overdue rescheduled to later today, and a lead's (not a deal's); E one overdue (but E is lost)."""
    store = InMemoryEventStore()
    deals = Deals(store, lambda: START)
    await deals.ensure_default_pipeline()
    ids = {k: uuid.uuid4() for k in "ABCDEF"}
    owners = {"A": "u-lan", "B": "u-lan", "C": "u-binh", "D": "u-binh", "E": "u-tuan", "F": "u-tuan"}
    for k, deal_id in ids.items():
        team = "south" if owners[k] == "u-tuan" else "north"
        opening = domain.OpenDeal(
            title=k, customer=k, owner_id=owners[k], team_id=team, organisation_id=SEN if k == "A" else None
        )
        await deals.handle(deal_id, opening, Context(actor=owners[k]))
    await deals.handle(ids["B"], domain.MoveStage(stage_id="negotiation"), Context(actor="u-lan"))
    await deals.handle(ids["E"], domain.LoseDeal(reason="price"), Context(actor="u-tuan"))

    a = Agenda()
    ids["next_A"] = await a.schedule(ids["A"], timedelta(days=4))
    ids["next_B"] = await a.schedule(ids["B"], timedelta(days=3, hours=-1), kind="meeting")
    await a.schedule(ids["B"], timedelta(days=5))
    done, dropped = await a.schedule(ids["D"], timedelta(days=1)), await a.schedule(ids["D"], timedelta(days=4))
    await a.then(agenda.ActivityCompleted(activity_id=done, data_subject="x", completed_at=START + timedelta(days=1)))
    await a.then(agenda.ActivityCancelled(activity_id=dropped, reason="not needed", cancelled_at=START))
    ids["next_F"] = moved = await a.schedule(ids["F"], timedelta(days=2), kind="zalo")
    await a.then(
        agenda.ActivityRescheduled(
            activity_id=moved, old_due_at=START + timedelta(days=2), due_at=NOW + timedelta(hours=3),
            duration_minutes=15,
        )
    )  # fmt: skip
    await a.schedule(ids["F"], timedelta(days=1), on="lead")  # a lead of the same id: not the deal's
    await a.schedule(ids["E"], timedelta(days=1))
    return await facts_of((store, "deals")), await facts_of((a.store, "agenda")), ids


async def test_the_board_shows_each_open_deals_next_step_and_flags(pg_conn: asyncpg.Connection) -> None:
    deal_facts, agenda_facts, ids = await history()
    name = {str(v): k for k, v in ids.items() if len(k) == 1}
    await build(pg_conn, projections.board("t", "a"), deal_facts + agenda_facts)

    rows = await projections.list_deals(
        pg_conn, now=NOW, tz=TZ, status=None, stage_id=None, owner_id=None, stuck=None, offset=0, limit=10, **ALL
    )
    by = {name[r["deal_id"]]: r for r in rows}
    assert {k: (r["no_next_step"], r["overdue"], r["overdue_activities"]) for k, r in by.items()} == {
        "A": (False, False, 0),
        "B": (False, True, 1),
        "C": (True, False, 0),
        "D": (True, False, 0),
        "E": (False, False, 1),  # lost: an open activity is no flag on a closed deal
        "F": (False, False, 0),
    }
    assert by["A"]["next_step"] == {
        "activity_id": str(ids["next_A"]), "kind": "phone", "title": f"phone about {str(ids['A'])[:4]}",
        "due_at": (START + timedelta(days=4)).isoformat(),
    }  # fmt: skip
    assert by["B"]["next_step"]["activity_id"] == str(ids["next_B"])  # the overdue one is still the next step
    assert by["F"]["next_step"]["due_at"] == (NOW + timedelta(hours=3)).isoformat()  # as rescheduled
    assert by["C"]["next_step"] is None and by["D"]["next_step"] is None

    async def listed(**flags: bool) -> set[str]:
        found = await projections.list_deals(
            pg_conn, now=NOW, tz=TZ, status="open", stage_id=None, owner_id=None, stuck=None, offset=0, limit=10,
            **flags, **ALL,
        )  # fmt: skip
        return {name[r["deal_id"]] for r in found}

    assert await listed(no_next_step=True) == {"C", "D"}
    assert await listed(overdue=True) == {"B"}
    assert await listed(no_next_step=False, overdue=False) == {"A", "F"}

    board = await projections.board_view(pg_conn, pipeline_id="default", now=NOW, tz=TZ, **ALL)
    counts = {s["stage_id"]: (s["count"], s["no_next_step_count"], s["overdue_count"]) for s in board["stages"]}
    assert counts["target_identified"] == (4, 2, 0) and counts["negotiation"] == (1, 0, 1)
    later = await projections.list_deals(
        pg_conn, now=NOW + timedelta(days=2), tz=TZ, status="open", stage_id=None, owner_id=None, stuck=None,
        offset=0, limit=10, overdue=True, **ALL,
    )  # fmt: skip
    assert {name[r["deal_id"]] for r in later} == {"A", "B", "F"}  # two days on, A's and F's are overdue too


async def test_the_analytics_count_deals_without_a_next_step_and_overdue(pg_conn: asyncpg.Connection) -> None:
    deal_facts, agenda_facts, _ = await history()
    await build(pg_conn, analytics.analytics("t", "a"), deal_facts + agenda_facts)

    def counts(r: dict[str, Any]) -> tuple[int, int, int]:
        return r["open_deals"], r["without_next_step"], r["with_overdue"]

    got = await analytics.next_step_counts(pg_conn, now=NOW, pipeline_id="default")
    assert counts(got) == (5, 2, 1)
    assert {r["owner_id"]: counts(r) for r in got["by_owner"]} == {
        "u-binh": (2, 2, 0),
        "u-lan": (2, 0, 1),
        "u-tuan": (1, 0, 0),
    }
    assert {r["team_id"]: counts(r) for r in got["by_team"]} == {"north": (4, 2, 1), "south": (1, 0, 0)}
    assert [(r["stage_id"], r["name"], *counts(r)) for r in got["by_stage"]] == [
        ("target_identified", "Target identified", 4, 2, 0),
        ("negotiation", "Negotiation", 1, 0, 1),
    ]
    lan = await analytics.next_step_counts(pg_conn, now=NOW, pipeline_id="default", owner_id="u-lan")
    assert counts(lan) == (2, 0, 1) and [r["owner_id"] for r in lan["by_owner"]] == ["u-lan"]
    south = await analytics.next_step_counts(pg_conn, now=NOW, pipeline_id="default", team_id="south")
    assert counts(south) == (1, 0, 0)
    sen = await analytics.next_step_counts(pg_conn, now=NOW, pipeline_id="default", organisations=[SEN])
    assert counts(sen) == (1, 0, 0)
    before = await analytics.next_step_counts(pg_conn, now=START, pipeline_id="default")
    assert counts(before) == (5, 2, 0)  # at the start nothing was overdue yet


async def test_a_rebuild_in_any_order_and_batches_gives_the_same_rows(pg_conn: asyncpg.Connection) -> None:
    deal_facts, agenda_facts, _ = await history()
    seen: list[tuple[Any, ...]] = []
    for facts, batch in (
        (deal_facts + agenda_facts, 0),
        (agenda_facts + deal_facts, 1),
        (agenda_facts + deal_facts, 3),
    ):
        async with schema(pg_conn):
            await build(pg_conn, projections.board("t", "a"), facts, batch=batch)
            rows = await projections.list_deals(
                pg_conn, now=NOW, tz=TZ, status=None, stage_id=None, owner_id=None, stuck=None, offset=0, limit=10,
                **ALL,
            )  # fmt: skip
            board = sorted((r["deal_id"], str(r["next_step"]), r["no_next_step"], r["overdue"]) for r in rows)
        async with schema(pg_conn):
            await build(pg_conn, analytics.analytics("t", "a"), facts, batch=batch)
            numbers = await analytics.next_step_counts(pg_conn, now=NOW, pipeline_id="default")
        seen.append((board, numbers))
    assert seen[0] == seen[1] == seen[2]
    assert projections.board("t").topics == ("t",) and "a" in projections.board("t", "a").topics
