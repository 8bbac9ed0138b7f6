"""What every benchmark shares: the servers, isolated names, medians and percentiles, the table, the results.

A benchmark is a module ``bench/<name>.py`` with ``async def run(env: Env) -> Report``. It measures the project's
path and a baseline doing the same work by hand in the same script, several rounds each, and reports medians
and the ratio. ``python -m bench`` runs them in turn and writes ``bench/results/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from shared.ops.settings import Settings
from shared.ops.stack import ROOT, Endpoints
from testkit.services import drop_everything, isolated_settings

RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Env:
    """Where a benchmark runs: the servers, and whether to use the small sizes of the smoke test."""

    endpoints: Endpoints
    quick: bool = False
    out: Path = RESULTS

    def settings(self, **update: Any) -> Settings:
        """Settings with their own schema and topic prefixes, so runs never see each other's data."""
        return isolated_settings(self.endpoints).model_copy(update=update)

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass(frozen=True)
class Target:
    name: str  # what is compared, e.g. "append, 8 writers: project / raw asyncpg"
    value: float
    goal: str  # e.g. ">= 0.8"
    met: bool


@dataclass
class Report:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # raw samples and parameters, for the JSON

    def at_least(self, name: str, value: float, goal: float) -> None:
        self.targets.append(Target(name, round(value, 3), f">= {goal:g}", value >= goal))

    def at_most(self, name: str, value: float, goal: float) -> None:
        self.targets.append(Target(name, round(value, 3), f"<= {goal:g}", value <= goal))

    def within(self, name: str, value: float, low: float, high: float) -> None:
        self.targets.append(Target(name, round(value, 3), f"{low:g} .. {high:g}", low <= value <= high))

    def table(self) -> str:
        widths = [max(len(str(c)), *(len(_cell(r[i])) for r in self.rows)) for i, c in enumerate(self.columns)]
        line = "| " + " | ".join(str(c).ljust(w) for c, w in zip(self.columns, widths, strict=True)) + " |"
        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        body = ["| " + " | ".join(_cell(v).rjust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in self.rows]
        out = [f"### {self.title}", "", line, rule, *body, ""]
        for t in self.targets:
            out.append(f"- {'MET ' if t.met else 'MISSED'} {t.name}: {t.value:g} (target {t.goal})")
        out.extend(f"- {n}" for n in self.notes)
        return "\n".join(out) + "\n"


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else 0.0


def percentile(xs: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by nearest rank."""
    if not xs:
        return 0.0
    ordered = sorted(xs)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[k])


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    """Seconds one call takes."""
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


async def cleanup(settings: Settings) -> None:
    """Drop a benchmark's schemas and topics."""
    await drop_everything(settings)


async def machine(endpoints: Endpoints) -> dict[str, Any]:
    """Cores, memory and the versions of everything measured."""
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        pg = await conn.fetchval("SHOW server_version")
        fsync = await conn.fetchval("SHOW fsync")
        sync_commit = await conn.fetchval("SHOW synchronous_commit")
    finally:
        await conn.close()
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    jars = sorted((ROOT / ".cache").glob("kafka-*/libs/kafka_2.13-*.jar"))
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "postgresql": pg,
        "postgresql_fsync": fsync,
        "postgresql_synchronous_commit": sync_commit,
        "kafka": jars[0].stem.removeprefix("kafka_2.13-") if jars else "unknown",
        "kafka_source": endpoints.source,
        "commit": _git_commit(),
    }


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def write(out: Path, report: Report, info: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{report.name}.json"
    path.write_text(json.dumps({"machine": info, **asdict(report)}, indent=2, default=str) + "\n")
    return path


def p95(xs: list[float]) -> float:
    return percentile(xs, 95)


def p99(xs: list[float]) -> float:
    return percentile(xs, 99)


async def paced(rate: int, seconds: float, call: Callable[[int], Awaitable[None]]) -> list[float]:
    """Open-loop: a call every 1/rate s for ``seconds``, each timed from when it was due."""
    latencies: list[float] = []
    started = time.perf_counter()

    async def one(i: int, due: float) -> None:
        await call(i)
        latencies.append(time.perf_counter() - due)

    tasks = []
    for i in range(int(rate * seconds)):
        due = started + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return latencies


async def wait_for(
    check: Callable[[], Awaitable[bool]],
    timeout_s: float,
    what: str,
    interval: float = 0.25,
    *,
    processes: Iterable[tuple[subprocess.Popen[bytes], Path]] = (),
) -> None:
    """Until ``check()`` holds; fails after ``timeout_s``, or as soon as one of ``processes`` (each with its log,
    whose end the error shows) has exited."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        for process, log in processes:
            if process.poll() is not None:
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"{what}: a process exited with {process.returncode}: {tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout_s} s")
        await asyncio.sleep(interval)
