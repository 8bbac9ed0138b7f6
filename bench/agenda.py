"""Agenda (issue 25 "Targets"): ``GET /agenda`` at 100 requests/s while 50 activities/s are scheduled through the
API, beside raw SQL of the same query on the same rows in the same run.

The agenda as it serves — its API in a process of its own, its event store, its ``activities`` read model and its
replicas (the directory's users and teams, the deals activities are about) on PostgreSQL — holds 100,000
activities of 1,000 users (100 each; 50 teams of 20), by COPY into the read models (the projector's rows, without
Kafka): each user's due times spread from 30 days back to 40 days ahead of the run, those still ahead open, a
quarter of those past still open (overdue), the rest done or cancelled; each on one of the user's 5 open deals.

Requests come open-loop, one every 10 ms, each from a salesperson of their own token asking for their own agenda
(overdue, today, upcoming 7 days; the replica's check of the owner and their time zone, the rights, the query).
The baseline runs the agenda's SQL (``services.agenda.projections.queries.agenda``) on the same rows from a
plain asyncpg pool: no HTTP, token, rights or replica reads. The two take turns, five rounds of 4 s each, so that
other work on the machine falls on both alike; the load average is noted. Meanwhile 50 ``POST /activities`` a
second go through the same API, each a salesperson scheduling a call on one of their deals (subject and owner
checked against the replicas, appended to the store; no projector runs, so the read model does not move under
the reads). A last, unmeasured round runs under py-spy: ``bench/results/agenda-profile-api.txt``.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from bench.common import Env, Report, cleanup, median, p95, p99, paced, timed
from bench.e2e import summarize_stacks
from bench.processes import HttpClient, ServiceProcesses
from services.agenda import main as agenda_main
from services.agenda.projections import queries
from testkit.services import bearer

RATE = 100  # agenda requests per second
WRITES = 50  # activities scheduled per second
RETRIES = 5  # a busy answer (503 with Retry-After, decision 0032) is sent again up to this many times
PER_USER = 100  # activities
DEALS_PER_USER = 5
TEAM_SIZE = 20
ROUNDS = 5  # of each path, in turn
TZ = "Asia/Ho_Chi_Minh"
ACTIVITY_COLUMNS = (
    "activity_id", "kind", "subject_type", "subject_ref", "owner_id", "team_id", "title", "data_subject", "due_at",
    "duration_minutes", "status", "scheduled_at", "completed_at", "cancelled_at", "version",
)  # fmt: skip
KINDS = ("phone", "meeting", "email", "zalo", "in_person", "task")


class World:
    """The users of a run, their teams, their deals and their tokens."""

    def __init__(self, users: int) -> None:
        self.users = [f"u-{i:04d}" for i in range(users)]
        self.deals = {u: [uuid.uuid4() for _ in range(DEALS_PER_USER)] for u in self.users}
        self.tokens = {u: bearer(u, "sales", team=self.team(i)) for i, u in enumerate(self.users)}

    @staticmethod
    def team(i: int) -> str:
        return f"team-{i // TEAM_SIZE:02d}"

    def any_user(self) -> str:
        return random.choice(self.users)


def activities(world: World, now: datetime, per_user: int) -> list[tuple[Any, ...]]:
    """The read model's rows: per user ``per_user`` activities due from 30 days back to 40 days ahead of ``now``."""
    rows = []
    rng = random.Random(25)
    for i, user in enumerate(world.users):
        for _ in range(per_user):
            due = now + timedelta(minutes=rng.randrange(-30 * 1440, 40 * 1440))
            status = "scheduled" if due > now or rng.random() < 0.25 else rng.choice(("done", "cancelled"))
            deal = rng.choice(world.deals[user])
            done = due if status == "done" else None
            dropped = due if status == "cancelled" else None
            kind = rng.choice(KINDS)
            rows.append(
                (uuid.uuid4(), kind, "deal", deal, user, world.team(i), f"{kind} {deal.hex[:6]}", f"deal:{deal}", due,
                 30, status, due - timedelta(days=3), done, dropped, 1 + (status != "scheduled"))
            )  # fmt: skip
    return rows


