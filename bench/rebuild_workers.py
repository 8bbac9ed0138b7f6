"""Rebuild workers: the sales board's ProjectionRunner in worker processes, for bench/rebuild.py's 1- and 2-process rows.

``python -m bench.rebuild_workers --namespace NS --group-prefix P --status FILE`` runs the board's
``ProjectionRunner`` alone, made by ``runner()`` (the arguments bench/rebuild.py's in-process builder uses), on the
settings of its environment (``testkit.services.process_env`` of the bench's isolated settings), until SIGTERM, as
a deployed projector runs: uvloop, the heap settled after its start (``shared.edge.service``). Workers started with
the same namespace and group prefix share the topic's 6 partitions through each generation's consumer group.

Every 20 ms, when they changed, the worker writes its runner's statistics per generation to FILE (JSON, replaced
whole): how the bench knows a generation has applied every event without polling PostgreSQL meanwhile. Summed over
the workers, ``applied`` counts each event once (an event is applied with its progress row in one transaction; a
partition read again after a rebalance counts as ``skipped``); the sum of the generation's progress versions in
PostgreSQL then confirms it.

``Workers`` is the bench's side: k workers spawned for one rebuild, ``request_rebuild`` once they have started,
timed until the new generation has applied every event and until it is active; each process kind's CPU from the
request until every event was applied (bench/cpu.py). ``model()``: what this run's CPU per event says of issue 32's
6 partitions on 6 cores, printed in the report's notes with ``workers_notes()``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

from bench import cpu
from bench.common import median, wait_for
from services.deals.projections import board
from shared.edge.service import settle_heap
from shared.messaging.projections import Projection, generation_schema, request_rebuild
from shared.messaging.runner import ProjectionRunner
from shared.ops.settings import Settings
from shared.store.db import create_pool
from testkit.services import process_env, spawn, stop_processes

POOL_SIZE = 4
PROJECTION = "board"
TABLES = {
    "board": "deal_id",
    "pipeline_stages": "pipeline_id, stage_id",
    "follow_ups": "follow_up_id",
    "projection_progress": "stream_id",
}


def runner(
    settings: Settings, pool: asyncpg.Pool, namespace: str, projection: Projection, group_prefix: str
) -> ProjectionRunner:
    """The board's runner as the rebuild bench runs it, in its own process or in a worker."""
    return ProjectionRunner(
        pool,
        projection,
        namespace=namespace,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        dead_letter_topic=settings.dead_letter_topic("deals"),
        group_prefix=group_prefix,
        poll_interval=0.25,
        drop_retired_after_s=0.0,
    )


async def tables(pool: asyncpg.Pool, namespace: str, projection: str = PROJECTION) -> dict[str, list[tuple[Any, ...]]]:
    """The active generation's tables, ordered (projection_progress without its timestamp)."""
    async with pool.acquire() as conn:
        generation = await conn.fetchval(
            f"SELECT generation FROM {namespace}.projection_generations WHERE projection = $1 AND state = 'active'",
            projection,
        )
        schema = generation_schema(namespace, projection, generation)
        out = {}
        for table, key in TABLES.items():
            columns = "stream_id, version" if table == "projection_progress" else "*"
            rows = await conn.fetch(f"SELECT {columns} FROM {schema}.{table} ORDER BY {key}")
            out[table] = [tuple(r.values()) for r in rows]
        return out


# ---------------------------------------------------------------------------------------------- the worker process
async def work(namespace: str, group_prefix: str, status: Path) -> None:
    settings = Settings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool = await create_pool(settings.database_url_for("deals"), max_size=POOL_SIZE)
    try:
        r = runner(settings, pool, namespace, board(settings.events_topic("deals")), group_prefix)
        await r.setup()
        settle_heap()
        task = asyncio.create_task(r.run(stop))
        written: dict[str, Any] | None = None
        while not stop.is_set() and not task.done():
            now = {
                str(g): {"applied": s.applied, "skipped": s.skipped, "dead_lettered": s.dead_lettered, "gaps": s.gaps}
                for g, s in r.stats.items()
            }
            if now != written:
                tmp = status.with_suffix(".tmp")
                tmp.write_text(json.dumps(now))
                tmp.replace(status)  # the bench never reads half a file
                written = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.02)
        stop.set()
        await task
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rebuild_workers", description=__doc__)
    parser.add_argument("--namespace", required=True, help="the schema of the projection's generations")
    parser.add_argument("--group-prefix", required=True, help="the consumer groups' prefix, shared by the workers")
    parser.add_argument("--status", type=Path, required=True, help="where the runner's statistics are written")
    args = parser.parse_args()
    uvloop.run(work(args.namespace, args.group_prefix, args.status))


