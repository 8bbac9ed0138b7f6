"""Customers (issue 24 "Targets"): the customer 360 and search at 100 requests/s while 50 commands/s change the
customers, beside raw SQL over the same rows in the same run.

The directory as it serves — its API in a process of its own, its event store, its ``customers`` read model (the
blind index) and its ``customer360`` read model on PostgreSQL — holds 10,000 organisations (half the north's,
half the south's) and 30,000 people, each registered in the store (people's details sealed under their own keys)
and in the read models: the ``customers`` rows by the projection's own ``apply`` on the stored events (the
projector's work, without Kafka), the 360's history by COPY — per organisation three deals (won, lost, open), two
activities each, a follow-up with scores, an order shipped in two parts (30,000 deals, 60,000 activities).

Requests come open-loop, one every 10 ms, from the north's manager (so the scope applies), on the north's
customers: half ``GET /organisations/{id}/360``, a quarter ``GET /people?q=`` (a phone, an email or two name
words, in turn), a quarter ``GET /organisations?q=<tax code>``. The baseline runs the same SQL on the same rows
from a plain asyncpg pool: ``customer360_queries.customer_360`` and ``customer_queries.list_people`` /
``list_organisations`` with the same blind-index keys — no HTTP, token, rights, store read or opening of sealed
names. Meanwhile 50 commands/s go through the same API: ``PUT /organisations/{id}`` and ``PUT /people/{id}``
(appends; no projector runs, so the read models do not move under the reads). A busy answer (503 with Retry-After,
decision 0032) is waited out and sent again, as the system's clients are told to, at most 5 times; the table counts
them per round (reads busy, commands busy).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import asyncpg

from bench.common import Env, Report, cleanup, median, p95, p99, paced, timed
from bench.processes import HttpClient, ServiceProcesses
from services.directory import main as directory_main
from services.directory import search_keys
from services.directory.domain.taxcode import check_digit
from services.directory.events import OrganisationRegistered, PersonRegistered
from services.directory.projections import customer360_queries as q360
from services.directory.projections import customer_queries as qc
from services.directory.projections.customer360 import NAME
from services.directory.projections.customers import customers as customers_projection
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact
from shared.store import NewEvent
from testkit.services import bearer

RATE = 100  # requests per second
WRITES = 50  # commands per second
RETRIES = 5  # a busy answer (503 with Retry-After 1 or 2 s, decision 0032) is sent again up to this many times
MANAGER = bearer("u-mgr", "sales_manager", team="north")
T0 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng")
GIVEN = ("An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hòa", "Hùng", "Khánh", "Lan", "Linh", "Long")


def person_details(i: int) -> dict[str, Any]:
    return {
        "name": f"{FAMILY[i % len(FAMILY)]} Thị {GIVEN[(i // len(FAMILY)) % len(GIVEN)]} {i % 97}",
        "phones": [f"09{i:08d}"],
        "emails": [f"p{i}@khach.vn"],
    }


def tax_code(i: int) -> str:
    """The i-th organisation's: valid (its check digit by the published rule), one per organisation."""
    n = 300_000_000 + 2 * i
    while (digit := check_digit(f"{n:09d}")) is None:  # some prefixes have no valid check digit: the next
        n += 1
    return f"{n:09d}{digit}"


class World:
    """The customers a run holds: their ids by index, and which are the north's."""

    def __init__(self, n: int) -> None:
        self.orgs = [uuid.uuid4() for _ in range(n)]
        self.people = [uuid.uuid4() for _ in range(3 * n)]

    def team(self, i: int) -> str:
        return "north" if i % 2 == 0 else "south"

    def north_org(self) -> int:
        return random.randrange(0, len(self.orgs), 2)

    def north_person(self) -> int:
        return 3 * self.north_org() + random.randrange(3)


async def in_parallel(calls: list[Callable[[], Awaitable[Any]]], width: int = 16) -> None:
    for i in range(0, len(calls), width):
        await asyncio.gather(*(c() for c in calls[i : i + width]))


async def register(service: directory_main.DirectoryService, world: World) -> None:
    """Every organisation and person in the store (one stream each; people sealed under their own keys)."""
    store = service.storage.store

    def organisation(i: int) -> Callable[[], Awaitable[Any]]:
        org = world.orgs[i]
        event = OrganisationRegistered(
            organisation_id=org, name=f"Công ty Khách {i}", tax_code=tax_code(i), industry=("retail", "hotel")[i % 2],
            owner_id="u-lan", team_id=world.team(i), registered_at=T0,
        )  # fmt: skip
        return lambda: store.append(f"directory-organisation-{org}", [NewEvent(event)], expected_version=0)

    def person(k: int) -> Callable[[], Awaitable[Any]]:
        pid, i = world.people[k], k // 3
        event = PersonRegistered(
            person_id=pid, subject=f"person:{pid}", organisation_id=world.orgs[i], title=None, zalo_id=None,
            owner_id="u-lan", team_id=world.team(i), registered_at=T0, **person_details(k),
        )  # fmt: skip
        return lambda: store.append(f"directory-person-{pid}", [NewEvent(event)], expected_version=0)

    await in_parallel([organisation(i) for i in range(len(world.orgs))])
    await in_parallel([person(k) for k in range(len(world.people))])


