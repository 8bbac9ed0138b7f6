"""PostgreSQL's CPU per command on the e2e path, by process kind and by statement, A/B between code trees.

``python -m bench.pgcost --admin-url URL [--base DIR] [--rates 200,600] [--seconds 10] [--rounds 2] [--pool 1000]``

Per code tree (this checkout, and ``--base``: e.g. ``git archive HEAD | tar -x -C /tmp/base``) one deals deployment
as bench/e2e.py runs it (api, relay, projector processes, a pool of open deals, the same watcher), each process
kind connecting as its own PostgreSQL role (``--admin-url``: a superuser's URL; the roles are made as superusers,
so nothing else changes), so that PostgreSQL's statistics tell the kinds apart. Rounds alternate the trees; each
offers ``rate`` log-activity commands/s open loop (bench/e2e.py's ``offer``) and waits until the board shows them.

Per round, ÷ commands answered: CPU ms of each process (its tree, /proc), of the PostgreSQL backends serving each
kind (/proc of the backends found by role), of the rest of the server (WAL writer, checkpointer, autovacuum,
backends that ended: the server's process tree minus every client backend), of Kafka and of this process;
statements (pg_stat_statements: calls and execution time per statement and kind, BEGIN/COMMIT included),
transactions (pg_stat_database; the watcher's polls among them) and WAL bytes (pg_current_wal_lsn). Statement time
is execution (and planning with ``pg_stat_statements.track_planning = on``): parsing, commits (the WAL flush) and the
protocol are in the backend's CPU beside it. Needs ``shared_preload_libraries = 'pg_stat_statements'`` and the
extension made in the database. Run by hand (a few minutes); results in bench/results/pgcost.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench import cpu
from bench.common import RESULTS, Env, Report, cleanup, machine, median, percentile, write
from bench.e2e import ACTIVITY, HEADERS, USER
from bench.httpclient import HttpClient
from bench.openloop import Run, Watcher, offer
from shared.messaging.projections import generation_schema
from shared.ops.settings import Settings
from shared.ops.stack import ROOT, free_ports, start_servers
from testkit.services import process_env, spawn, wait_ready

KINDS = ("api", "relay", "projector")


def role_url(url: str, role: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}:{role}@{parts.hostname}:{parts.port}"))


@dataclass
class Deployment:
    """One tree's deals processes, each kind as role ``pgc_<label>_<kind>``, and its pool of open deals."""

    label: str
    root: Path
    settings: Settings
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    client: HttpClient | None = None
    deals: list[str] = field(default_factory=list)
    watcher: Watcher | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgcost-")))

    def role(self, kind: str) -> str:
        return f"pgc_{self.label}_{kind}"

    async def start(self, admin: asyncpg.Connection, admin_url: str, pool: int) -> None:
        for kind in KINDS:
            await admin.execute(f"DROP ROLE IF EXISTS {self.role(kind)}")
            await admin.execute(f"CREATE ROLE {self.role(kind)} LOGIN SUPERUSER PASSWORD '{self.role(kind)}'")
        ports = dict(zip(KINDS, free_ports(len(KINDS)), strict=True))
        for kind in KINDS:
            env = process_env(
                self.settings,
                DEALS_DATABASE_URL=role_url(str(self.settings.database_url), self.role(kind)),
                PIPELINES_ALERT_SCAN_SECONDS="30",
                PIPELINES_LOG_LEVEL="WARNING",
                PIPELINES_DEALS_PORT=str(ports[kind]),
                PIPELINES_OPS_PORT=str(ports[kind]),
                PYTHONPATH=str(self.root),
            )
            log = self.logs / f"{self.label}-{kind}.log"
            self.procs[kind] = spawn(["-m", "services.deals", kind], env, log, cwd=self.root)
            # one at a time: the first makes the schema
            await wait_ready({kind: f"http://127.0.0.1:{ports[kind]}"}, [self.procs[kind]])
        self.client = HttpClient(f"http://127.0.0.1:{ports['api']}", HEADERS)
        conn = await asyncpg.connect(admin_url)  # the watcher: the roles own the read models
        ns = self.settings.schema_name("deals")
        generation = await conn.fetchval(
            f"SELECT generation FROM {ns}.projection_generations WHERE projection = 'board' AND state = 'active'"
        )
        self.watcher = Watcher(conn, f"{generation_schema(ns, 'board', generation)}.projection_progress")
        self.task = asyncio.create_task(self.watcher.run(self.stop))
        await self._open(pool)

    async def _open(self, n: int) -> None:
        assert self.client is not None
        assert self.watcher is not None
        client, watcher, ids = self.client, self.watcher, iter(range(n))

        async def opener() -> None:
            for i in ids:
                body = {"title": f"Tủ mát {i}", "customer": f"Cửa hàng {i}", "owner_id": USER, "team_id": "north"}
                status, answer = await client.post("/deals", body)
                if status != 201:
                    raise RuntimeError(f"opening a deal answered {status}: {answer}")
                self.deals.append(answer["id"])
                watcher.expect(answer["stream_id"], answer["version"], time.perf_counter())

        await asyncio.gather(*(opener() for _ in range(16)))
        if unseen := await watcher.drain(within=60):
            raise RuntimeError(f"{unseen} opened deals never reached the board")

    async def send(self, acked: Any) -> None:
        assert self.client is not None
        status, body = await self.client.post(f"/deals/{random.choice(self.deals)}/log-activity", ACTIVITY)
        if status != 200:
            raise RuntimeError(f"{status}: {body}")
        acked(body["stream_id"], body["version"])

    async def close(self, admin: asyncpg.Connection, admin_url: str) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task
        if self.watcher is not None:
            await self.watcher.conn.close()
        if self.client is not None:
            await self.client.close()
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            await asyncio.to_thread(p.wait, 30)
        await cleanup(self.settings.model_copy(update={"database_url": admin_url}))  # the roles own the schemas
        for kind in KINDS:
            await admin.execute(f"DROP OWNED BY {self.role(kind)}")
            await admin.execute(f"DROP ROLE IF EXISTS {self.role(kind)}")


