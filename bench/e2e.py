"""End to end: HTTP command → read model updated, at fixed offered rates, through the real api, relay and
projector processes of the deals service.

The command is ``POST /deals/{id}/log-activity`` (a salesperson logging a call) on a random deal of a pool of
open deals they own: the most frequent write of a sales team, valid on any open deal at any time, and one that
changes the sales board's row of the deal. Offered open loop: command *i* is sent at ``t0 + i / rate`` whether
or not earlier ones were answered, and every latency is measured from that scheduled time, so a stall counts
against every command it delayed (no coordinated omission).

Per command: the HTTP answer (ack), and the moment the board's active generation has applied the answered
version of the deal (its ``projection_progress`` row, written in the same transaction as the board row). One
watcher connection polls the progress rows of every pending deal in one query every 5 ms (bench/openloop.py).

Baseline, at the same rate with the same watcher: the same hops by hand, raw PostgreSQL and Kafka clients
(bench/e2e_baseline.py). That is the floor of PostgreSQL + Kafka on this machine.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench import cpu
from bench.common import Env, Report, cleanup, median, percentile
from bench.e2e_baseline import Baseline
from bench.openloop import GIVE_UP_S, WATCH_EVERY_S, Acked, Run, Send, Watcher, offer
from bench.processes import HttpClient, ServiceProcesses
from shared.edge.service import settle_heap
from shared.messaging.projections import generation_schema
from shared.ops.settings import Settings
from testkit.services import bearer

USER = "u-bench"
HEADERS = bearer(USER, "sales", team="north")
ACTIVITY = {"activity_type": "call", "channel": "phone", "outcome": "asked for a quote", "duration_minutes": 5}


# ---------------------------------------------------------------------------------------------- the project
@dataclass
class Deals:
    """The deals service as api, relay and projector processes, with a pool of open deals of one salesperson."""

    settings: Settings
    processes: ServiceProcesses
    client: HttpClient
    deals: list[str]
    watcher: Watcher
    conn: asyncpg.Connection
    stop: asyncio.Event
    task: asyncio.Task[None]

    @classmethod
    async def start(
        cls,
        settings: Settings,
        pool_size: int,
        modes: tuple[str, ...] = ("api", "relay", "projector"),
        extra_env: dict[str, str] | None = None,
    ) -> Deals:
        processes = ServiceProcesses(settings, "deals", modes, extra_env=dict(extra_env or {}))
        await processes.start()
        client = HttpClient(processes.api_url, HEADERS)
        conn = await asyncpg.connect(str(settings.database_url))
        ns = settings.schema_name("deals")
        generation = await conn.fetchval(
            f"SELECT generation FROM {ns}.projection_generations WHERE projection = 'board' AND state = 'active'"
        )
        watcher = Watcher(conn, f"{generation_schema(ns, 'board', generation)}.projection_progress")
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        self = cls(settings, processes, client, [], watcher, conn, stop, task)
        await self.open_deals(pool_size)
        return self

    async def open_deals(self, n: int) -> None:
        """Open ``n`` deals (16 at a time) and wait until the board shows them all."""
        ids = iter(range(n))

        async def opener() -> None:
            for i in ids:
                status, body = await self.client.post(
                    "/deals",
                    {"title": f"Tủ mát {i}", "customer": f"Cửa hàng {i}", "owner_id": USER, "team_id": "north"},
                )
                if status != 201:
                    raise RuntimeError(f"opening a deal answered {status}: {body}")
                self.deals.append(body["id"])
                self.watcher.expect(body["stream_id"], body["version"], time.perf_counter())

        await asyncio.gather(*(opener() for _ in range(16)))
        if unseen := await self.watcher.drain(within=60):
            raise RuntimeError(f"{unseen} opened deals never reached the board")

    async def send(self, acked: Acked) -> None:
        deal = random.choice(self.deals)
        status, body = await self.client.post(f"/deals/{deal}/log-activity", ACTIVITY)
        if status != 200:
            raise RuntimeError(f"{status}: {body}")
        acked(body["stream_id"], body["version"])

    async def close(self) -> None:
        self.stop.set()
        await self.task
        await self.client.close()
        await self.conn.close()
        self.processes.stop()


# ---------------------------------------------------------------------------------------------- the benchmark
async def profile(project: Deals, rate: int, seconds: float, out: Path) -> None:
    """Offer one more (unmeasured) run while py-spy samples each process; write the top frames per process."""
    spy = Path(sys.executable).parent / "py-spy"
    raw = {mode: Path(tempfile.mkdtemp()) / f"{mode}.txt" for mode in project.processes.pids()}
    spies = [
        subprocess.Popen(
            [str(spy), "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100", "--nonblocking", "-f", "raw",
             "-o", str(raw[mode])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for mode, pid in project.processes.pids().items()
    ]  # fmt: skip
    await offer("project", rate, seconds, project.send, project.watcher)
    for s in spies:
        await asyncio.to_thread(s.wait)
    out.mkdir(parents=True, exist_ok=True)
    for mode, path in raw.items():
        if path.exists():
            (out / f"e2e-profile-{mode}.txt").write_text(
                f"py-spy record (100 Hz, wall time of busy threads) of deals {mode} at {rate} commands/s\n"
                + summarize_stacks(path.read_text())
            )


def summarize_stacks(raw: str, top: int = 45) -> str:
    """py-spy's collapsed stacks as the frames where samples were taken (self) and those under them (total)."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")
        total += int(n)
        own[frames[-1]] += int(n)
        for f in set(frames):
            under[f] += int(n)
    lines = [f"{total} samples", "", "self:"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "total (self and callees):"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in under.most_common(top * 2)]
    return "\n".join(lines) + "\n"