# ---------------------------------------------------------------------------------------------- the bench's side
@dataclass
class Run:
    """One rebuild by worker processes."""

    seconds: float  # from request_rebuild until every event was applied
    active_s: float  # from request_rebuild until the generation was active
    cpu: dict[str, float]  # CPU seconds per process kind over ``seconds``
    load: float  # the machine's load average (1 min) at the end
    applied: list[int]  # the events each worker applied
    skipped: int  # events read again (after a rebalance) and passed over as applied before, by all the workers


class Workers:
    """Worker processes of one namespace, spawned per build; their generations' progress read from their status."""

    def __init__(self, settings: Settings, namespace: str, workdir: Path) -> None:
        self.settings = settings
        self.namespace = namespace
        self.workdir = workdir
        self.group_prefix = f"bench.{uuid.uuid4().hex[:8]}"
        self.env = process_env(settings)
        self.pool: asyncpg.Pool | None = None
        self.spawned = 0

    def _spawn(self, k: int) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
        statuses = []
        for _ in range(k):
            self.spawned += 1
            statuses.append(self.workdir / f"worker-{self.spawned}.json")
        args = ("-m", "bench.rebuild_workers", "--namespace", self.namespace, "--group-prefix", self.group_prefix)
        procs = [spawn((*args, "--status", str(s)), self.env, s.with_suffix(".log")) for s in statuses]
        return procs, statuses

    async def start(self, total: int) -> float:
        """Generation 1 built by one worker; returns the seconds from its spawn (its start included)."""
        self.pool = await create_pool(self.settings.database_url_for("deals"), max_size=2)
        begun = time.perf_counter()
        procs, statuses = self._spawn(1)
        try:
            await self._applied(procs, statuses, 1, total)
            return time.perf_counter() - begun
        finally:
            stop_processes(procs, wait_s=60)

    async def rebuild(self, k: int, total: int, meter: cpu.Meter) -> Run:
        """k workers rebuild the board: a new generation, read from the topic's beginning, swapped in."""
        assert self.pool is not None
        procs, statuses = self._spawn(k)
        try:
            watched = logged(procs, statuses)

            async def all_started() -> bool:
                return all(s.exists() for s in statuses)

            await wait_for(all_started, 120, "workers started", 0.02, processes=watched)
            await asyncio.sleep(1.0)  # the active generation's group has formed
            meter = cpu.Meter({**{f"worker {i + 1}": p.pid for i, p in enumerate(procs)}, **meter.roots}, meter.within)
            meter.start()
            begun = time.perf_counter()
            generation = await request_rebuild(self.pool, self.namespace, PROJECTION)
            await self._applied(procs, statuses, generation, total)
            seconds, spent, load = time.perf_counter() - begun, meter.spent(), os.getloadavg()[0]
            found = [json.loads(s.read_text()).get(str(generation), {}) for s in statuses]
            applied, skipped = [f.get("applied", 0) for f in found], sum(f.get("skipped", 0) for f in found)
            await wait_for(
                lambda: self._in(generation, "active"), 120, "generation swapped in", 0.02, processes=watched
            )
            active_s = time.perf_counter() - begun
            # the retired generation dropped by the workers, not in the next measurement's time
            await wait_for(lambda: self._in(generation - 1, "dropped"), 120, "old one dropped", 0.02, processes=watched)
            return Run(seconds, active_s, spent, load, applied, skipped)
        finally:
            stop_processes(procs, wait_s=60)

    async def _applied(
        self, procs: list[subprocess.Popen[bytes]], statuses: list[Path], generation: int, total: int
    ) -> None:
        """Until the workers have applied every event of ``generation`` (their statistics, then PostgreSQL's)."""

        async def counted() -> bool:
            found = [json.loads(s.read_text()).get(str(generation), {}) for s in statuses if s.exists()]
            dead, gaps = sum(f.get("dead_lettered", 0) for f in found), sum(f.get("gaps", 0) for f in found)
            assert dead == 0, f"generation {generation}: {dead} dead-lettered"
            assert gaps == 0, f"generation {generation}: {gaps} gaps"
            return sum(f.get("applied", 0) for f in found) >= total

        await wait_for(counted, 3600, f"generation {generation} applied", 0.01, processes=logged(procs, statuses))
        assert self.pool is not None
        schema = generation_schema(self.namespace, PROJECTION, generation)
        for _ in range(1000):  # the last batch's statistics come just before its commit
            if await self.pool.fetchval(f"SELECT coalesce(sum(version), 0) FROM {schema}.projection_progress") >= total:
                return
            await asyncio.sleep(0.01)
        raise TimeoutError(f"generation {generation}: the workers counted every event, PostgreSQL did not")

    async def _in(self, generation: int, state: str) -> bool:
        assert self.pool is not None
        now = await self.pool.fetchval(
            f"SELECT state FROM {self.namespace}.projection_generations WHERE projection = $1 AND generation = $2",
            PROJECTION,
            generation,
        )
        return bool(now == state)

    async def tables(self) -> dict[str, list[tuple[Any, ...]]]:
        assert self.pool is not None
        return await tables(self.pool, self.namespace)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