@dataclass
class Reading:
    cpu: dict[str, float]  # seconds per kind
    backends: dict[int, tuple[str, float]]  # client backend pid -> (role, own CPU seconds)
    xacts: int
    lsn: int
    statements: dict[tuple[str, int], tuple[str, list[float]]]  # (role, queryid) -> query, [calls, exec, plan, wal]


async def read(admin: asyncpg.Connection, d: Deployment, roots: dict[str, int]) -> Reading:
    """Every counter at once (the statistics as the backends last reported them)."""
    await admin.execute("SELECT pg_stat_clear_snapshot()")
    children = cpu._children()
    seconds = {k: cpu.own_seconds(p) if k == cpu.LOAD else cpu.tree_seconds(p, children) for k, p in roots.items()}
    rows = await admin.fetch("SELECT pid, usename FROM pg_stat_activity WHERE backend_type = 'client backend'")
    backends = {r["pid"]: (r["usename"] or "", cpu.own_seconds(r["pid"])) for r in rows}
    xacts = await admin.fetchval(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
    )
    lsn = await admin.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
    mine = [d.role(k) for k in KINDS]
    statements = {
        (r["rolname"], r["queryid"]): (
            r["query"],
            [r["calls"], r["total_exec_time"], r["total_plan_time"], r["wal_bytes"]],
        )
        for r in await admin.fetch(
            """SELECT a.rolname, s.queryid, s.query, s.calls, s.total_exec_time, s.total_plan_time, s.wal_bytes::float8
               FROM pg_stat_statements s JOIN pg_roles a ON a.oid = s.userid WHERE a.rolname = ANY($1::text[])""",
            mine,
        )
    }
    return Reading(seconds, backends, int(xacts), int(lsn), statements)


@dataclass
class Measured:
    label: str
    rate: int
    commands: int
    cpu: dict[str, float]  # ms per command, per kind
    xacts: float
    wal_bytes: float
    statements: dict[tuple[str, str], list[float]]  # (kind, query) -> calls, exec ms, plan ms, WAL bytes per cmd
    run: Run
    load: float