def _row(path: str, rate: int, runs: list[Run]) -> list[Any]:
    def ms(xs: list[float]) -> float:
        return round(median(xs) * 1000, 1)

    return [
        path,
        rate,
        round(median([r.achieved for r in runs]), 1),
        ms([percentile(r.ack, 50) for r in runs]),
        ms([percentile(r.ack, 99) for r in runs]),
        round(max(max(r.ack, default=0) for r in runs) * 1000, 1),
        ms([percentile(r.e2e, 50) for r in runs]),
        ms([percentile(r.e2e, 99) for r in runs]),
        round(max(max(r.e2e, default=0) for r in runs) * 1000, 1),
        sum(r.errors + r.timed_out + r.unseen for r in runs),
    ]


async def run(env: Env) -> Report:
    settings = env.settings()
    rates = [env.size(200, 20), env.size(1000, 50)]
    seconds = env.size(10, 1)
    rounds = env.size(5, 1)
    pool_size = env.size(1000, 40)
    report = Report(
        name="e2e",
        title="End to end: HTTP command → read model updated (log-activity on a random open deal), open loop",
        columns=[
            "path",
            "offered/s",
            "achieved/s",
            "ack p50 ms",
            "ack p99 ms",
            "ack max ms",
            "e2e p50 ms",
            "e2e p99 ms",
            "e2e max ms",
            "errors",
        ],
    )
    project = baseline = None
    runs: list[Run] = []
    tally: cpu.Tally | None = None
    threshold = gc.get_threshold()
    try:
        project = await Deals.start(settings, pool_size)
        baseline = await Baseline.start(settings, pool_size, ACTIVITY)
        dsn, watcher = str(settings.database_url), project.conn.get_server_pid()
        tally = cpu.Tally(await cpu.kinds(project.processes.pids(), dsn, settings.kafka_bootstrap_servers, watcher))
        await tally.measure_idle(env.size(2.0, 0.5))
        # the load generator's own full collections (its pool, watchers and latencies: ~200k objects) paused
        # sends and watchers for up to 400 ms, whichever path was running: settled like a service's heap
        settle_heap()
        paths: dict[str, tuple[Send, Watcher]] = {
            "project": (project.send, project.watcher),
            "baseline": (baseline.send, baseline.watcher),
        }
        for rate in rates:
            for name, (send, watcher) in paths.items():  # warm up, unmeasured
                await offer(name, rate, min(2.0, seconds), send, watcher)
            for r in range(rounds):
                order = list(paths) if r % 2 == 0 else list(reversed(paths))
                for name in order:
                    send, watcher = paths[name]
                    # what earlier benchmarks and rounds left dirty in the page cache (a relay round writes ~1 GB
                    # of Kafka log) is written back now, not during the round: commits wait on the same disk
                    await asyncio.to_thread(os.sync)
                    await asyncio.sleep(0.5)
                    tally.meter.start()
                    done = await offer(name, rate, seconds, send, watcher)
                    if name == "project":  # every process's CPU in the project's rounds (bench/cpu.py)
                        tally.add(rate, tally.meter.spent(), len(done.ack))
                    runs.append(done)
                    print(
                        f"  {name} {rate}/s round {r + 1}: ack p50 {percentile(done.ack, 50) * 1000:.1f} "
                        f"p99 {percentile(done.ack, 99) * 1000:.1f} ms, e2e p50 {percentile(done.e2e, 50) * 1000:.1f} "
                        f"p99 {percentile(done.e2e, 99) * 1000:.1f} ms, {done.errors} errors, {done.timed_out} timed out, {done.unseen} unseen",
                        flush=True,
                    )
        print(tally.table(), flush=True)
        if not env.quick:  # where the project's time goes at the first rate: py-spy of each process, unmeasured
            await profile(project, rates[0], seconds, env.out)
    finally:
        gc.unfreeze()  # the benchmarks after this one run on the default collector
        gc.set_threshold(*threshold)
        if project is not None:
            await project.close()
        if baseline is not None:
            await baseline.close()
        await cleanup(settings)

    for rate in rates:
        mine = [r for r in runs if r.rate == rate and r.path == "project"]
        base = [r for r in runs if r.rate == rate and r.path == "baseline"]
        p, b = _row("project", rate, mine), _row("baseline (raw PG + Kafka)", rate, base)
        report.rows += [p, b]
        ratio = ["project / baseline", rate, round(p[2] / b[2], 2) if b[2] else ""] + [
            round(x / y, 1) if y else "" for x, y in zip(p[3:9], b[3:9], strict=True)
        ] + [""]  # fmt: skip
        report.rows.append(ratio)
        if rate == rates[0]:
            report.at_most(f"e2e p99 at {rate}/s, ms (project)", p[7], 100)
        if rate == rates[-1]:  # issue 32, item 2: at 1,000/s offered, >= 850/s (0.85x the baseline), p99 <= 250 ms
            report.at_least(f"achieved/s at {rate}/s offered (project)", p[2], 0.85 * rate)
            if b[2]:
                report.at_least(f"achieved at {rate}/s offered, project / baseline", p[2] / b[2], 0.85)
            report.at_most(f"e2e p99 at {rate}/s offered, ms (project)", p[7], 250)
    report.notes += [
        f"{rounds} interleaved rounds of {seconds} s per path and rate (after an unmeasured warm-up); a pool of "
        f"{pool_size} open deals of one salesperson; figures are medians over rounds of each round's percentile, "
        "max is the worst of all rounds. Before each round the page cache is flushed (sync), so no round waits "
        "on writes an earlier benchmark or round left behind.",
        "ack: from the scheduled send to the HTTP answer (baseline: the INSERT committed). e2e: from the scheduled "
        f"send to the watcher seeing the version applied; the watcher polls every {WATCH_EVERY_S * 1000:g} ms, "
        "which adds about half that to both paths.",
        "Baseline: INSERT, then a raw idempotent producer (acks=all, no linger) straight after the commit — no "
        "outbox tailing — and a raw consumer process upserting each batch in one transaction. The project's path "
        "adds the HTTP API (JWT, decide on the cached state, the append: one round trip), the relay tailing the store (NOTIFY wake-up, "
        "commit-safe read, linger 5 ms, checkpoint) and the projector's batch transaction (progress locks, "
        "board and analytics projections).",
        f"errors include commands not answered within {GIVE_UP_S:g} s after the schedule ended (abandoned); "
        "percentiles are over answered commands, so a path with abandoned commands is slower than its figures.",
        "Other engineers' benchmarks share this machine and its PostgreSQL: open transactions anywhere in the "
        "cluster hold back the relay's commit-safe tailing (snapshot xmin), which the baseline does not do.",
    ]
    if tally is not None and tally.commands:
        report.notes.append(tally.note())
        report.data["cpu_ms_per_command"] = {str(r): v for r, v in tally.per_command().items()}
        report.data["cpu_budget_ms"] = cpu.BUDGET_MS
        report.data["cpu_idle_ms_per_s"] = tally.idle
        total = tally.per_command().get(rates[-1], {}).get("total", 0.0)  # "measured at the offered rate"
        report.at_most(f"CPU ms per command at {rates[-1]}/s offered, every process (issue 32)", total, cpu.BUDGET_MS)
        achieved = {r[1]: r[2] for r in report.rows if r[0] == "project / baseline"}
        report.notes.append(tally.limits(achieved))
        report.data["ceilings"] = {str(r): tally.ceiling(r) for r in rates}
    report.data |= {"rates": rates, "seconds": seconds, "rounds": rounds, "pool": pool_size}
    report.data["runs"] = [r.summary() for r in runs]
    return report
