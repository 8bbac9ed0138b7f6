"""Projectors: read-model throughput with 1, 2 and 4 ``python -m services.deals projector`` processes.

An isolated deals deployment gets N realistic events (the relay benchmark's bulk fill: deals driven through the
handlers, cloned into many streams), published to its 6-partition topic by the project's relay. A first set of
projector processes builds every read model from scratch (the "fresh deployment" row). Then, for k = 1, 2, 4 in
interleaved rounds: k projector processes are started (environment from ``process_env``, as the scaling test
does) and, once each has logged ``service.started``, a rebuild of the sales board is requested
(``request_rebuild``: a new generation with its own consumer group, read from the beginning). The time runs until
that generation has been swapped in and has applied every event of the store (``applied_everything``); it
includes what a real rebuild includes: the processes noticing the generation (they reconcile once a second), the
consumer group forming, and the swap. The baseline is the 1-process run.

The machine has 2 cores, shared by the projectors, PostgreSQL and Kafka (and other people's benchmarks). In the
full run, one more 1-process rebuild runs under py-spy (bench/results/projector.profile.txt, collapsed stacks),
and its top costs are summarised in the notes.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS, Env, Report, cleanup, median, wait_for
from bench.relay import all_visible, prefill
from services.deals import main as deals_main
from shared.edge.service import ServiceCore
from shared.messaging.projections import request_rebuild
from testkit.services import applied_everything, process_env, spawn, stop_processes

PROJECTION = "board"
PROJECTOR = ("-m", "services.deals", "projector")


async def started(logs: list[Path], processes: list[subprocess.Popen[bytes]], timeout_s: float = 120) -> None:
    async def all_started() -> bool:
        return all("service.started" in log.read_text() for log in logs)

    await wait_for(all_started, timeout_s, "projectors started", processes=list(zip(processes, logs, strict=True)))


async def rebuilt(core: ServiceCore, generation: int) -> bool:
    async with core.storage.pool.acquire() as conn:
        state = await conn.fetchval(
            f"""SELECT state FROM {core.storage.store.schema}.projection_generations
                WHERE projection = $1 AND generation = $2""",
            PROJECTION,
            generation,
        )
    return state == "active" and await applied_everything(core, PROJECTION)


async def rebuild_with(
    core: ServiceCore, env: dict[str, str], k: int, workdir: Path, *, profile: Path | None = None
) -> float:
    """Seconds for k projector processes to rebuild the board from the topic's beginning."""
    logs = [workdir / f"projector-{k}-{i}-{time.monotonic_ns()}.log" for i in range(k)]
    processes = [spawn(PROJECTOR, env, log) for log in logs]
    spy: subprocess.Popen[bytes] | None = None
    try:
        await started(logs, processes)
        await asyncio.sleep(1.0)  # the active generations' groups have formed
        if profile is not None:
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "--pid",
                    str(processes[0].pid),
                    "--format",
                    "raw",
                    "--rate",
                    "100",
                    "--nonblocking",
                    "-o",
                    str(profile),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await asyncio.sleep(1.0)
        watched = list(zip(processes, logs, strict=True))
        generation = await request_rebuild(core.storage.pool, core.storage.store.schema, PROJECTION)
        begun = time.perf_counter()
        what = f"{PROJECTION} generation {generation} rebuilt"
        await wait_for(lambda: rebuilt(core, generation), 900, what, processes=watched)
        return time.perf_counter() - begun
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        stop_processes(processes, wait_s=60)


