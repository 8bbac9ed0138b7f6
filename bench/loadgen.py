"""An open-loop load generator in a process of its own (decision 0032): ``python -m bench.loadgen SPEC``.

Run by a benchmark's process (bench/overload.py), so the generator's CPU and pauses are not the benchmark's
watcher's, and the benchmark's are not the generator's. ``SPEC`` is a JSON file: the API's ``url``, the ``headers``,
the ``paths`` to post ``body`` to (one chosen at random per command), the ``rate`` per second, the ``seconds``, how
long to wait for answers after the schedule ends (``give_up_s``) and where to write the summary (``out``). Once
started it writes ``T <t0>``: its schedule's start, as ``time.perf_counter()`` (CLOCK_MONOTONIC, the same in every
process of the machine).

Command *i* is due at ``t0 + i / rate`` whether or not earlier ones were answered; its latencies count from then.
Its send lag is how late it was actually sent. Each command the API accepted (2xx) is written to stdout as it is
answered (``A <stream> <version> <due>``) for the parent's watcher; at the end the summary goes to ``out``: every
send lag, the accepted commands' and the busy answers' (503) latencies, the other errors and the commands never
answered.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from bench.httpclient import HttpClient

FLUSH_EVERY_S = 0.005  # accepted commands are handed to the parent this often
START_IN_S = 0.2  # the first command is due this long after the generator has started


@dataclass
class Tally:
    sent: int = 0
    lag: list[float] = field(default_factory=list)  # actual send − due, s
    accepted: list[float] = field(default_factory=list)  # answer − due, s, of the 2xx answers
    busy: list[float] = field(default_factory=list)  # answer − due, s, of the 503 answers
    errors: dict[str, int] = field(default_factory=dict)  # other answers (status or exception), counted
    unanswered: int = 0  # not answered within give_up_s of the schedule's end
    first_due: float = 0.0
    last_answer: float = 0.0


async def generate(spec: dict[str, Any]) -> Tally:
    client = HttpClient(spec["url"], spec["headers"], limit=1024)
    paths: list[str] = spec["paths"]
    body: dict[str, Any] = spec["body"]
    rate, seconds = float(spec["rate"]), float(spec["seconds"])
    t0 = time.perf_counter() + START_IN_S  # started (imports done): the schedule begins now
    tally = Tally(sent=int(rate * seconds), first_due=t0)
    out = sys.stdout
    lines: list[str] = []

    async def one(due: float) -> None:
        tally.lag.append(time.perf_counter() - due)
        try:
            status, answer = await client.post(random.choice(paths), body)
        except Exception as exc:  # a connection refused or reset: counted, the run goes on
            tally.errors[type(exc).__name__] = tally.errors.get(type(exc).__name__, 0) + 1
            return
        now = tally.last_answer = time.perf_counter()
        if 200 <= status < 300:
            tally.accepted.append(now - due)
            lines.append(f"A {answer['stream_id']} {answer['version']} {due!r}\n")
        elif status == 503:
            tally.busy.append(now - due)
        else:
            tally.errors[str(status)] = tally.errors.get(str(status), 0) + 1

    async def flusher(stop: asyncio.Event) -> None:
        while not stop.is_set() or lines:
            if lines:
                out.write("".join(lines))
                lines.clear()
                out.flush()
            await asyncio.sleep(FLUSH_EVERY_S)

    out.write(f"T {t0!r}\n")  # the parent's schedule starts here too
    out.flush()
    stop = asyncio.Event()
    flushing = asyncio.create_task(flusher(stop))
    tasks = []
    for i in range(tally.sent):
        due = t0 + i / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    _, late = await asyncio.wait(tasks, timeout=float(spec["give_up_s"]))
    for t in late:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    tally.unanswered = len(late)
    stop.set()
    await flushing
    await client.close()
    return tally


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    gc.collect()
    gc.freeze()  # what the imports made is never walked again: no pause of a full collection mid-schedule
    gc.set_threshold(50_000, 50, 1000)
    tally = uvloop.run(generate(spec))
    Path(spec["out"]).write_text(json.dumps(asdict(tally)))


if __name__ == "__main__":
    main(sys.argv[1])