def difference(d: Deployment, before: Reading, after: Reading, run: Run) -> Measured:
    n = max(len(run.ack), 1)
    spent = {k: after.cpu[k] - before.cpu.get(k, after.cpu[k]) for k in after.cpu}
    spent_backends = {
        pid: (role, s - before.backends.get(pid, (role, 0.0))[1]) for pid, (role, s) in after.backends.items()
    }
    every_backend = sum(s for _, s in spent_backends.values())
    watcher_pid = d.watcher.conn.get_server_pid() if d.watcher else 0
    out = {k: v for k, v in spent.items() if k != "postgresql"}
    for kind in KINDS:
        out[f"pg {kind}"] = sum(s for role, s in spent_backends.values() if role == d.role(kind))
    out["pg watcher"] = spent_backends.get(watcher_pid, ("", 0.0))[1]
    out["pg server"] = spent["postgresql"] - every_backend
    statements: dict[tuple[str, str], list[float]] = {}
    for key, (query, now) in after.statements.items():
        was = before.statements.get(key, (query, [0.0] * 4))[1]
        name = (key[0].rpartition("_")[2], " ".join(query.split())[:110])
        sums = statements.setdefault(name, [0.0] * 4)
        for i, (a, b) in enumerate(zip(now, was, strict=True)):
            sums[i] += (a - b) / n
    return Measured(
        d.label,
        run.rate,
        len(run.ack),
        {k: round(v * 1000 / n, 4) for k, v in out.items()},
        (after.xacts - before.xacts) / n,
        (after.lsn - before.lsn) / n,
        statements,
        run,
        os.getloadavg()[0],
    )


async def one_round(admin: asyncpg.Connection, d: Deployment, rate: int, seconds: float, pg: int) -> Measured:
    assert d.watcher is not None
    roots = {kind: p.pid for kind, p in d.procs.items()} | {"postgresql": pg, cpu.LOAD: os.getpid()}
    port = str(d.settings.kafka_bootstrap_servers).split(",")[0].rpartition(":")[2]
    if (kafka := cpu.listener(int(port))) is not None:
        roots["kafka"] = kafka
    await asyncio.to_thread(os.sync)
    await asyncio.sleep(0.5)
    before = await read(admin, d, roots)
    run = await offer(d.label, rate, seconds, d.send, d.watcher)
    await asyncio.sleep(0.6)  # the backends report their statistics at most every 500 ms
    after = await read(admin, d, roots)
    return difference(d, before, after, run)


def summary(rounds: list[Measured], labels: list[str], rates: list[int]) -> list[list[Any]]:
    """One row per tree and rate: medians over rounds of CPU ms per command per kind, xacts and WAL per command."""
    kinds = list(dict.fromkeys(k for m in rounds for k in m.cpu))
    rows = []
    for rate in rates:
        for label in labels:
            mine = [m for m in rounds if m.label == label and m.rate == rate]
            if not mine:
                continue
            cells = [round(median([m.cpu.get(k, 0.0) for m in mine]), 3) for k in kinds]
            total = round(median([sum(m.cpu.values()) for m in mine]), 3)
            pg = round(median([sum(v for k, v in m.cpu.items() if k.startswith("pg ")) for m in mine]), 3)
            xacts, wal = round(median([m.xacts for m in mine]), 2), round(median([m.wal_bytes for m in mine]))
            p50 = round(median([percentile(m.run.e2e, 50) * 1000 for m in mine]), 1)
            p99 = round(median([percentile(m.run.e2e, 99) * 1000 for m in mine]), 1)
            achieved = round(median([m.run.achieved for m in mine]), 1)
            rows.append([label, rate, achieved, *cells, pg, total, xacts, wal, p50, p99, len(mine)])
    return rows


def statements_table(rounds: list[Measured], label: str, rate: int, top: int = 25) -> list[str]:
    """The statements of one tree at one rate, by execution time per command (medians over rounds)."""
    mine = [m for m in rounds if m.label == label and m.rate == rate]
    keys = {k for m in mine for k in m.statements}
    med = {k: [median([m.statements.get(k, [0.0] * 4)[i] for m in mine]) for i in range(4)] for k in keys}
    ordered = sorted(med.items(), key=lambda kv: -(kv[1][1] + kv[1][2]))
    lines = [f"{label} at {rate}/s: statements per command (calls, exec ms, plan ms, WAL bytes), by exec + plan"]
    sums = [sum(v[i] for v in med.values()) for i in range(4)]
    lines.append(f"  all       {sums[0]:7.3f} {sums[1]:8.4f} {sums[2]:8.4f} {sums[3]:8.0f}")
    for kind in KINDS:
        part = [sum(v[i] for (k, _), v in med.items() if k == kind) for i in range(4)]
        lines.append(f"  {kind:9} {part[0]:7.3f} {part[1]:8.4f} {part[2]:8.4f} {part[3]:8.0f}  (all of its statements)")
    for (kind, query), (calls, ms, plan, wal) in ordered[:top]:
        lines.append(f"  {kind:9} {calls:7.3f} {ms:8.4f} {plan:8.4f} {wal:8.0f}  {query}")
    return lines