def summarise(profile: Path, top: int = 10) -> list[str]:
    """Where one projector process spent its busy samples: by library of the innermost frame, the project's
    functions (inclusive) and the innermost frames (own time)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    areas: collections.Counter[str] = collections.Counter()
    total = 0
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f.rsplit(":", 1)[0] + ")" if f.endswith(")") else f for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            if "(shared/" in f or "(services/" in f:
                inclusive[f] += n
        leaf = frames[-1].rpartition("(")[2]
        area = next((a for a in LIBRARIES if leaf.startswith(a)), "project" if leaf.startswith(PROJECT) else "other")
        areas[area] += n
    if not total:
        return ["py-spy recorded no samples"]

    def shares(counter: collections.Counter[str], k: int) -> str:
        return "; ".join(f"{name} {v / total:.0%}" for name, v in counter.most_common(k))

    return [
        f"Profile (py-spy, {total:,} busy samples at 100 Hz of one projector process rebuilding the board "
        "alone; bench/results/projector.profile.txt). Innermost frame by library: " + shares(areas, 10),
        "Project functions, inclusive: " + shares(inclusive, top),
        "Innermost frames (own time): " + shares(own, top),
    ]


LIBRARIES = ("asyncpg/", "aiokafka/", "pydantic", "asyncio/", "selectors", "json/", "structlog/", "prometheus")
PROJECT = ("shared/", "services/")


async def run(env: Env) -> Report:
    n = env.size(50_000, 1_000)
    rounds = env.size(2, 1)
    settings = env.settings()
    core = await deals_main.build(settings)
    penv = process_env(settings)
    workdir = Path(tempfile.mkdtemp(prefix="bench-projectors-"))
    try:
        await core.ensure_topics()
        total = await prefill(core, settings, n)
        await all_visible(core, total)
        relay = core.relay()
        await relay.setup()
        assert await relay.lead()
        try:
            while await relay.publish_batch():
                pass
        finally:
            await relay.close()
        assert relay.published == total, f"published {relay.published} of {total}"

        # a fresh deployment: generation 1 of every read model (board, analytics, reactions, alerts)
        logs = [workdir / "fresh-0.log"]
        processes = [spawn(PROJECTOR, penv, logs[0])]
        try:
            await started(logs, processes)
            begun = time.perf_counter()

            async def everything() -> bool:
                return await applied_everything(core, "board") and await applied_everything(core, "analytics")

            await wait_for(
                everything, 900, "board and analytics built", processes=list(zip(processes, logs, strict=True))
            )
            fresh = total / (time.perf_counter() - begun)
        finally:
            stop_processes(processes, wait_s=60)
        print(f"  fresh deployment, 1 process: {fresh:,.0f} events/s", flush=True)

        samples: dict[int, list[float]] = {1: [], 2: [], 4: []}
        for r in range(rounds):
            for k in (1, 2, 4) if r % 2 == 0 else (4, 2, 1):
                seconds = await rebuild_with(core, penv, k, workdir)
                samples[k].append(total / seconds)
                print(f"  round {r}, {k} process(es): {total / seconds:,.0f} events/s ({seconds:.1f} s)", flush=True)
        profile_notes: list[str] = []
        if not env.quick:
            profile = RESULTS / "projector.profile.txt"
            RESULTS.mkdir(parents=True, exist_ok=True)
            seconds = await rebuild_with(core, penv, 1, workdir, profile=profile)
            profile_notes = summarise(profile) if profile.exists() else ["py-spy wrote no profile"]
            profile_notes.append(f"(the profiled rebuild ran at {total / seconds:,.0f} events/s under py-spy)")

        one = median(samples[1])
        report = Report(
            name="projectors",
            title=f"Projectors: rebuilding the sales board from {total:,} events, 6 partitions, {rounds} rounds",
            columns=["projector processes", "events/s (median)", "min", "max", "ratio to 1 process"],
            rows=[[k, median(xs), min(xs), max(xs), median(xs) / one] for k, xs in samples.items()],
        )
        report.rows.append(["fresh deployment, 1 process, all read models", fresh, fresh, fresh, fresh / one])
        report.notes += [
            "No numeric target: the baseline is the 1-process run. The machine has 2 cores, shared by the "
            "projector processes, PostgreSQL and Kafka (and other people's benchmarks): beyond 2 processes more "
            "consumers only share the same cores.",
            "Time from request_rebuild to the new generation being active with every stored event applied: "
            "includes the processes noticing it (reconcile every 1 s), the consumer group forming and the swap.",
            "Fresh deployment row: one process building every read model (board, analytics, alerts, reactions) "
            "from the topic; events/s counts each event once.",
            *profile_notes,
        ]
        report.data = {"events": total, "events_per_s": {str(k): v for k, v in samples.items()}, "fresh": fresh}
        return report
    finally:
        await core.close()
        await cleanup(settings)
