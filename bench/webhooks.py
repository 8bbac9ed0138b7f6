"""Webhooks (issue 30, item 1): deliveries per second of one dispatcher worker to a local receiver, beside raw httpx
posting the same bodies to the same server in the same run (target: >= 500/s per worker on 2 cores).

The receiver is testkit.webhook_receiver_go in its own process (Go's net/http; it verifies each request's signature
with the Standard Webhooks reference Go library, the baseline's too: those are signed beforehand, outside its timing),
so that neither path waits on the receiver (the Python one, ~290/s on this machine, was the bottleneck of both). The worker's path is
the dispatcher's ``Sender`` as it runs: claim a batch of due stream heads in PostgreSQL, resolve and check the URL's
address, sign, POST with ``webhook-*`` headers, record each attempt and the deliveries' new states in one
transaction. The deliveries are queued beforehand (``STREAMS`` streams, so a batch has heads to send in parallel);
the baseline posts the same bodies and headers with the same concurrency over one httpx client, recording nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime

import httpx

from bench.common import Env, Report, cleanup, median
from services.webhooks.dispatcher import LANES, Sender
from services.webhooks.domain import signing
from services.webhooks.main import build
from services.webhooks.store import Row
from testkit import webhook_receiver_go

GOAL = 500.0  # deliveries per second, one worker
CONCURRENCY = 64
STREAMS = 400


def bodies(n: int) -> list[tuple[str, str, bytes]]:
    """(event id, stream, CloudEvent bytes) of ~900 bytes, like a deal's events on Kafka."""
    out = []
    for i in range(n):
        stream = f"deals-deal-{uuid.UUID(int=i % STREAMS)}"
        event_id = str(uuid.uuid4())
        event = {
            "specversion": "1.0",
            "id": event_id,
            "source": "/pipelines/deals",
            "type": "pipelines.deals.DealStageChanged",
            "datacontenttype": "application/json",
            "dataschema": "https://pipelines.invalid/schemas/events/deals/DealStageChanged.v1.json",
            "subject": stream,
            "time": datetime.now(UTC).isoformat(),
            "pipelinesactor": "u-lan",
            "data": {
                "deal_id": stream.removeprefix("deals-deal-"),
                "from_stage": "qualified",
                "to_stage": "proposal",
                "reason": "Khách hàng đã nhận báo giá tủ đông 500L, hẹn gặp lại tuần sau " * 4,
                "seq": i,
            },
        }
        out.append((event_id, stream, json.dumps(event).encode()))
    return out


async def raw(base: str, items: list[tuple[str, str, bytes]], secret: str) -> tuple[float, float]:
    """The baseline: the same bodies, signed beforehand (outside the timing), posted to the same verifying route;
    (posts per second, posts per CPU-second of this process)."""
    key, stamp = signing.secret_bytes(secret), int(time.time())
    queue = [(body, signing.headers(key, eid, stamp, body)) for eid, _, body in items]
    async with httpx.AsyncClient(
        limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    ) as client:

        async def worker() -> None:
            while queue:
                body, headers = queue.pop()
                headers = headers | {"content-type": "application/cloudevents+json; charset=utf-8"}
                r = await client.post(f"{base}/hooks/bench-raw", content=body, headers=headers)
                assert r.status_code == 204

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return len(items) / (time.perf_counter() - started), len(items) / (time.process_time() - cpu)


async def drain(sender: Sender, n: int, started: float) -> tuple[float, float]:
    """Run the worker's lanes (as ``Sender.run`` does) until ``n`` deliveries were attempted; the seconds it took and
    the CPU-seconds of this process (PostgreSQL's share of the claims and records is not in it)."""
    sent, cpu = 0, time.process_time()

    async def lane() -> None:
        nonlocal sent
        idle = 0
        while sent < n:
            got = await sender.round()
            sent += got
            idle = 0 if got else idle + 1
            assert idle < 5000, f"nothing claimable after {sent} of {n}"
            if not got:
                await asyncio.sleep(0.001)  # the other lane holds the remaining heads

    await asyncio.gather(*(lane() for _ in range(LANES)))
    return time.perf_counter() - started, time.process_time() - cpu


async def run(env: Env) -> Report:
    n, rounds = env.size(6000, 200), env.size(3, 1)
    load = os.getloadavg()
    report = Report(
        "webhooks",
        f"Webhooks: {n:,} deliveries over {STREAMS} streams to a local receiver verifying each signature, "
        f"{CONCURRENCY} in flight",
        ["path", "deliveries/s (median)", "rounds", "delivered"],
    )
    with webhook_receiver_go.running() as base:
        host = base.split("//")[1].split(":")[0]
        settings = env.settings(webhooks_allow=f"{host}/32", webhooks_concurrency=CONCURRENCY, db_pool_size=8)
        service = await build(settings)
        sender = service.sender()
        ours, baseline, delivered = [], [], 0
        ours_cpu, baseline_cpu = [], []  # deliveries per CPU-second of the process: what one free core would do
        try:
            sub = await service.webhooks.create(f"{base}/hooks/bench", ["pipelines.deals.*"], "", True, "bench")
            async with httpx.AsyncClient() as c:
                for name in ("bench", "bench-raw"):  # the same verification for both paths
                    await c.put(f"{base}/control/{name}", json={"secret": sub["secret"], "keep": False})
            sid = uuid.UUID(sub["id"])
            for r in range(rounds):
                items = bodies(n)
                rate, per_cpu = await raw(base, items, sub["secret"])
                baseline.append(rate)
                baseline_cpu.append(per_cpu)
                rows = [
                    Row(sid, eid, "pipelines.deals.DealStageChanged", stream, "pipelines.deals.events", 0, r * n + i, b)
                    for i, (eid, stream, b) in enumerate(items)
                ]
                await service.store.queue(rows, datetime.now(UTC))
                started = time.perf_counter()
                took, cpu = await drain(sender, n, started)
                ours.append(n / took)
                ours_cpu.append(n / cpu)
            async with httpx.AsyncClient() as c:
                delivered = int((await c.get(f"{base}/control/bench/count")).json())
        finally:
            await sender.close()
            await service.close()
            await cleanup(settings)
    assert delivered == n * rounds, f"the receiver verified {delivered} of {n * rounds}"
    report.rows.append(["dispatcher worker (claim, check, sign, post, record)", median(ours), rounds, delivered])
    report.rows.append(["raw httpx, same bodies and concurrency", median(baseline), rounds, n * rounds])
    report.at_least("webhook deliveries/s, one dispatcher worker", median(ours), GOAL)
    report.notes.append(f"ratio worker/raw {median(ours) / max(median(baseline), 1e-9):.2f}; every delivery verified")
    report.notes.append(
        f"per CPU-second of the posting process (what it does with one core to itself; the receiver is a Go process, "
        f"the worker's claims and records run in PostgreSQL): worker {median(ours_cpu):,.0f}/s, raw httpx "
        f"{median(baseline_cpu):,.0f}/s"
    )
    report.notes.append(
        f"load average at the start and end: {load[0]:.1f} and {os.getloadavg()[0]:.1f} (other suites on the machine "
        f"slow both paths alike; the ratio is the comparable figure)"
    )
    report.data = {
        "worker_per_s": ours,
        "raw_per_s": baseline,
        "worker_per_cpu_s": ours_cpu,
        "raw_per_cpu_s": baseline_cpu,
        "load_average": [load[0], os.getloadavg()[0]],
        "deliveries": n,
        "streams": STREAMS,
    }
    return report
