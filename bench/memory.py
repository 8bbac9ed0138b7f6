"""Memory: peak RSS of each process kind of the deals service under sustained load.

The deals service runs as separate api, relay and projector processes, then as one ``all`` process; each gets
the load of bench/e2e.py (log-activity on random open deals, open loop) in three consecutive segments. RSS is
sampled every 0.25 s; VmHWM (the kernel's peak) is read at the end. Growth: RSS after the first segment vs
after the last (the first segment takes the one-time growth of warming up: pools, caches, buffers), which a
leak would show.

Baseline: a bare Python process that imports the same code (``import services.deals.main``) and idles.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

from bench.common import Env, Report, cleanup
from bench.e2e import Deals
from bench.openloop import offer
from bench.processes import memory_kib
from shared.ops.stack import ROOT

SAMPLE_EVERY_S = 0.25


async def baseline_kib() -> dict[str, int]:
    """VmRSS and VmHWM of a process that imported the deals service's code, once it idles."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import services.deals.main, time, sys; print('ok', flush=True); time.sleep(60)"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        await asyncio.to_thread(proc.stdout.readline)
        await asyncio.sleep(0.5)
        return memory_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()


async def load_and_sample(
    deals: Deals, rate: int, seconds: float, segments: int
) -> tuple[dict[str, list[tuple[float, int]]], list[dict[str, int]], list[Any]]:
    """Offer ``segments`` runs of the e2e load; sample every process's RSS meanwhile. Returns the samples
    (time, KiB) per mode, the RSS of each mode after each segment, and the runs."""
    pids = deals.processes.pids()
    samples: dict[str, list[tuple[float, int]]] = {m: [] for m in pids}
    done = asyncio.Event()
    started = time.monotonic()

    async def sampler() -> None:
        while not done.is_set():
            for mode, pid in pids.items():
                samples[mode].append((round(time.monotonic() - started, 2), memory_kib(pid)["VmRSS"]))
            await asyncio.sleep(SAMPLE_EVERY_S)

    task = asyncio.create_task(sampler())
    after: list[dict[str, int]] = [{m: memory_kib(p)["VmRSS"] for m, p in pids.items()}]
    runs = []
    try:
        for _ in range(segments):
            runs.append(await offer("project", rate, seconds, deals.send, deals.watcher))
            after.append({m: memory_kib(p)["VmRSS"] for m, p in pids.items()})
    finally:
        done.set()
        await task
    return samples, after, runs


async def run(env: Env) -> Report:
    rate = env.size(100, 20)
    seconds = env.size(10, 1)
    segments = 3
    pool_size = env.size(1000, 40)
    report = Report(
        name="memory",
        title=f"Memory: RSS of each process kind of deals under {rate} commands/s (MiB)",
        columns=[
            "process",
            "idle RSS",
            "peak RSS (VmHWM)",
            "peak / baseline",
            "RSS after seg 1",
            f"after seg {segments}",
            "growth",
            "commands",
        ],
    )
    base = await baseline_kib()
    report.rows.append(["baseline: python -c 'import services.deals.main'", _mib(base["VmRSS"]), _mib(base["VmHWM"]),
                        1.0, "", "", "", ""])  # fmt: skip
    data: dict[str, Any] = {"rate": rate, "seconds": seconds, "segments": segments, "baseline_kib": base}
    for modes in (("api", "relay", "projector"), ("all",)):
        settings = env.settings()
        deals = None
        try:
            deals = await Deals.start(settings, pool_size, modes)
            pids = deals.processes.pids()
            await asyncio.sleep(1.0)
            idle = {m: memory_kib(p)["VmRSS"] for m, p in pids.items()}
            samples, after, runs = await load_and_sample(deals, rate, seconds, segments)
            peak = {m: memory_kib(p)["VmHWM"] for m, p in pids.items()}
            commands = sum(len(r.ack) for r in runs)
            errors = sum(r.errors + r.timed_out + r.unseen for r in runs)
            for m in pids:
                growth = after[-1][m] - after[1][m]
                report.rows.append([
                    f"deals {m}", _mib(idle[m]), _mib(peak[m]), round(peak[m] / base["VmHWM"], 2),
                    _mib(after[1][m]), _mib(after[-1][m]), f"{growth / 1024:+.1f}", commands,
                ])  # fmt: skip
                if growth > 0.1 * after[1][m]:
                    report.notes.append(f"deals {m} grew {growth / 1024:.1f} MiB over the load after its first segment")
            if errors:
                report.notes.append(f"{' + '.join(modes)}: {errors} commands failed or were not seen")
            data["+".join(modes)] = {
                "pids": pids,
                "idle_kib": idle,
                "peak_kib": peak,
                "after_segment_kib": after,
                "samples_kib": samples,
                "errors": errors,
            }
        finally:
            if deals is not None:
                await deals.close()
            await cleanup(settings)
    report.notes += [
        f"Load: bench/e2e.py's open-loop log-activity at {rate}/s, {segments} segments of {seconds} s, on a pool "
        f"of {pool_size} open deals; first as three processes, then as one `all` process.",
        "growth: RSS after the last segment minus after the first (the first absorbs one-time warm-up growth). "
        f"RSS samples every {SAMPLE_EVERY_S} s are in the JSON.",
    ]
    report.data = data
    return report


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)