async def load(conn: asyncpg.Connection, schemas: dict[str, str], world: World, now: datetime, per_user: int) -> None:
    """The replicas (users, teams; the deals) and the activities, by COPY; then ANALYZE."""
    teams = sorted({world.team(i) for i in range(len(world.users))})
    users = [(u, world.team(i), ["sales"], True, TZ) for i, u in enumerate(world.users)]
    directory = schemas["directory"]
    await conn.copy_records_to_table("teams", records=[(t, True) for t in teams], schema_name=directory)
    await conn.copy_records_to_table(
        "users", records=users, columns=("user_id", "team_id", "roles", "active", "time_zone"), schema_name=directory
    )
    deals = [(d, u, world.team(i), True, f"deal:{d}") for i, u in enumerate(world.users) for d in world.deals[u]]
    await conn.copy_records_to_table("deal_subjects", records=deals, schema_name=schemas["subjects"])
    rows = activities(world, now, per_user)
    await conn.copy_records_to_table(
        "activities", records=rows, columns=ACTIVITY_COLUMNS, schema_name=schemas["activities"]
    )
    for schema in schemas.values():
        await conn.execute(f"SET search_path = {schema}; ANALYZE")


def schedule_calls(http: HttpClient, world: World) -> Callable[[int], Awaitable[None]]:
    """``POST /activities``: a salesperson schedules a call on one of their deals, a day or two ahead."""

    async def command(i: int) -> None:
        user = world.any_user()
        due = datetime.now(UTC) + timedelta(hours=random.randrange(1, 48))
        body = {
            "kind": "phone", "subject_type": "deal", "subject_id": str(random.choice(world.deals[user])),
            "title": f"gọi lại {i}", "due_at": due.isoformat(), "duration_minutes": 15,
        }  # fmt: skip
        status, answer = await http.send("POST", "/activities", body, world.tokens[user])
        assert status == 201, answer

    return command


def agenda_call(http: HttpClient, world: World) -> Callable[[int], Awaitable[None]]:
    """``GET /agenda``: a salesperson's own (their token)."""

    async def call(i: int) -> None:
        status, answer = await http.send("GET", "/agenda", None, world.tokens[world.any_user()])
        assert status == 200, answer
        assert answer["overdue"] or answer["today"] or answer["upcoming"], answer

    return call


def raw_call(pool: asyncpg.Pool, world: World) -> Callable[[int], Awaitable[None]]:
    tz = ZoneInfo(TZ)

    async def call(i: int) -> None:
        async with pool.acquire() as conn:
            found = await queries.agenda(
                conn, owner_id=world.any_user(), team_id=None, now=datetime.now(UTC), tz=tz, days=7, limit=50
            )
        assert any(found.values())

    return call


