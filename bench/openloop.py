"""Commands offered open loop, each timed until a read model shows it: bench/e2e.py's measure, which the benchmarks
loading the deals service the same way run too (memory, tracing).

Command *i* is sent at ``t0 + i / rate`` whether or not earlier ones were answered, and every latency is measured
from that scheduled time (no coordinated omission). One watcher connection polls the read model's ``(stream_id,
version)`` rows of every pending stream in one query every 5 ms. bench/loadgen.py offers the same schedule from a
process of its own (bench/overload.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bench.common import percentile

WATCH_EVERY_S = 0.005
GIVE_UP_S = 10.0  # after the schedule ends, how long unanswered commands and unseen versions are waited for
QUANTILES = [*range(0, 100), 99.5, 99.9, 100]

Acked = Callable[[str, int], None]  # the command was acknowledged: its stream and the version it wrote
Send = Callable[[Acked], Awaitable[None]]


class Watcher:
    """Polls ``table(stream_id, version)`` for every stream with a pending command; a command is done when its
    stream's row shows its version. One query per poll, only while something is pending."""

    def __init__(self, conn: asyncpg.Connection, table: str) -> None:
        self.conn = conn
        self.table = table
        self.pending: dict[str, list[tuple[int, float]]] = {}
        self.samples: list[float] = []
        self.polls = 0

    def expect(self, stream: str, version: int, since: float) -> None:
        self.pending.setdefault(stream, []).append((version, since))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.pending:
                rows = await self.conn.fetch(
                    f"SELECT stream_id, version FROM {self.table} WHERE stream_id = ANY($1::text[])",
                    list(self.pending),
                )
                now = time.perf_counter()
                self.polls += 1
                for row in rows:
                    waiting = self.pending.get(row["stream_id"], [])
                    left = [(v, t) for v, t in waiting if v > row["version"]]
                    self.samples.extend(now - t for v, t in waiting if v <= row["version"])
                    if left:
                        self.pending[row["stream_id"]] = left
                    else:
                        self.pending.pop(row["stream_id"], None)
            await asyncio.sleep(WATCH_EVERY_S)

    async def drain(self, within: float) -> int:
        """Wait until nothing is pending (or ``within`` s); returns how many were never seen, and forgets them."""
        deadline = time.monotonic() + within
        while self.pending and time.monotonic() < deadline:  # noqa: ASYNC110 - the watcher task empties it
            await asyncio.sleep(0.02)
        unseen = sum(len(v) for v in self.pending.values())
        self.pending.clear()
        return unseen


@dataclass
class Run:
    path: str
    rate: int
    seconds: float
    sent: int = 0
    errors: int = 0
    unseen: int = 0
    timed_out: int = 0  # no answer within GIVE_UP_S of the end of the schedule (counted in errors too)
    ack: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    elapsed: float = 0.0  # from the first scheduled send to the last ack
    behind: float = 0.0  # how far the sender fell behind its schedule at worst

    @property
    def achieved(self) -> float:
        return len(self.ack) / self.elapsed if self.elapsed else 0.0

    def summary(self) -> dict[str, Any]:
        def q(xs: list[float]) -> list[float]:
            return [round(percentile(xs, p) * 1000, 2) for p in QUANTILES]

        return {
            "path": self.path,
            "rate": self.rate,
            "seconds": self.seconds,
            "sent": self.sent,
            "acked": len(self.ack),
            "seen": len(self.e2e),
            "errors": self.errors,
            "unseen": self.unseen,
            "timed_out": self.timed_out,
            "achieved_per_s": round(self.achieved, 1),
            "sender_behind_ms": round(self.behind * 1000, 2),
            "quantiles": [str(p) for p in QUANTILES],
            "ack_ms": q(self.ack),
            "e2e_ms": q(self.e2e),
        }


async def offer(path: str, rate: int, seconds: float, send: Send, watcher: Watcher) -> Run:
    """Send ``rate * seconds`` commands open loop; latencies from each command's scheduled time."""
    run = Run(path, rate, seconds, sent=int(rate * seconds))
    watcher.samples = run.e2e
    last_ack = 0.0
    t0 = time.perf_counter() + 0.05

    async def one(at: float) -> None:
        nonlocal last_ack

        def acked(stream: str, version: int) -> None:
            nonlocal last_ack
            last_ack = time.perf_counter()
            run.ack.append(last_ack - at)
            watcher.expect(stream, version, at)

        try:
            await send(acked)
        except Exception:
            run.errors += 1
        except asyncio.CancelledError:
            pass

    tasks = []
    for i in range(run.sent):
        at = t0 + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            run.behind = max(run.behind, -delay)
        tasks.append(asyncio.create_task(one(at)))
    _, late = await asyncio.wait(tasks, timeout=GIVE_UP_S)
    for t in late:  # the path cannot keep up: stop waiting, count them as errors
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    run.timed_out = len(late)
    run.elapsed = last_ack - t0
    run.unseen = await watcher.drain(within=GIVE_UP_S)
    return run