CORES = 6  # issue 32's layout: the topic's 6 partitions on 6 cores
TARGET = 0.6  # issue 32: the rebuild at 0.6x the raw read


def model(r: dict[str, Any], label: str) -> tuple[str, dict[str, Any]]:
    """Issue 32's 6 partitions on 6 cores, from one history's figures in this run (``r``: bench/rebuild.py's
    ``summary``): w workers, each alone on a core, and the other 6 − w cores for PostgreSQL and Kafka; the rebuild is
    bound by the workers' CPU (w × 10⁶ ÷ a worker's µs an event) and by the servers' (their cores ÷ their µs an
    event); the costs of the 1-worker rebuild for w = 1, of the 2-worker one (its rebalance included) for w ≥ 2.
    Also linear from the 1-worker rate measured here (its waits for PostgreSQL included) under the same servers'
    bound; against the raw read measured here and the raw read alone on a free core (10⁶ ÷ its µs an event)."""
    raw, runs = r["cpu_us_per_event"]["raw"], {k: r["cpu_us_per_event"][f"workers_{k}"] for k in (1, 2)}
    cost = {k: (c.get("workers", 0.0), c.get("postgresql", 0.0) + c.get("kafka", 0.0)) for k, c in runs.items()}
    raw_us = raw.get("bench process", 0.0)
    if min(cost[1][0], cost[2][0], raw_us) <= 0:
        return f"Model for {CORES} partitions on {CORES} cores: not computed ({label}: too few events to time).", {}
    raw_rate, one_rate, raw_alone = r["events_per_s"]["raw"], r["events_per_s"]["workers_1"], 1e6 / raw_us
    by: dict[int, dict[str, float]] = {}
    for w in range(1, CORES):
        worker_us, servers_us = cost[min(w, 2)]
        servers = (CORES - w) * 1e6 / servers_us if servers_us else float("inf")
        bound, linear = min(w * 1e6 / worker_us, servers), min(w * one_rate, servers)
        by[w] = {
            "events_per_s": round(bound),
            "over_raw": round(bound / raw_rate, 3),
            "over_raw_alone": round(bound / raw_alone, 3),
            "linear_over_raw": round(linear / raw_rate, 3),
        }
    meets = {
        key: next((w for w, m in by.items() if m[key] >= TARGET), None)
        for key in ("over_raw", "over_raw_alone", "linear_over_raw")
    }
    total_us = sum(v for k, v in runs[2].items() if not k.startswith("worker "))
    here = 2e6 / total_us
    data = {
        "us_per_event": {"1 worker": runs[1], "2 workers": runs[2], "raw read": raw},
        "raw_events_per_s": raw_rate,
        "raw_alone_events_per_s": round(raw_alone),
        "by_workers": by,
        "fewest_workers_for_target": meets,
        "two_workers_all_us": round(total_us, 2),
        "two_workers_cpu_bound_here": round(here),
    }

    def fewest(key: str) -> str:
        return f"{meets[key]} workers" if meets[key] else f"no layout of {CORES} cores"

    def us(k: int, kind: str) -> str:
        return f"{runs[k].get(kind, 0.0):.1f}"

    text = (
        f"Model for {CORES} partitions on {CORES} cores, from this run's {label} history (CPU medians): an event "
        f"costs the workers {us(1, 'workers')} µs of CPU with 1 worker and {us(2, 'workers')} µs with 2 (a partition "
        "the rebalance moves is read, decoded and typed again from its last commit; each worker's idle loops), "
        "PostgreSQL "
        f"{us(1, 'postgresql')} / {us(2, 'postgresql')} µs, Kafka {us(1, 'kafka')} / {us(2, 'kafka')} µs; the raw "
        f"read {raw_us:.1f} µs in its process, at {raw_rate:,}/s here (alone on a free core 10⁶ ÷ {raw_us:.1f} = "
        f"{raw_alone:,.0f}/s). w workers, each alone on a core (the 2-worker costs for w ≥ 2), the other {CORES} − w "
        "cores for PostgreSQL and Kafka: the rebuild is bound by min(w × 10⁶ ÷ a worker's µs, "
        f"({CORES} − w) × 10⁶ ÷ the servers' µs) events/s: "
        + "; ".join(
            f"w={w} {m['events_per_s']:,}/s ({m['over_raw']:.2f}× the raw read measured, {m['over_raw_alone']:.2f}× "
            "alone)"
            for w, m in by.items()
        )
        + f". Linear from the 1-worker rate measured here ({one_rate:,}/s, its waits for PostgreSQL and this "
        "machine's contention included), under the same servers' bound: "
        + "; ".join(f"w={w} {m['linear_over_raw']:.2f}×" for w, m in by.items())
        + f". {TARGET:g}× the raw read measured here needs {fewest('over_raw')} by the CPU bound, "
        f"{fewest('linear_over_raw')} linearly; {TARGET:g}× the raw read alone on a core, {fewest('over_raw_alone')}. "
        f"Check on this machine: the 2-worker rebuild's processes spent {total_us:.1f} µs of CPU an event in all, "
        f"which 2 cores allow at {here:,.0f}/s; measured {r['events_per_s']['workers_2']:,}/s (load average up to "
        f"{max(r['load_average'], default=0.0):.1f})."
    )
    return text, data


