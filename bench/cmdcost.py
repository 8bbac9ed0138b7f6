"""CPU per command on the write path, A/B: the deals API process and PostgreSQL, per ``log-activity`` command.

``python -m bench.cmdcost [--base DIR] [--rounds 3] [--commands 3000] [--concurrency 16] [--rate R] [--profile]``

One deals ``api`` process per code tree (this checkout, and ``--base``: e.g. the last commit extracted with
``git archive HEAD | tar -x -C /tmp/base``), each on isolated settings with a pool of open deals; no relay and no
projector (the command path alone). Each round loads one tree at a time, in alternating order: ``--commands``
``POST /deals/{id}/log-activity`` (bench/e2e.py's command) sent closed loop by ``--concurrency`` senders, then the
same number of ``GET /healthz`` (a fixed-cost reference: the framework and middleware alone). Per round, from /proc
(bench/cpu.py): the API process's CPU ms per command and per GET, PostgreSQL's (every process of the server) per
command; from PostgreSQL: statements per command (pg_stat_statements when the server loads it, else none) and
transactions per command (pg_stat_database). Medians over rounds; the load average beside them.

With two trees the last row is the median over rounds of each round's ratio (both measured back to back), the
figure to read on a shared machine. ``--profile``: one more round per tree with py-spy (250 Hz) on the API, its top
frames in bench/results/. Statements need ``shared_preload_libraries = 'pg_stat_statements'``, the extension made in
the database and ``pg_read_all_stats`` for its user. Run by hand, not by ``python -m bench``: it starts its own
processes (about 8 s even at the smallest size) and measures one change against another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from bench import cpu
from bench.common import RESULTS, Env, Report, cleanup, machine, median, paced, write
from bench.e2e import ACTIVITY, HEADERS, USER, summarize_stacks
from bench.httpclient import request
from bench.processes import HttpClient
from shared.ops.settings import Settings
from shared.ops.stack import ROOT, free_port, start_servers
from testkit.services import process_env, spawn


@dataclass
class Api:
    """One deals api process run from the code tree ``root``, with its open deals."""

    label: str
    root: Path
    settings: Settings
    proc: subprocess.Popen[bytes] | None = None
    client: HttpClient | None = None
    deals: list[str] = field(default_factory=list)
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="cmdcost-", suffix=".log")[1]))

    async def start(self, pool: int) -> None:
        port = free_port()
        env = process_env(
            self.settings,
            PIPELINES_LOG_LEVEL="WARNING",
            PIPELINES_DEALS_PORT=str(port),
            PIPELINES_OPS_PORT=str(port),
            PYTHONPATH=str(self.root),
        )
        self.proc = spawn(("-m", "services.deals", "api"), env, self.log, cwd=self.root)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} api exited; see {self.log}")
            try:
                if (await request("127.0.0.1", port, "GET", "/readyz"))[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.label} api not ready; see {self.log}")
            await asyncio.sleep(0.3)
        self.client = HttpClient(f"http://127.0.0.1:{port}", HEADERS)
        for i in range(pool):
            body = {"title": f"Tủ mát {i}", "customer": f"Cửa hàng {i}", "owner_id": USER, "team_id": "north"}
            status, answer = await self.client.post("/deals", body)
            if status != 201:
                raise RuntimeError(f"opening a deal answered {status}: {answer}")
            self.deals.append(answer["id"])

    async def command(self) -> None:
        assert self.client is not None
        status, body = await self.client.post(f"/deals/{random.choice(self.deals)}/log-activity", ACTIVITY)
        if status != 200:
            raise RuntimeError(f"{status}: {body}")

    async def healthz(self) -> None:
        assert self.client is not None
        status, body = await self.client.send("GET", "/healthz")
        if status != 200:
            raise RuntimeError(f"{status}: {body}")

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(self.proc.wait, 30)


async def closed_loop(n: int, concurrency: int, call: Any) -> float:
    """``n`` calls by ``concurrency`` senders, each sending its next when its last is answered; seconds taken."""
    left = iter(range(n))

    async def sender() -> None:
        for _ in left:
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return time.perf_counter() - started


class Statements:
    """Statements (pg_stat_statements, when loaded) and transactions (pg_stat_database) on the database."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.available = False
        self.before: tuple[int, int] = (0, 0)

    async def setup(self) -> None:
        try:
            await self.conn.fetchval("SELECT count(*) FROM pg_stat_statements")
            self.available = True
        except asyncpg.PostgresError:
            self.available = False

    async def read(self) -> tuple[int, int]:
        await self.conn.execute("SELECT pg_stat_clear_snapshot()")
        xacts = await self.conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
        calls = 0
        if self.available:  # every statement of this database but this reader's own
            calls = await self.conn.fetchval(
                """SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
                   WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                     AND query NOT LIKE '%pg_stat_%'"""
            )
        return int(calls), int(xacts)

    async def start(self) -> None:
        self.before = await self.read()

    async def per(self, n: int) -> tuple[float, float]:
        await asyncio.sleep(0.6)  # pg_stat_database is reported by backends at most every 500 ms
        calls, xacts = await self.read()
        return (calls - self.before[0]) / n, (xacts - self.before[1]) / n


