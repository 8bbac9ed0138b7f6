"""The board (issue 28 "Targets"): with 5,000 open deals of 50 salespeople, each page of the board (sales,
marketing, production, alerts, audit) answers in p95 <= 150 ms server time with HTML <= 150 KB, beside a baseline
in the same run: the same API queries the page makes, their raw JSON fetched alone (in parallel, as the board
fetches them, not parsed, nothing written).

The three APIs run as processes of their own on their event stores and read models on PostgreSQL. The deals
service holds the default pipeline and 5,000 deals opened by 50 salespeople of 5 teams, spread over the five open
stages, appended to its store as ``DealOpened`` events and applied to the ``board`` and ``analytics`` read models by
their projections' own ``apply`` (the projector's work, without Kafka). The board is the app itself, in this
process, called through ASGI (so its time is the server's: the APIs over HTTP, the templates, no browser), signed
in as an auditor (who sees every deal: the heaviest page) through a sign-in service faked at the HTTP transport
(the token it grants is a real one, which the APIs check). Each page is asked for one request at a time, the board
and the baseline in turn, several rounds.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import secrets
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import Env, Report, cleanup, median, p95
from bench.processes import ServiceProcesses
from services.deals import events as ev
from services.deals import main as deals_main
from services.deals.domain import DEFAULT_STAGES
from services.web.app import COOKIE, create_app
from services.web.pages import AUDIT, all_pages
from services.web.panels import CARDS_SHOWN, Filters, Page
from shared.core.money import Money
from shared.edge.auth import Principal, issue_token
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact
from shared.store import NewEvent
from testkit.services import TEST_KEYS

SIGNIN = "http://signin.bench"
AUDITOR = ("u-audit", ("auditor",), None)
OPEN = [s for s in DEFAULT_STAGES if s.kind.value == "open"]
PAGES = ("sales", "marketing", "production", "alerts", "audit")


def snapshot(i: int) -> ev.StageSnapshot:
    s = OPEN[i % len(OPEN)]
    return ev.StageSnapshot(stage_id=s.stage_id, name=s.name, order=s.order, probability=s.probability, kind=s.kind)


def opened(i: int, deal: uuid.UUID, people: int, now: datetime) -> ev.DealOpened:
    owner = i % people
    return ev.DealOpened(
        deal_id=deal, pipeline_id="default", pipeline_version=1, stage=snapshot(i // people),
        title=f"Tủ đông {i}", customer=f"Công ty Khách {i % 997}", contact_id=None, contact=None,
        owner_id=f"u-{owner:02d}", team_id=f"team-{owner // 10}", value=Money.of(10_000_000 + 1_000 * (i % 5_000)),
        expected_close_date=now.date() + timedelta(days=i % 90), opened_at=now - timedelta(hours=i % 900),
    )  # fmt: skip


async def load(service: Any, schemas: dict[str, str], url: str, deals: int, people: int) -> None:
    """The deals in the store, then the read models from every stored event (the pipeline's too)."""
    store, now = service.storage.store, datetime.now(UTC)
    for start in range(0, deals, 50):
        batch = [(i, uuid.uuid4()) for i in range(start, min(deals, start + 50))]
        await asyncio.gather(
            *(store.append(f"deal-{d}", [NewEvent(opened(i, d, people, now))], expected_version=0) for i, d in batch)
        )
    recorded = await store.read_streams("")
    runners = {r.projection.name: r for r in service.runners()}
    conn = await asyncpg.connect(url)
    try:
        for name, schema in schemas.items():
            await conn.execute(f"SET search_path = {schema}")
            for start in range(0, len(recorded), 1000):
                facts = []
                for r in recorded[start : start + 1000]:
                    envelope = CloudEvent.from_recorded(r, "deals")
                    facts.append(Fact(envelope, envelope.to_event()))
                async with conn.transaction():
                    await runners[name].projection.apply(conn, facts)
            await conn.execute("ANALYZE")
    finally:
        await conn.close()


def fake_signin(request: httpx.Request) -> httpx.Response:
    """The sign-in service's grant of a session's API token (decision 0022), for the auditor."""
    user, roles, team = AUDITOR
    sid = hashlib.sha256(request.content).hexdigest()[:32]
    token = issue_token(TEST_KEYS, user_id=user, roles=roles, team=team, session_id=sid)
    body = {"token": token, "token_expires_at": time.time() + 3600, "csrf": "c" * 43,
            "user": {"user_id": user, "roles": list(roles), "team": team}}  # fmt: skip
    return httpx.Response(200, json=body)


class Routed(httpx.AsyncBaseTransport):
    """The sign-in service faked; the APIs over real HTTP."""

    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if str(request.url).startswith(SIGNIN):
            await request.aread()
            return fake_signin(request)
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


def page_path(page: str, deal: uuid.UUID) -> str:
    return f"/audit?deal={deal}" if page == "audit" else f"/{page}"


def api_queries(page: Page, deal: uuid.UUID, today: date) -> list[tuple[str, str, dict[str, str]]]:
    """The API queries the page makes (service, path, params), as the board makes them: each once."""
    user, roles, team = AUDITOR
    principal = Principal(user_id=user, roles=frozenset(roles), team=team)
    f = Filters.parse({"deal": str(deal)} if page.id == "audit" else {}, today)
    queries = [(s, "/alerts", {"limit": "500"}) for s in ("leads", "deals", "production")]  # the nav's badge
    for panel in page.panels:
        if panel.id == "timeline":  # the audit's timeline: the deal, its order, its history
            queries += [("deals", f"/deals/{deal}", {}), ("production", f"/orders/for-deal/{deal}", {})]
            queries += [("deals", f"/deals/{deal}/history", {"limit": "200"})]
            continue
        params = panel.params(f, principal)
        if params is not None:
            cards = {"cards": str(CARDS_SHOWN)} if panel.first_cards else {}  # as the board asks (apis.load)
            queries.append((panel.service, panel.path, params | cards))
    unique = {(s, path, tuple(sorted(q.items()))): (s, path, q) for s, path, q in queries}
    return list(unique.values())  # panels making the same query share one call (apis.OnePage)


async def measure(calls: int, rounds: int, board: httpx.AsyncClient, raw: Any, path: str) -> dict[str, Any]:
    ours: list[float] = []
    theirs: list[float] = []
    size = 0
    for _ in range(rounds):
        for _ in range(calls):
            started = time.perf_counter()
            r = await board.get(path)
            ours.append(time.perf_counter() - started)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            size = len(r.content)
            if os.environ.get("BENCH_BOARD_KEEP"):  # the page as answered, to see what makes it heavy
                (Path(os.environ["BENCH_BOARD_KEEP"]) / f"{path.split('?')[0].strip('/')}.html").write_bytes(r.content)
        for _ in range(calls):
            started = time.perf_counter()
            await raw()
            theirs.append(time.perf_counter() - started)
    return {"board": ours, "raw": theirs, "bytes": size}


async def run(env: Env) -> Report:
    deals, people = env.size(5_000, 200), env.size(50, 10)
    calls, rounds = env.size(20, 2), env.size(3, 1)
    settings = env.settings()
    service = await deals_main.build(settings)
    names = ("board", "analytics")
    runners = {r.projection.name: r for r in service.runners()}
    for name in names:
        await runners[name].setup()
    schemas = {name: runners[name].schema(1) for name in names}
    apis = {s: ServiceProcesses(settings, service=s, modes=("api",)) for s in ("deals", "leads", "production")}
    report = Report(
        "board",
        f"Board: each page with {deals:,} open deals of {people} salespeople, as an auditor (every deal); "
        f"{calls} requests one at a time, the board and the raw API queries in turn, {rounds} rounds",
        ["page", "HTML KB", "board p50 ms", "board p95 ms", "raw APIs p50 ms", "raw APIs p95 ms", "p50 ratio"],
    )
    try:
        busy = os.getloadavg()[0]
        started = time.perf_counter()
        await load(service, schemas, settings.database_url_for("deals"), deals, people)
        report.notes.append(f"loaded {deals:,} deals in {time.perf_counter() - started:.0f} s")
        await asyncio.gather(*(a.start() for a in apis.values()))
        urls = {f"{s}_api_url": a.api_url for s, a in apis.items()}
        web_settings = settings.model_copy(update=urls | {"signin_url": SIGNIN, "directory_api_url": SIGNIN})
        app = create_app(web_settings, transport=Routed(), live_feed=False)
        deal = uuid.UUID(int=random.getrandbits(128))
        async with app.router.lifespan_context(app):
            samples = await measure_pages(env, app, web_settings, deal, calls, rounds, report)
        report.notes.append(f"load average (1 min) at the start {busy:.1f}, at the end {os.getloadavg()[0]:.1f}")
        report.data = {"deals": deals, "people": people, "samples_ms": samples}
        return report
    finally:
        for a in apis.values():
            a.stop()
        await service.close()
        await cleanup(settings)


async def slowest_query(http: httpx.AsyncClient, settings: Any, token: str, queries: list[Any]) -> str:
    """Where a page's time goes: its slowest API query asked alone (median of 5), and its answer's size."""
    found = []
    for s, path, params in dict.fromkeys((s, p, tuple(sorted(q.items()))) for s, p, q in queries):
        times, size = [], 0
        for _ in range(5):
            started = time.perf_counter()
            r = await http.get(
                settings.api_url(s) + path, params=dict(params), headers={"Authorization": f"Bearer {token}"}
            )
            times.append(time.perf_counter() - started)
            size = len(r.content)
        found.append((median(times), f"{s} {path} {1000 * median(times):.0f} ms, {size / 1024:.0f} KB"))
    return max(found)[1] if found else "none"


async def measure_pages(
    env: Env, app: Any, settings: Any, deal: uuid.UUID, calls: int, rounds: int, report: Report
) -> dict[str, Any]:
    """Each page and its raw API queries; the rows, targets and samples of the report."""
    pages = all_pages(app.state.board.tz) | {"audit": AUDIT}
    token = fake_signin(httpx.Request("POST", SIGNIN, content=b"raw")).json()["token"]
    raw_http = httpx.AsyncClient(timeout=30)
    board = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://board", timeout=30)
    board.cookies.set(COOKIE, secrets.token_urlsafe(32))
    samples: dict[str, Any] = {}
    try:
        for name in PAGES:
            queries = api_queries(pages[name], deal, app.state.board.today())

            async def raw(queries: list[tuple[str, str, dict[str, str]]] = queries) -> None:
                await asyncio.gather(
                    *(
                        raw_http.get(
                            settings.api_url(s) + path, params=params, headers={"Authorization": f"Bearer {token}"}
                        )
                        for s, path, params in queries
                    )
                )

            path = page_path(name, deal)
            await measure(2, 1, board, raw, path)  # warm-up
            slowest = await slowest_query(raw_http, settings, token, queries)
            report.notes.append(f"{name}: its slowest API query alone, median of 5: {slowest}")
            m = await measure(calls, rounds, board, raw, path)
            ours, theirs = m["board"], m["raw"]
            report.rows.append(
                [name, m["bytes"] / 1024, *(1000 * f(ours) for f in (median, p95)),
                 *(1000 * f(theirs) for f in (median, p95)), median(ours) / median(theirs)]
            )  # fmt: skip
            report.at_most(f"{name}: p95 ms server time", 1000 * p95(ours), 150)
            report.at_most(f"{name}: HTML KB", m["bytes"] / 1024, 150)
            samples[name] = {"board": [1000 * x for x in ours], "raw": [1000 * x for x in theirs], "bytes": m["bytes"]}
    finally:
        await raw_http.aclose()
        await board.aclose()
    return samples