async def run(env: Env, admin_url: str, trees: dict[str, Path], rates: list[int], seconds: float, rounds: int,
              pool: int) -> tuple[Report, list[str]]:  # fmt: skip
    admin = await asyncpg.connect(admin_url)
    pg = await cpu.postmaster(env.endpoints.database_url)
    assert pg is not None, "PostgreSQL must run on this machine"
    deployments = [Deployment(label, root, env.settings()) for label, root in trees.items()]
    measured: list[Measured] = []
    try:
        for d in deployments:
            await d.start(admin, admin_url, pool)
        for rate in rates:
            for d in deployments:  # warm up, unmeasured
                await offer(d.label, rate, min(seconds, 3.0), d.send, d.watcher)
            for r in range(rounds):
                for d in deployments if r % 2 == 0 else reversed(deployments):
                    m = await one_round(admin, d, rate, seconds, pg)
                    measured.append(m)
                    print(
                        f"  {d.label} {rate}/s round {r + 1}: {m.run.achieved:.0f}/s, e2e p99 "
                        f"{percentile(m.run.e2e, 99) * 1000:.0f} ms, errors {m.run.errors}, load {m.load:.1f}: "
                        + ", ".join(f"{k} {v:.3f}" for k, v in m.cpu.items()),
                        flush=True,
                    )
    finally:
        for d in deployments:
            await d.close(admin, admin_url)
        await admin.close()
    labels = [d.label for d in deployments]
    kinds = list(dict.fromkeys(k for m in measured for k in m.cpu))
    report = Report(
        name="pgcost",
        title="PostgreSQL CPU per command on the e2e path (deals api, relay, projector), by process kind",
        columns=["tree", "offered/s", "achieved/s", *kinds, "pg total", "total", "xacts/cmd", "WAL B/cmd",
                 "e2e p50 ms", "e2e p99 ms", "rounds"],
    )  # fmt: skip
    report.rows = summary(measured, labels, rates)
    report.notes += [
        f"{rounds} rounds of {seconds:g} s per tree and rate, trees alternating; a pool of {pool} open deals; "
        "CPU ms per command answered (medians over rounds); 'pg <kind>': the backends of that process kind; "
        "'pg server': the rest of PostgreSQL (WAL writer, checkpointer, autovacuum, ended backends); "
        "'pg watcher': the benchmark's poll of the board's progress rows (measuring, not the project's work).",
        f"load average (1 min) during the rounds: {min(m.load for m in measured):.1f}-"
        f"{max(m.load for m in measured):.1f}"
        if measured
        else "no round measured",
    ]
    lines = [line for rate in rates for label in labels for line in statements_table(measured, label, rate)]
    rounds_data = [
        {"tree": m.label, "rate": m.rate, "commands": m.commands, "cpu_ms": m.cpu, "xacts": m.xacts}
        | {"wal_bytes": m.wal_bytes, "load": m.load, "achieved_per_s": round(m.run.achieved, 1)}
        for m in measured
    ]
    report.data = {"trees": {k: str(v) for k, v in trees.items()}, "rounds": rounds_data, "statements": lines}
    return report, lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pgcost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", required=True, help="a superuser's URL of the same PostgreSQL")
    parser.add_argument("--base", type=Path, help="another code tree to compare with this checkout")
    parser.add_argument("--this", type=Path, default=ROOT, help="the code tree measured as 'this' (the checkout)")
    parser.add_argument("--rates", default="200,600")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pool", type=int, default=1000)
    args = parser.parse_args()
    trees = {"this": args.this.resolve()} | ({"base": args.base.resolve()} if args.base else {})
    rates = [int(r) for r in args.rates.split(",")]
    servers = start_servers()
    try:
        env = Env(servers.endpoints, out=RESULTS)
        report, lines = asyncio.run(run(env, args.admin_url, trees, rates, args.seconds, args.rounds, args.pool))
        print(report.table())
        print("\n".join(lines))
        write(RESULTS, report, asyncio.run(machine(servers.endpoints)) | {"load_average": os.getloadavg()})
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