async def index(service: directory_main.DirectoryService, conn: asyncpg.Connection, schema: str) -> None:
    """The ``customers`` read model from the stored events, by its projection's ``apply`` (as the projector).
    Every stored event, organisations' streams before people's (``read_streams``: ``read_all``, a tailing
    reader's, stops at the oldest transaction open anywhere in the cluster, and would leave some out)."""
    projection = customers_projection("t", service.storage.personal_data, service.index_key)
    await conn.execute(f"SET search_path = {schema}")
    recorded = await service.storage.store.read_streams("directory-")
    for start in range(0, len(recorded), 1000):
        facts = []
        for r in recorded[start : start + 1000]:
            envelope = CloudEvent.from_recorded(r, "directory")
            facts.append(Fact(envelope, envelope.to_event()))
        async with conn.transaction():
            await projection.apply(conn, facts)


async def history(conn: asyncpg.Connection, schema: str, world: World) -> None:
    """The 360's rows of every organisation, by COPY."""
    rows: dict[str, list[tuple[Any, ...]]] = {k: [] for k in ("orgs", "deals", "acts", "fups", "orders")}
    for i, org in enumerate(world.orgs):
        rows["orgs"].append((org, f"Công ty Khách {i}", ("retail", "hotel")[i % 2], world.team(i), None))
        at = T0 + timedelta(minutes=i)
        for status in ("won", "lost", "open"):
            deal = uuid.uuid4()
            won, lost = (at + timedelta(days=9) if status == "won" else None), (at if status == "lost" else None)
            rows["deals"].append(
                (deal, org, "Tủ đông", "u-lan", status, Decimal(30_000_000), "VND", at, won, lost, None)
            )
            for k in range(2):
                rows["acts"].append((uuid.uuid4(), deal, "call", "phone", "outbound", at + timedelta(days=k)))
            if status == "won":
                rows["fups"].append((uuid.uuid4(), deal, "satisfaction_check", date(2026, 2, 1), True, 1, 5, 9, at))
                rows["orders"].append(
                    (
                        uuid.uuid4(),
                        deal,
                        at,
                        date(2026, 3, 1),
                        Decimal(3),
                        2,
                        Decimal(3),
                        at,
                        at,
                        Decimal(3),
                        at,
                        0,
                        False,
                    )
                )
    tables = ("c360_organisations", "c360_deals", "c360_activities", "c360_follow_ups", "c360_orders")
    for table, key in zip(tables, rows, strict=True):
        await conn.copy_records_to_table(table, records=rows[key], schema_name=schema)
    await conn.execute(f"SET search_path = {schema}; ANALYZE")


def search_for(i: int, world: World) -> tuple[str, str]:
    """The i-th request's search: (kind, q) — a person by phone, email or name, or an organisation by tax code."""
    if i % 4 == 3:
        return "organisations", tax_code(world.north_org())
    k = world.north_person()
    details = person_details(k)
    q = (
        details["phones"][0],
        details["emails"][0],
        " ".join(details["name"].split()[2:3] + details["name"].split()[:1]),
    )
    return "people", q[i % 3]


def commands(http: HttpClient, world: World, round_: int) -> Callable[[int], Awaitable[None]]:
    """Half ``PUT /organisations/{id}``, half ``PUT /people/{id}``, on the north's customers (an industry or a
    title changed: what the searches look for stays). The round is in the new value: a second round's i-th
    command must not set what the first round's set (409 ``unchanged``)."""

    async def command(i: int) -> None:
        change = f"{round_}.{i}"
        o = world.north_org()
        if i % 2:
            body: dict[str, Any] = {
                "name": f"Công ty Khách {o}", "tax_code": tax_code(o), "industry": f"retail {change}", "reason": "checked"
            }  # fmt: skip
            status, answer = await http.send("PUT", f"/organisations/{world.orgs[o]}", body)
        else:
            k = 3 * o + random.randrange(3)
            body = {
                "organisation_id": str(world.orgs[o]),
                **person_details(k),
                "title": f"buyer {change}",
                "reason": "x",
            }
            status, answer = await http.send("PUT", f"/people/{world.people[k]}", body)
        assert status == 200, answer

    return command


