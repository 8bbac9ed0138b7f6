"""Several API workers behind one port, on real processes (issue 32 item 2, decision 0032 "More commands per core").

``python -m services.deals api`` with ``PIPELINES_API_WORKERS=2`` starts two worker processes on one port
(SO_REUSEPORT). Commands sent on new connections are answered by both (``pipelines_http_worker_requests_total``
per worker, in the one ``/metrics`` a scrape of the port sees: every worker's samples summed). Then, with commands
still arriving, SIGTERM to the supervisor stops both workers, it exits 0, and every command answered 201 is in the
store: nothing accepted is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from testkit.services import DeployDeals, bearer, stop_processes
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

ADMIN = bearer("u-admin", "admin") | {"Content-Type": "application/json"}
WORKERS = 2


def deal(n: int) -> bytes:
    return json.dumps({"title": f"Tủ đông {n}", "customer": "Bình An", "owner_id": "u-lan"}).encode()


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def per_worker(metrics: str) -> dict[str, float]:
    pattern = r'^pipelines_http_worker_requests_total\{service="deals",worker="(\d+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, metrics, re.MULTILINE)}


async def command(url: str, n: int) -> tuple[int, str] | None:
    """One command on a connection of its own (the kernel picks a worker per connection): its status and stream,
    or None when no answer came (the port closed)."""
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            r = await http.post("/deals", headers=ADMIN, content=deal(n))
    except httpx.TransportError:
        return None
    return r.status_code, r.json().get("stream_id", "") if r.status_code == 201 else r.text


async def test_two_workers_share_the_port_and_stop_together_losing_nothing(deploy_deals: DeployDeals) -> None:
    deals_api = await deploy_deals("api", PIPELINES_API_WORKERS=str(WORKERS))
    core, url, supervisor = deals_api.core, deals_api.url, deals_api.process
    workers: list[int] = []
    try:

        async def started() -> bool:
            return len(children(supervisor.pid)) == WORKERS

        await wait_until(started, timeout=30)
        workers = children(supervisor.pid)

        async def both_ready() -> bool:  # each worker answers /readyz 200 once up: ask until both have
            answers = await asyncio.gather(*(command(url, n) for n in range(8)))
            assert all(a is not None and a[0] == 201 for a in answers), answers
            async with httpx.AsyncClient(timeout=10) as http:
                counts = per_worker((await http.get(f"{url}/metrics")).text)
            return len(counts) == WORKERS and all(v > 0 for v in counts.values())

        await wait_until(both_ready, timeout=60, interval=0.2)

        answers: list[tuple[int, str] | None] = []

        async def keep_sending() -> None:
            n = 0
            while supervisor.poll() is None:
                answers.extend(await asyncio.gather(*(command(url, 1000 + n + i) for i in range(4))))
                n += 4

        sending = asyncio.create_task(keep_sending())

        async def some_answered() -> bool:
            return len(answers) >= 20

        await wait_until(some_answered, timeout=60)
        supervisor.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(supervisor.wait, 60) == 0
        await sending
        assert not [w for w in workers if alive(w)]  # both workers stopped with it

        statuses = {a[0] for a in answers if a is not None}
        assert statuses == {201}, [a for a in answers if a is not None and a[0] != 201]  # answered, or refused
        accepted = {a[1] for a in answers if a is not None}
        async with core.storage.pool.acquire() as conn:
            stored = await conn.fetch(f"SELECT stream_id FROM {core.storage.store.schema}.events")
        assert accepted <= {str(r["stream_id"]) for r in stored}  # every command answered 201 is in the store
    finally:
        stop_processes([supervisor])
        for w in workers:  # should the supervisor have died first
            with contextlib.suppress(ProcessLookupError):
                if alive(w):
                    os.kill(w, signal.SIGKILL)