def workers_notes(small: dict[str, Any], big: dict[str, Any]) -> list[str]:
    """How the rebuilds by worker processes were timed, and their scaling from 1 to 2."""
    rates = big["events_per_s"]
    shares = "; ".join(" / ".join(f"{x:.2f}" for x in s) for s in big["workers_2_shares"])
    return [
        "Every path reads the deals topic from offset 0 (6 partitions); a rebuild is a new generation "
        "(request_rebuild) of a running runner of the board, timed from the request until it has applied every "
        "event: the runner in this process (its statistics), or 1 or 2 worker processes (python -m "
        "bench.rebuild_workers: the same runner arguments, on the same topic, in their own namespace and sharing "
        "its consumer groups; their statistics, then the progress in PostgreSQL). Workers are started for each "
        "rebuild and have set up before the request (their start is not timed); they run as a deployed projector "
        "does (uvloop), the in-process runner on this process's asyncio loop. Until the generation was active (swap "
        "included), medians: "
        + ", ".join(f"{k} worker(s) {median(big['seconds'][f'workers_{k}_active']):.2f} s" for k in (1, 2))
        + " against "
        + ", ".join(f"{k} worker(s) {median(big['seconds'][f'workers_{k}']):.2f} s" for k in (1, 2))
        + " until applied.",
        f"Scaling from 1 to 2 worker processes ({'big' if big is not small else 'small'} history): "
        f"{rates['workers_1']:,} → {rates['workers_2']:,} events/s, {rates['workers_2'] / rates['workers_1']:.2f}× "
        f"(rounds {', '.join(f'{x:.2f}' for x in big['workers_2_over_1_per_round'])}); the two workers' shares of "
        f"the events applied, by round: {shares}, and the events read again after a rebalance: "
        f"{', '.join(f'{n:,}' for n in big['workers_2_read_again'])} "
        "(a new group's first member takes all 6 partitions until the second's join rebalances it: the local "
        "stack sets group.initial.rebalance.delay.ms=0); load average at the rounds' "
        f"ends {', '.join(f'{x:.1f}' for x in big['load_average'])} on {os.cpu_count()} cores. CPU µs an event and "
        "cores busy: each process kind's CPU (its process tree, /proc; bench/cpu.py) over the path's time, "
        "medians of rounds (workers: the worker processes summed; bench process: this one, which runs the raw "
        "read and the in-process runner, and idles beside the workers).",
    ]


def logged(procs: list[subprocess.Popen[bytes]], statuses: list[Path]) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """Each worker with its log (beside its status file): what ``wait_for`` watches, failing when one exits."""
    return [(p, s.with_suffix(".log")) for p, s in zip(procs, statuses, strict=True)]


if __name__ == "__main__":
    main()