@dataclass
class Round:
    label: str
    per_s: float
    api_ms: float
    pg_ms: float
    get_api_ms: float
    statements: float
    transactions: float
    load: float


async def measure(api: Api, n: int, concurrency: int, pg: int, stats: Statements) -> Round:
    assert api.proc is not None
    meter = cpu.Meter({"api": api.proc.pid, "postgresql": pg})
    await asyncio.to_thread(os.sync)
    await asyncio.sleep(0.3)
    await stats.start()
    meter.start()
    seconds = await closed_loop(n, concurrency, api.command)
    spent = meter.spent()
    statements, transactions = await stats.per(n)
    meter.start()
    await closed_loop(n, concurrency, api.healthz)
    get = meter.spent()
    return Round(
        api.label,
        round(n / seconds, 1),
        round(spent["api"] * 1000 / n, 3),
        round(spent["postgresql"] * 1000 / n, 3),
        round(get["api"] * 1000 / n, 3),
        round(statements, 2),
        round(transactions, 2),
        os.getloadavg()[0],
    )


async def profile(api: Api, n: int, concurrency: int, out: Path) -> None:
    """py-spy (250 Hz) on the api while it takes ``n`` commands; its top frames written to ``out``."""
    assert api.proc is not None
    raw = Path(tempfile.mkdtemp()) / "api.txt"
    spy = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(api.proc.pid), "-r", "250",
         "--nonblocking", "-f", "raw", "-o", str(raw)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(1.0)
    await closed_loop(n, concurrency, api.command)
    spy.send_signal(signal.SIGINT)
    await asyncio.to_thread(spy.wait)
    out.mkdir(parents=True, exist_ok=True)
    if raw.exists():
        (out / f"cmdcost-profile-{api.label}.txt").write_text(
            f"py-spy record (250 Hz) of the deals api ({api.label}: {api.root}) taking {n} log-activity commands, "
            f"{concurrency} in flight\n" + summarize_stacks(raw.read_text(), top=60)
        )


def _ratio(measured: list[Round], rows: list[list[Any]]) -> list[list[Any]]:
    """For two trees: the median over rounds of each round's ratio (the two measured back to back, or at once)."""
    if len(rows) != 2:
        return []
    a, b = rows[0][0], rows[1][0]
    pairs = list(zip((r for r in measured if r.label == a), (r for r in measured if r.label == b), strict=True))
    fields = ("per_s", "api_ms", "pg_ms", "get_api_ms", "statements", "transactions")
    ratios = [median([getattr(x, f) / getattr(y, f) for x, y in pairs if getattr(y, f)]) for f in fields]
    return [[f"{a} / {b}, median of rounds"] + [round(v, 3) for v in ratios] + [len(pairs)]]


def _pg_ports(pid: int, pg_port: int) -> list[int]:
    """The local ports of ``pid``'s TCP connections to PostgreSQL (on ``pg_port``), from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            if (link := os.readlink(fd)).startswith("socket:["):
                inodes.add(link[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[9] in inodes and int(cols[2].rpartition(":")[2], 16) == pg_port:
                ports.append(int(cols[1].rpartition(":")[2], 16))
    return ports


async def together(apis: list[Api], rate: int, seconds: float, conn: asyncpg.Connection, pg_port: int) -> list[Round]:
    """Every tree offered ``rate`` commands/s at once, open loop, for ``seconds``: both run under the same load.
    PostgreSQL's share of each is the CPU of the backends serving its api process (found by their client ports);
    the server's own processes (WAL writer, checkpointer) are counted in neither."""
    pids: dict[str, list[int]] = {}
    for api in apis:
        assert api.proc is not None
        ports = _pg_ports(api.proc.pid, pg_port)
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])", ports)
        pids[api.label] = [r["pid"] for r in rows]

    def read() -> dict[str, tuple[float, float]]:
        return {
            a.label: (cpu.own_seconds(a.proc.pid), sum(cpu.own_seconds(p) for p in pids[a.label]))
            for a in apis
            if a.proc is not None
        }

    refused = dict.fromkeys(pids, 0)

    async def command(api: Api) -> None:
        try:
            await api.command()
        except RuntimeError:  # 503 busy after a stall of this process: not counted as answered
            refused[api.label] += 1

    before = read()
    await asyncio.gather(*(paced(rate, seconds, lambda _, a=a: command(a)) for a in apis))
    after = read()
    sent = int(rate * seconds)
    if any(refused.values()):
        print(f"  refused (busy): {refused}", flush=True)
    return [
        Round(
            a.label,
            rate,
            round((after[a.label][0] - before[a.label][0]) * 1000 / (sent - refused[a.label]), 3),
            round((after[a.label][1] - before[a.label][1]) * 1000 / (sent - refused[a.label]), 3),
            0.0,
            0.0,
            0.0,
            os.getloadavg()[0],
        )
        for a in apis
    ]


