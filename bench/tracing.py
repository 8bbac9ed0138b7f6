"""What tracing costs when it is off (issue 30, decision 0027): the e2e benchmark's path (``POST
/deals/{id}/log-activity`` → the board's read model, through the deals service's api, relay and projector
processes), offered open loop at a fixed rate to two copies of the same build side by side:

- **off**: the default (no ``OTEL_*`` variable): the tracing hooks run and find tracing off;
- **compiled out**: ``PIPELINES_TRACING_COMPILED_OUT=1``: ``shared.ops.tracing`` is a no-op at import, every hook a
  constant function, which is what a build without tracing would run.

Two copies of each, started off, compiled out, compiled out, off (the first copy started runs a few per cent
slower, whatever its build); rounds run the copies in that order, then reversed, …; per copy and round the e2e p50 (scheduled send → the board
shows the version) and the CPU per command (user + system time of the three processes over the round, from
/proc, divided by the commands answered). The figures are the medians over rounds; the targets are the ratios
off / compiled out within 3 %, each the median over the pairs of rounds run side by side (the machine's load of
the moment cancels out), and the hooks' own cost (timed in a fresh interpreter per build) as a share of a
command's CPU. With ``--quick`` it only checks that it runs.

When Jaeger has been built (testkit/jaeger), a third copy then runs with tracing **on** (every request traced,
exported over OTLP/HTTP to a Jaeger on loopback), after the compared rounds, and its figures are shown beside
the others, without a target.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import Env, Report, cleanup, median, percentile
from bench.e2e import Deals
from bench.openloop import Run, offer

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time so far of these processes (their threads included)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / TICKS


async def jaeger_env() -> tuple[Any, dict[str, str]] | None:
    """A Jaeger to trace into, when it is built (never built here: that is ``scripts/stack setup``'s)."""
    from testkit import jaeger

    if not jaeger.binary().exists():
        return None
    server = await asyncio.to_thread(jaeger.Jaeger(Path(tempfile.mkdtemp(prefix="bench-jaeger-"))).start)
    return server, {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": server.otlp_url}


HOOK_CALLS, HOOK_ROUNDS = 100_000, 7
HOOKS = """
import json, statistics, sys, time, uuid
from datetime import UTC, datetime
from shared.ops import tracing
from shared.store import Checkpoint, RecordedEvent
from shared.store.commands import Context
from shared.messaging.envelope import CloudEvent
now = datetime.now(UTC)
e = RecordedEvent("s", 1, 1, uuid.uuid4(), "pipelines.deals.DealWon", 1, {}, {"actor": "a"}, now, now, Checkpoint(1, 1))
envelope = CloudEvent.from_recorded(e, "deals")
ctx = Context(actor="a", correlation_id="c")
def one():
    ctx.metadata()
    tracing.publishing(e, "t")
    with tracing.consuming(envelope, "r"):
        pass
took = []
for _ in range(int(sys.argv[2])):
    started = time.perf_counter()
    for _ in range(int(sys.argv[1])):
        one()
    took.append((time.perf_counter() - started) / int(sys.argv[1]) * 1e6)
print(json.dumps(statistics.median(took)))
"""


def hook_cost(extra: dict[str, str]) -> float:
    """µs per command spent in the tracing hooks (and the metadata they feed), in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | extra
    done = subprocess.run(
        [sys.executable, "-c", HOOKS, str(HOOK_CALLS), str(HOOK_ROUNDS)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout))


def ratios(off: list[tuple[Run, float]], out: list[tuple[Run, float]]) -> tuple[float, float]:
    """One round's off / compiled out: the mean over copies of the e2e p50, and of the CPU per command."""

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs)

    e2e = mean([percentile(d.e2e, 50) for d, _ in off]) / max(mean([percentile(d.e2e, 50) for d, _ in out]), 1e-9)
    return e2e, mean([c for _, c in off]) / max(mean([c for _, c in out]), 1e-12)


async def round_of(name: str, deals: Deals, rate: int, seconds: float) -> tuple[Run, float]:
    pids = list(deals.processes.pids().values())
    await asyncio.sleep(0.5)
    before = cpu_seconds(pids)
    done = await offer(name, rate, seconds, deals.send, deals.watcher)
    cpu = (cpu_seconds(pids) - before) / max(len(done.ack), 1)
    print(
        f"  {name} round: ack p50 {percentile(done.ack, 50) * 1000:.2f} ms, e2e p50 "
        f"{percentile(done.e2e, 50) * 1000:.2f} ms, CPU {cpu * 1000:.3f} ms/command, {done.errors} errors",
        flush=True,
    )
    return done, cpu


async def run(env: Env) -> Report:
    rate, seconds = env.size(100, 20), env.size(8, 1)
    rounds, pool_size = env.size(5, 1), env.size(300, 20)
    builds: dict[str, dict[str, str]] = {"off": {}, "compiled out": {"PIPELINES_TRACING_COMPILED_OUT": "1"}}
    report = Report(
        name="tracing",
        title="Tracing off against tracing compiled out: e2e p50 and CPU per command (deals, log-activity)",
        columns=["build", "offered/s", "ack p50 ms", "e2e p50 ms", "e2e p99 ms", "CPU ms/command", "errors"],
    )
    copies = ["off 1", "compiled out 1", "compiled out 2", "off 2"]  # started in this order: ABBA
    settings = {name: env.settings() for name in (*copies, "on")}
    started: dict[str, Deals] = {}
    jaeger = None
    samples: dict[str, list[tuple[Run, float]]] = {}
    paired: list[tuple[float, float]] = []  # per round: off / compiled out, e2e p50 and CPU per command
    try:
        if not env.quick and (found := await jaeger_env()) is not None:
            jaeger, builds["on"] = found
        for name in copies:
            started[name] = await Deals.start(settings[name], pool_size, extra_env=builds[name[:-2]])
        for name, deals in started.items():  # warm up, unmeasured
            await offer(name, rate, min(2.0, seconds), deals.send, deals.watcher)
        for r in range(rounds):
            this: dict[str, list[tuple[Run, float]]] = {}
            for name in copies if r % 2 == 0 else list(reversed(copies)):
                await asyncio.to_thread(os.sync)
                this.setdefault(name[:-2], []).append(await round_of(name, started[name], rate, seconds))
            for build, measured in this.items():
                samples.setdefault(build, []).extend(measured)
            paired.append(ratios(this["off"], this["compiled out"]))
        if "on" in builds:  # for reference, after the compared rounds: its backlog would spill into theirs
            for deals in started.values():
                await deals.close()
            started = {"on": await Deals.start(settings["on"], pool_size, extra_env=builds["on"])}
            await offer("on", rate, min(2.0, seconds), started["on"].send, started["on"].watcher)
            for _ in range(max(rounds // 2, 1)):
                samples.setdefault("on", []).append(await round_of("on", started["on"], rate, seconds))
    finally:
        for deals in started.values():
            await deals.close()
        if jaeger is not None:
            jaeger.stop()
        for s in settings.values():
            await cleanup(s)
    figures: dict[str, dict[str, float]] = {}
    for name, runs in samples.items():
        figures[name] = {
            "ack_p50_ms": median([percentile(d.ack, 50) * 1000 for d, _ in runs]),
            "e2e_p50_ms": median([percentile(d.e2e, 50) * 1000 for d, _ in runs]),
            "e2e_p99_ms": median([percentile(d.e2e, 99) * 1000 for d, _ in runs]),
            "cpu_ms_per_command": median([cpu * 1000 for _, cpu in runs]),
            "errors": sum(d.errors for d, _ in runs),
        }
        f = figures[name]
        row = [f["ack_p50_ms"], f["e2e_p50_ms"], f["e2e_p99_ms"], f["cpu_ms_per_command"], int(f["errors"])]
        report.rows.append([name, rate, *row])
    if paired:  # each round's two off copies against its two compiled-out copies: the moment's load cancels out
        report.within("e2e p50, off / compiled out (median over rounds)", median([e for e, _ in paired]), 0.97, 1.03)
        report.within(
            "CPU per command, off / compiled out (median over rounds)", median([c for _, c in paired]), 0.97, 1.03
        )
    hooks = {name: await asyncio.to_thread(hook_cost, extra) for name, extra in builds.items() if name != "on"}
    report.data["hooks_us_per_command"] = hooks
    if hooks.get("compiled out") is not None and figures["compiled out"]["cpu_ms_per_command"]:
        extra_us = hooks["off"] - hooks["compiled out"]
        share = extra_us / (figures["compiled out"]["cpu_ms_per_command"] * 1000)
        report.at_most("tracing hooks off - compiled out, share of a command's CPU", share, 0.03)
        report.notes.append(
            f"The hooks a command passes (Context.metadata, the relay's tracing.publishing, a reaction's "
            f"tracing.consuming) cost {hooks['off']:.3f} µs off and {hooks['compiled out']:.3f} µs compiled out, "
            f"each in a fresh interpreter (median of {HOOK_ROUNDS} timings of {HOOK_CALLS:,} calls): "
            f"{extra_us:.3f} µs more per command, of {figures['compiled out']['cpu_ms_per_command'] * 1000:.0f} µs."
        )
    report.notes += [
        f"Two copies of each build (four deals services side by side, started off, compiled out, compiled out, "
        f"off: which copy starts first is worth several per cent of e2e latency on its own), {rounds} rounds of "
        f"{seconds} s at {rate} commands/s per copy, the copies' order reversed every round, after an unmeasured "
        f"warm-up; a pool of {pool_size} open deals each. A build's figures are medians over its copies' rounds; "
        "a ratio is the median over rounds of that round's mean over copies.",
        "CPU per command: user + system time of the deals api, relay and projector processes over the round "
        "(/proc/<pid>/stat), divided by the commands answered; the load generator is not counted.",
        "off: no OTEL_* variable (the default). compiled out: PIPELINES_TRACING_COMPILED_OUT=1, the tracing module a "
        "no-op at import. on (when Jaeger is built): OTEL_TRACES_EXPORTER=otlp to a Jaeger on loopback, every "
        "request sampled (parentbased_always_on): the cost of tracing everything, for reference.",
    ]
    report.data = {"rate": rate, "seconds": seconds, "rounds": rounds, "pool": pool_size, "figures": figures}
    report.data["runs"] = {
        n: [{"run": d.summary(), "cpu_s_per_command": c} for d, c in rs] for n, rs in samples.items()
    }
    return report