async def profile(api: ServiceProcesses, http: HttpClient, world: World, seconds: int, out: Path) -> None:
    """One more (unmeasured) loaded run while py-spy samples the api process; its top frames kept in ``out``."""
    spy = Path(sys.executable).parent / "py-spy"
    raw = Path(tempfile.mkdtemp()) / "api.txt"
    args = [str(spy), "record", "-p", str(api.pids()["api"]), "-d", str(seconds), "-r", "100", "--nonblocking"]
    sampler = subprocess.Popen(
        [*args, "-f", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    writing = asyncio.create_task(paced(WRITES, seconds, schedule_calls(http, world)))
    await paced(RATE, seconds, agenda_call(http, world))
    await writing
    await asyncio.to_thread(sampler.wait)
    if raw.exists():
        out.mkdir(parents=True, exist_ok=True)
        (out / "agenda-profile-api.txt").write_text(
            f"py-spy record (100 Hz, wall time of busy threads) of the agenda api at {RATE} GET /agenda/s and "
            f"{WRITES} POST /activities/s\n" + summarize_stacks(raw.read_text())
        )


async def run(env: Env) -> Report:
    users, seconds, per_user = env.size(1_000, 20), env.size(20, 2), env.size(PER_USER, 20)
    rounds = env.size(ROUNDS, 1)  # the two paths in turn, so both meet whatever else the machine is doing
    settings = env.settings()
    service = await agenda_main.build(settings)
    runners = {r.projection.name: r for r in service.runners()}
    for name in ("activities", "subjects", "directory"):
        await runners[name].setup()
    schemas = {name: runners[name].schema(1) for name in ("activities", "subjects", "directory")}
    url = settings.database_url_for("agenda")
    conn = await asyncpg.connect(url)
    pool = await asyncpg.create_pool(
        url, min_size=2, max_size=8, server_settings={"search_path": schemas["activities"]}
    )
    api = ServiceProcesses(settings, service="agenda", modes=("api",))
    http: HttpClient | None = None
    world = World(users)
    report = Report(
        "agenda",
        f"Agenda: {users * per_user:,} activities of {users:,} users; {RATE} GET /agenda a second for {seconds} s "
        f"while {WRITES} activities a second are scheduled (the api and the raw SQL in turn, {rounds} rounds)",
        ["path", "requests", "p50 ms", "p95 ms", "p99 ms"],
    )
    try:
        started, busy = time.perf_counter(), os.getloadavg()[0]  # other work on the machine skews every figure
        await load(conn, schemas, world, datetime.now(UTC), per_user)
        report.notes.append(
            f"loaded (replicas, {users * per_user:,} activities) in {time.perf_counter() - started:.0f} s"
        )
        await api.start()
        # each request with its user's token; a 503 busy (a loaded machine) waited out and sent again, as a client
        # of the system is told to (decision 0032), and counted
        http = client = HttpClient(api.api_url, {}, retries=RETRIES)
        agenda = agenda_call(client, world)
        alone = [await timed(lambda i=i: agenda(i)) for i in range(env.size(200, 20))]  # warm-up; one at a time
        report.rows.append(["api, one at a time", len(alone), *(1000 * f(alone) for f in (median, p95, p99))])
        raw = raw_call(pool, world)
        paths = (("api: GET /agenda", agenda), ("raw SQL: the same query", raw))
        results: dict[str, list[float]] = {name: [] for name, _ in paths}
        for _ in range(rounds):
            for name, call in paths:
                writing = asyncio.create_task(paced(WRITES, seconds / rounds, schedule_calls(client, world)))
                results[name] += await paced(RATE, seconds / rounds, call)
                await writing
        for name, xs in results.items():
            report.rows.append([name, len(xs), *(1000 * f(xs) for f in (median, p95, p99))])
        report.notes.append(f"load average (1 min) at the start {busy:.1f}, at the end {os.getloadavg()[0]:.1f}")
        report.notes.append(
            f"answers 503 busy waited out as Retry-After says and sent again (at most {RETRIES} times a request; the "
            f"wait is in the latencies): {client.retried}"
        )
        if not env.quick:  # where the api's time goes under that load: py-spy, unmeasured
            await profile(api, client, world, seconds, env.out)
        ours, theirs = (p95(xs) * 1000 for xs in results.values())
        report.at_most("p95 ms of GET /agenda at 100 req/s with 50 activities/s scheduled", ours, 50)
        report.at_most("p95 / raw SQL p95", ours / theirs, 2)
        report.data = {
            "users": users,
            "activities": users * per_user,
            "seconds": seconds,
            "samples_ms": {k: [1000 * x for x in v] for k, v in results.items()},
            "busy_retried": client.retried,
        }
        return report
    finally:
        if http is not None:
            await http.close()
        api.stop()
        await pool.close()
        await conn.close()
        await service.close()
        await cleanup(settings)