def _rows(rounds: list[Round]) -> list[list[Any]]:
    rows = []
    for label in dict.fromkeys(r.label for r in rounds):
        mine = [r for r in rounds if r.label == label]
        rows.append(
            [label]
            + [median([getattr(r, f) for r in mine]) for f in ("per_s", "api_ms", "pg_ms", "get_api_ms")]
            + [median([r.statements for r in mine]), median([r.transactions for r in mine]), len(mine)]
        )
    return rows


async def run(
    env: Env,
    trees: dict[str, Path] | None = None,
    rounds: int | None = None,
    n: int | None = None,
    concurrency: int = 16,
    pool: int | None = None,
    spy: bool = False,
    rate: int = 0,
) -> Report:
    """The A/B of ``trees`` (default: this checkout alone); ``python -m bench``'s signature, sizes by ``env``.
    ``rate``: as many rounds again with every tree offered ``rate`` commands/s at once (``together``)."""
    trees = trees or {"this": ROOT}
    rounds = rounds or env.size(3, 1)
    n = n or env.size(3000, 40)
    pool = pool or env.size(1000, 10)
    report = Report(
        name="cmdcost",
        title="CPU per command on the write path: deals api + PostgreSQL, log-activity, closed loop",
        columns=["code", "commands/s", "api ms/cmd", "pg ms/cmd", "api ms/GET", "stmts/cmd", "xacts/cmd", "rounds"],
    )
    apis = [Api(label, root, env.settings()) for label, root in trees.items()]
    conn = await asyncpg.connect(env.endpoints.database_url)
    measured: list[Round] = []
    try:
        stats = Statements(conn)
        await stats.setup()
        pg = await cpu.postmaster(env.endpoints.database_url)
        assert pg is not None, "PostgreSQL must run on this machine"
        for api in apis:
            await api.start(pool)
            await closed_loop(min(n, 500), concurrency, api.command)  # warm up
        for r in range(rounds):
            for api in apis if r % 2 == 0 else reversed(apis):
                done = await measure(api, n, concurrency, pg, stats)
                measured.append(done)
                print(f"  round {r + 1} {done}", flush=True)
        for r in range(rounds if rate else 0):
            for done in await together(apis, rate, n / rate, conn, urlsplit(env.endpoints.database_url).port or 5432):
                done.label = f"{done.label}, together at {rate}/s"
                measured.append(done)
                print(f"  round {r + 1} {done}", flush=True)
        if spy:
            for api in apis:
                await profile(api, n, concurrency, env.out)
    finally:
        await conn.close()
        for api in apis:
            await api.stop()
            await cleanup(api.settings)
    rows = _rows(measured)
    report.rows = rows[:2] + _ratio(measured, rows[:2]) + rows[2:] + _ratio(measured, rows[2:])
    report.notes += [
        f"{rounds} rounds, each tree in alternating order; a round: {n:,} commands by {concurrency} senders on a pool "
        f"of {pool} open deals, then {n:,} GET /healthz (the fixed-cost reference). No relay, no projector.",
        "CPU from /proc (user + system) of the api process and of every PostgreSQL process; statements from "
        "pg_stat_statements (track = all counts a trigger's statements too) "
        + ("(loaded)" if stats.available else "(not loaded on this server: 0)")
        + "; transactions from pg_stat_database.",
        f"together at {rate}/s: every tree offered {rate} commands/s open loop at once, {n / max(rate, 1):g} s a round; "
        "PostgreSQL there is the backends serving each api process alone (the server's own processes in neither); "
        "commands answered 503 busy (a stall of the shared machine) are left out of the count."
        if rate
        else "no round together (--rate)",
        f"load average (1 min) during the rounds: {min(r.load for r in measured):.1f}-{max(r.load for r in measured):.1f}"
        if measured
        else "no round measured",
    ]
    report.data = {"rounds": [vars(r) for r in measured], "trees": {k: str(v) for k, v in trees.items()}}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cmdcost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, help="another code tree to compare with this checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--commands", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--rate", type=int, default=0, help="also offer every tree this many commands/s at once")
    args = parser.parse_args()
    trees = {"this": ROOT} | ({"base": args.base.resolve()} if args.base else {})
    servers = start_servers()
    try:
        env = Env(servers.endpoints, out=RESULTS)
        report = asyncio.run(
            run(env, trees, args.rounds, args.commands, args.concurrency, args.pool, args.profile, args.rate)
        )
        print(report.table())
        write(RESULTS, report, asyncio.run(machine(servers.endpoints)) | {"load_average": os.getloadavg()})
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