def project_call(http: HttpClient, world: World) -> Callable[[int], Awaitable[None]]:
    async def call(i: int) -> None:
        if i % 2 == 0:
            status, answer = await http.send("GET", f"/organisations/{world.orgs[world.north_org()]}/360")
        else:
            kind, q = search_for(i, world)
            status, answer = await http.send("GET", f"/{kind}?q={quote(q)}")
            assert status == 200, answer
            assert answer["items"], (kind, q)
        assert status == 200, answer

    return call


def raw_call(c360: asyncpg.Pool, lists: asyncpg.Pool, secret: bytes, world: World) -> Callable[[int], Awaitable[None]]:
    async def call(i: int) -> None:
        if i % 2 == 0:
            async with c360.acquire() as conn:
                await q360.customer_360(conn, world.orgs[world.north_org()])
            return
        kind, q = search_for(i, world)
        scope: dict[str, Any] = {"search": search_keys.query_keys(secret, q), "teams": ["north"], "owner": None}
        async with lists.acquire() as conn:
            if kind == "people":
                found = await qc.list_people(conn, organisation=None, offset=0, limit=50, **scope)
            else:
                found = await qc.list_organisations(conn, team=None, offset=0, limit=50, **scope)
        assert found, (kind, q)

    return call


async def run(env: Env) -> Report:
    n, seconds = env.size(10_000, 40), env.size(20, 2)
    settings = env.settings()
    service = await directory_main.build(settings)
    runners = {r.projection.name: r for r in service.runners()}
    for name in (NAME, "customers"):
        await runners[name].setup()
    schemas = {name: runners[name].schema(1) for name in (NAME, "customers")}
    url = settings.database_url_for("directory")
    conn = await asyncpg.connect(url)
    pools = {
        name: await asyncpg.create_pool(url, min_size=2, max_size=8, server_settings={"search_path": schema})
        for name, schema in schemas.items()
    }
    api = ServiceProcesses(settings, service="directory", modes=("api",))
    http: list[HttpClient] = []
    world = World(n)
    report = Report(
        "customers",
        f"Customers: {n:,} organisations, {3 * n:,} people; {RATE} req/s (360, search) for {seconds} s while "
        f"{WRITES} commands/s change them",
        ["path", "requests", "p50 ms", "p95 ms", "p99 ms", "reads busy", "commands busy"],
    )
    try:
        started = time.perf_counter()
        await register(service, world)
        await index(service, conn, schemas["customers"])
        await history(conn, schemas[NAME], world)
        report.notes.append(f"loaded (store, blind index, 360 rows) in {time.perf_counter() - started:.0f} s")
        await api.start()
        reads, writes = (HttpClient(api.api_url, MANAGER, retries=RETRIES) for _ in range(2))
        http += [reads, writes]
        project = project_call(reads, world)
        alone = [await timed(lambda i=i: project(i)) for i in range(200)]  # warm-up; one request without load
        times = (1000 * f(alone) for f in (median, p95, p99))
        report.rows.append(["project, one at a time", len(alone), *times, reads.retried, "-"])
        results: dict[str, list[float]] = {}
        busy: dict[str, list[int | str]] = {}
        raw = raw_call(pools[NAME], pools["customers"], service.index_key, world)
        paths = (("project: the API, 360 and search", project), ("raw SQL: the same queries", raw))
        for round_, (name, call) in enumerate(paths):
            before = reads.retried, writes.retried
            writing = asyncio.create_task(paced(WRITES, seconds, commands(writes, world, round_)))
            results[name] = await paced(RATE, seconds, call)
            await writing
            busy[name] = [reads.retried - before[0] if call is project else "-", writes.retried - before[1]]
        for name, xs in results.items():
            report.rows.append([name, len(xs), *(1000 * f(xs) for f in (median, p95, p99)), *busy[name]])
        report.notes.append(
            f"busy: answers 503 busy (Retry-After) the client waited out and sent again, at most {RETRIES} times "
            "a request (decision 0032); the wait is in the latencies"
        )
        ours, theirs = (p95(xs) * 1000 for xs in results.values())
        report.at_most("p95 ms of 360 and search at 100 req/s with 50 commands/s", ours, 100)
        report.at_most("p95 / raw SQL p95", ours / theirs, 2)
        report.data = {
            "organisations": n,
            "people": 3 * n,
            "seconds": seconds,
            "busy_retried": busy,
            "samples_ms": {k: [1000 * x for x in v] for k, v in results.items()},
        }
        return report
    finally:
        for client in http:
            await client.close()
        api.stop()
        for pool in pools.values():
            await pool.close()
        await conn.close()
        await service.close()
        await cleanup(settings)
