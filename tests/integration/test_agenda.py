"""The agenda on PostgreSQL: activities scheduled, moved, done and cancelled through the API on the PostgreSQL event
store, projected into the ``activities`` read model (twice: a replay changes nothing), and ``GET /agenda`` against
an oracle — a scripted set of activities whose buckets are computed here by hand, for owners on either side of a
time-zone edge (Hanoi, +07, and Tokyo, +09, at 16:30 UTC: 23:30 on the 7th in Hanoi, 01:30 on the 8th in Tokyo).
Then the owners and teams of the directory's replica (PostgreSQL) are checked, and erasing the lead an activity is
about makes its notes read as null (the PostgreSQL key store)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.agenda.api import AgendaAPI, create_app
from services.agenda.domain import Placement, Schedule
from services.agenda.erasures import erasures
from services.agenda.events import ActivityScheduled
from services.agenda.handlers import Agenda
from services.agenda.projections import activities
from services.agenda.projections.model import apply_one
from services.agenda.subjects import DDL as SUBJECTS_DDL
from services.agenda.subjects import MemorySubjects, PostgresSubjects, Subject
from services.agenda.subjects import apply_one as apply_subject
from services.agenda.subjects import subjects as subjects_projection
from services.deals.events import DealLost, DealOpened, DealReassigned, DealReopened, DealWon
from services.directory import events as ev
from services.directory.replica import MemoryReplica, PostgresReplica, replica
from services.directory.replica import apply_one as apply_directory
from services.leads.events import (
    LeadAssigned,
    LeadCaptured,
    LeadConverted,
    LeadDisqualified,
    LeadPersonalDataErased,
    LeadRecycled,
)
from shared.edge.auth import TokenVerifier, issue_token
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, ReadModelBehindError, ReadModels
from shared.messaging.runner import ProjectionRunner
from shared.store.commands import Context
from shared.store.postgres import PostgresEventStore
from testkit.services import TEST_KEYS

pytestmark = pytest.mark.pg
AT = datetime(2026, 12, 7, 16, 30, tzinfo=UTC)
DEAL = uuid.UUID("00000000-0000-4000-8000-00000000a001")
LEAD = uuid.UUID("00000000-0000-4000-8000-00000000a002")
SOUTH_DEAL = uuid.UUID("00000000-0000-4000-8000-00000000a003")


def auth(user: str, *roles: str, team: str | None = "north") -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)}


DIRECTOR = auth("u-giam", "sales_director", team=None)
LAN, MAI, TUAN = auth("u-lan", "sales"), auth("u-mai", "sales_manager"), auth("u-tuan", "sales", team="south")


def z(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


# name → (owner, due at); the buckets each falls in are written out by hand below
SCRIPT: dict[str, tuple[str, datetime]] = {
    "L1": ("u-lan", z(7, 10)),
    "L2": ("u-lan", z(7, 16, 29)),  # a minute before now: overdue
    "L3": ("u-lan", z(7, 16, 30)),  # now: today
    "L4": ("u-lan", z(7, 16, 59)),  # 23:59 in Hanoi: today
    "L5": ("u-lan", z(7, 17)),  # Hanoi's midnight: upcoming
    "L6": ("u-lan", z(9, 16, 59)),  # the last minute of two more local days
    "L7": ("u-lan", z(9, 17)),  # beyond them
    "L8": ("u-lan", z(7, 12)),  # done (below): in no bucket
    "L9": ("u-lan", z(8, 12)),  # cancelled (below): in no bucket
    "L10": ("u-lan", z(12, 9)),  # rescheduled (below) to 16:45 on the 7th: today
    "K1": ("u-kenji", z(7, 18)),  # 03:00 on the 8th in Tokyo: today (in Hanoi it would be tomorrow)
    "K2": ("u-kenji", z(8, 14, 59)),  # 23:59 on the 8th in Tokyo: today
    "K3": ("u-kenji", z(8, 15)),  # Tokyo's midnight: upcoming
    "K4": ("u-kenji", z(7, 16)),  # overdue
    "K5": ("u-kenji", z(10, 15)),  # beyond two more Tokyo days
    "T1": ("u-tuan", z(7, 16, 40)),  # another team's
}
ORACLE = {
    "u-lan": {"overdue": ["L1", "L2"], "today": ["L3", "L10", "L4"], "upcoming": ["L5", "L6"]},
    "u-kenji": {"overdue": ["K4"], "today": ["K1", "K2"], "upcoming": ["K3"]},
    # the team's, in the business time zone (Hanoi): Kenji's 18:00 UTC is tomorrow there
    "north": {
        "overdue": ["L1", "K4", "L2"],
        "today": ["L3", "L10", "L4"],
        "upcoming": ["L5", "K1", "K2", "K3", "L6"],
    },
}


def fact(event: Any, stream: str, n: int) -> Fact:
    envelope = CloudEvent(
        id=str(uuid.UUID(int=n)),
        source="/pipelines/test",
        type=event.event_type,
        subject=stream,
        time=AT,
        data=event.model_dump(mode="json"),
        streamid=stream,
        streamversion=1,
        position=n,
        schemaversion=1,
        recordedtime=AT,
        correlationid="c",
        causationid="c",
    )
    return Fact(envelope, event)


def registered(user: str, team: str, zone: str) -> ev.UserRegistered:
    return ev.UserRegistered(
        user_id=user,
        subject=f"user:{user}",
        name=None,
        email=None,
        language="vi",
        time_zone=zone,
        team_id=team,
        roles=("sales",),
        registered_at=AT,
    )


async def _schemas(pool: asyncpg.Pool, namespace: str) -> dict[str, str]:
    found = {}
    for projection in (activities("agenda"), replica("directory")):
        runner = ProjectionRunner(pool, projection, namespace=namespace, bootstrap_servers="x", dead_letter_topic="x")
        await runner.setup()
        found[projection.name] = runner.schema(1)
    async with pool.acquire() as conn:
        await conn.execute(f"SET search_path TO {found['directory']}")
        users = [
            registered("u-lan", "north", "Asia/Ho_Chi_Minh"),
            registered("u-kenji", "north", "Asia/Tokyo"),
            registered("u-mai", "north", "Asia/Ho_Chi_Minh"),
            registered("u-tuan", "south", "Asia/Ho_Chi_Minh"),
        ]
        teams = [ev.TeamCreated(team_id=t, name=t, created_at=AT) for t in ("north", "south")]
        for n, e in enumerate([*teams, *users], 1):
            await apply_directory(conn, fact(e, "directory-x", n))
    return found


async def _project(pool: asyncpg.Pool, store: PostgresEventStore, schema: str) -> None:
    # every agenda stream in commit order; not read_all, which hides what committed after a transaction another test
    # holds open (a tailing reader's view)
    recorded = sorted(await store.read_streams("agenda-"), key=lambda r: r.position)
    async with pool.acquire() as conn:
        await conn.execute(f"SET search_path TO {schema}")
        for _ in range(2):  # the second time: a replay
            for r in recorded:
                envelope = CloudEvent.from_recorded(r, "agenda")
                await apply_one(conn, Fact(envelope, envelope.to_event()))


async def test_the_agenda_answers_the_oracles_buckets_across_a_time_zone_edge(
    pg_pool: asyncpg.Pool, pg_schema: str, pg_store: PostgresEventStore
) -> None:
    schemas = await _schemas(pg_pool, pg_schema)
    read_models = ReadModels(pg_pool, pg_schema)
    references = PostgresReplica(read_models)
    subjects = MemorySubjects(references)
    subjects.deals[DEAL] = Subject("deal", DEAL, "u-mai", "north", True, "c-deal-1")
    subjects.deals[SOUTH_DEAL] = Subject("deal", SOUTH_DEAL, "u-tuan", "south", True, "c-deal-2")
    subjects.leads[LEAD] = Subject("lead", LEAD, "u-lan", "north", True, str(LEAD))

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    agenda = Agenda(pg_store, lambda: AT)
    api = AgendaAPI(agenda, read_models, pg_store.personal_data, ready, references, subjects)
    app = create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))
    ids: dict[str, str] = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agenda") as http:
        back_dated = DIRECTOR | {"X-Occurred-At": (AT - timedelta(days=3)).isoformat()}
        for name, (owner, due) in SCRIPT.items():
            subject = SOUTH_DEAL if owner == "u-tuan" else DEAL
            body = {
                "kind": "phone",
                "subject_type": "deal",
                "subject_id": str(subject),
                "owner_id": owner,
                "title": name,
                "due_at": due.isoformat(),
            }
            r = await http.post("/activities", json=body, headers=back_dated)
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]
        day_before = DIRECTOR | {"X-Occurred-At": (AT - timedelta(days=1)).isoformat()}
        assert (await http.post(f"/activities/{ids['L8']}/complete", json={}, headers=day_before)).status_code == 200
        assert (
            await http.post(f"/activities/{ids['L9']}/cancel", json={"reason": "x"}, headers=day_before)
        ).status_code == 200
        moved = {"due_at": z(7, 16, 45).isoformat()}
        assert (
            await http.post(f"/activities/{ids['L10']}/reschedule", json=moved, headers=day_before)
        ).status_code == 200
        lead = {
            "kind": "zalo",
            "subject_type": "lead",
            "subject_id": str(LEAD),
            "title": "Zalo",
            "notes": "Anh Minh, 0912 345 678",
            "due_at": z(12, 2).isoformat(),
        }
        erased = (await http.post("/activities", json=lead, headers=LAN)).json()["id"]
        await _project(pg_pool, pg_store, schemas["activities"])

        names = {v: k for k, v in ids.items()}

        async def buckets(params: dict[str, str], headers: dict[str, str]) -> dict[str, list[str]]:
            r = await http.get("/agenda", params=params | {"at": AT.isoformat(), "days": "2"}, headers=headers)
            assert r.status_code == 200, r.text
            return {b: [names[a["activity_id"]] for a in r.json()[b]] for b in ("overdue", "today", "upcoming")}

        assert await buckets({}, LAN) == ORACLE["u-lan"], "the caller's own, in Hanoi"
        assert await buckets({"owner_id": "u-kenji"}, MAI) == ORACLE["u-kenji"], "in Tokyo"
        assert await buckets({"team_id": "north"}, MAI) == ORACLE["north"]
        got = (await http.get("/agenda", params={"owner_id": "u-kenji", "at": AT.isoformat()}, headers=MAI)).json()
        assert got["time_zone"] == "Asia/Tokyo" and got["team_id"] == "north"
        assert (await http.get("/agenda", params={"owner_id": "u-kenji"}, headers=LAN)).status_code == 403
        assert (await http.get("/agenda", params={"team_id": "north"}, headers=TUAN)).status_code == 403
        assert (await http.get("/agenda", params={"owner_id": "u-tuan"}, headers=MAI)).status_code == 403
        unknown = await http.get("/agenda", params={"owner_id": "u-nobody"}, headers=DIRECTOR)
        assert (unknown.status_code, unknown.json()["errors"][0]["loc"]) == (422, ["query", "owner_id"])
        assert (await http.get("/agenda", params={"days": "32"}, headers=LAN)).status_code == 422

        # the lists: within the caller's scope, by filters
        async def listed(params: dict[str, str], headers: dict[str, str]) -> list[str]:
            r = await http.get("/activities", params=params | {"limit": "200"}, headers=headers)
            assert r.status_code == 200, r.text
            return [names.get(a["activity_id"], "lead") for a in r.json()["items"]]

        assert "T1" not in await listed({}, MAI) and "K1" in await listed({}, MAI)
        assert set(await listed({}, LAN)) == {n for n in SCRIPT if n.startswith("L")} | {"lead"}
        assert await listed({"status": "done"}, DIRECTOR) == ["L8"]
        assert await listed({"subject_type": "lead"}, DIRECTOR) == ["lead"]
        window = {"owner_id": "u-kenji", "due_from": z(8, 0).isoformat(), "due_to": z(8, 15).isoformat()}
        assert await listed(window, DIRECTOR) == ["K2"]
        assert await listed({"subject_id": str(SOUTH_DEAL)}, TUAN) == ["T1"]

        # erasing the lead the activity is about: its notes read as null (the key is gone from PostgreSQL)
        assert (await http.get(f"/activities/{erased}", headers=LAN)).json()["notes"] == "Anh Minh, 0912 345 678"
        await pg_store.personal_data.keys.erase(str(LEAD))
        assert (await http.get(f"/activities/{erased}", headers=LAN)).json()["notes"] is None


@pytest.mark.parametrize("whole", [False, True])  # each event in its own batch, or the history in one
@pytest.mark.parametrize("erasure_first", [False, True])
async def test_erasing_the_subject_is_recorded_on_each_of_its_activities_once(
    pg_pool: asyncpg.Pool, pg_schema: str, pg_store: PostgresEventStore, erasure_first: bool, whole: bool
) -> None:
    agenda = Agenda(pg_store, lambda: AT)
    projection = erasures(lambda conn: agenda.using(pg_store.using(conn)), ("x",))
    runner = ProjectionRunner(pg_pool, projection, namespace=pg_schema, bootstrap_servers="x", dead_letter_topic="x")
    await runner.setup()
    ctx = Context(actor="u-lan")
    scheduled = []
    for subject, data_subject in ((LEAD, str(LEAD)), (DEAL, "c-deal-1")):
        cmd = Schedule(kind="zalo", subject_type="deal", subject_id=subject, title="x", notes="Anh Minh", due_at=AT)
        place = Placement(owner_id="u-lan", team_id="north", data_subject=data_subject)
        (event, *_) = (await agenda.schedule(cmd, place, ctx)).events
        assert isinstance(event, ActivityScheduled)
        scheduled.append(event.activity_id)
    # read_streams, not read_all: a transaction another test holds open would hide these from a tailing read
    own = [CloudEvent.from_recorded(r, "agenda") for r in await pg_store.read_streams("agenda-activity-")]
    erased = fact(LeadPersonalDataErased(lead_id=LEAD, requested_by="u-dpo", reason="request #7"), f"lead-{LEAD}", 99)
    order = [erased.envelope, *own] if erasure_first else [*own, erased.envelope]
    for _ in range(2):  # the second time: a replay
        for batch in [order] if whole else [[e] for e in order]:
            async with pg_pool.acquire() as conn, conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {runner.schema(1)}")
                await projection.apply(conn, [Fact(envelope, envelope.to_event()) for envelope in batch])
    on_lead = await agenda.activity(scheduled[0])
    assert [e.event_type for e in on_lead.events][-1] == "pipelines.agenda.ActivityNotesErased"
    assert on_lead.state.notes_erased and len(on_lead.events) == 2, "recorded once"
    assert on_lead.events[-1].metadata["actor"] == "system:agenda-reactions"
    assert not (await agenda.activity(scheduled[1])).state.notes_erased, "another subject's activity keeps its notes"


async def test_the_subjects_tables_hold_what_the_in_memory_subjects_hold_and_a_replay_changes_nothing(
    pg_conn: asyncpg.Connection,
) -> None:
    deal, other, lead, dropped = (uuid.uuid4() for _ in range(4))
    history: list[Any] = [
        DealOpened.model_construct(deal_id=deal, owner_id="u-lan", team_id="north", contact_id=None),
        DealOpened.model_construct(deal_id=other, owner_id="u-lan", team_id=None, contact_id="c-1"),
        DealReassigned(
            deal_id=deal, from_owner_id="u-lan", to_owner_id="u-tuan", from_team_id="north", to_team_id="south"
        ),
        DealWon.model_construct(deal_id=other),
        DealReopened.model_construct(deal_id=other),
        DealLost.model_construct(deal_id=other),
        LeadCaptured.model_construct(lead_id=lead),
        LeadCaptured.model_construct(lead_id=dropped),
        LeadAssigned(lead_id=lead, owner_id="u-binh", team_id="north"),
        LeadAssigned(lead_id=lead, owner_id="u-lan"),  # no team named: it keeps its team
        LeadDisqualified.model_construct(lead_id=dropped),
        LeadRecycled(lead_id=dropped, reason="x"),
        LeadConverted.model_construct(lead_id=lead),
    ]
    await pg_conn.execute(SUBJECTS_DDL)
    memory = MemorySubjects(MemoryReplica())
    for _ in range(2):  # the second time: a replay
        for n, e in enumerate(history, 1):
            await apply_subject(pg_conn, fact(e, "x", n))
            memory.apply(e)
    deals = {
        r["deal_id"]: Subject("deal", r["deal_id"], r["owner_id"], r["team_id"], r["open"], r["data_subject"])
        for r in await pg_conn.fetch("SELECT * FROM deal_subjects")
    }
    leads = {
        r["lead_id"]: Subject("lead", r["lead_id"], r["owner_id"], r["team_id"], r["open"], str(r["lead_id"]))
        for r in await pg_conn.fetch("SELECT * FROM lead_subjects")
    }
    assert deals == memory.deals and leads == memory.leads
    assert deals[deal] == Subject("deal", deal, "u-tuan", "south", True, f"deal:{deal}")
    assert deals[other] == Subject("deal", other, "u-lan", None, False, "c-1")
    assert leads[lead] == Subject("lead", lead, "u-lan", "north", False, str(lead))
    assert leads[dropped].open


async def test_a_scheduling_waits_for_the_deal_the_client_just_opened(pg_pool: asyncpg.Pool, pg_schema: str) -> None:
    runner = ProjectionRunner(
        pg_pool, subjects_projection("d", "l"), namespace=pg_schema, bootstrap_servers="x", dead_letter_topic="x"
    )
    await runner.setup()
    read_models = ReadModels(pg_pool, pg_schema)
    found = PostgresSubjects(read_models, PostgresReplica(read_models), wait_s=0.3)
    deal = uuid.uuid4()
    named = [(f"deal-{deal}", 1)]
    with pytest.raises(ReadModelBehindError):  # 503: the deals' opening has not reached the agenda yet
        await found.subject("deal", deal, named)
    assert await found.subject("deal", deal) is None, "without the header: unknown at once (422)"
    async with pg_pool.acquire() as conn:
        await conn.execute(f"SET search_path TO {runner.schema(1)}")
        opened = DealOpened.model_construct(deal_id=deal, owner_id="u-lan", team_id="north", contact_id="c-9")
        await apply_subject(conn, fact(opened, f"deal-{deal}", 1))
        await conn.execute("INSERT INTO projection_progress VALUES ($1, 1)", f"deal-{deal}")
    assert await found.subject("deal", deal, named) == Subject("deal", deal, "u-lan", "north", True, "c-9")
