"""``python -m bench.webhooks_profile [N] [OUT]``: the webhooks benchmark's worker path under cProfile (decision 0026).

N deliveries (default 3,000) over bench.webhooks' streams to testkit/webhook_receiver_go: raw httpx first (its rate
printed, not profiled), then the dispatcher worker's lanes (``bench.webhooks.drain``) profiled; the top functions by
own time and by cumulative time go to OUT (default bench/results/webhooks-profile.txt). Rates under cProfile are
not the benchmark's: read the shares, not the figures.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import os
import pstats
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.common import RESULTS, Env, cleanup
from bench.webhooks import CONCURRENCY, bodies, drain, raw
from services.webhooks.main import build
from services.webhooks.store import Row
from shared.ops.stack import start_servers
from testkit import webhook_receiver_go


async def profile(env: Env, n: int, out: Path) -> None:
    with webhook_receiver_go.running() as base:
        host = base.split("//")[1].split(":")[0]
        settings = env.settings(webhooks_allow=f"{host}/32", webhooks_concurrency=CONCURRENCY, db_pool_size=8)
        service = await build(settings)
        sender = service.sender()
        try:
            sub = await service.webhooks.create(f"{base}/hooks/bench", ["pipelines.deals.*"], "", True, "bench")
            async with httpx.AsyncClient() as c:
                for name in ("bench", "bench-raw"):
                    await c.put(f"{base}/control/{name}", json={"secret": sub["secret"], "keep": False})
            items = bodies(n)
            raw_rate, _ = await raw(base, items, sub["secret"])
            sid = uuid.UUID(sub["id"])
            kind = "pipelines.deals.DealStageChanged"
            rows = [Row(sid, e, kind, s, "pipelines.deals.events", 0, i, b) for i, (e, s, b) in enumerate(items)]
            await service.store.queue(rows, datetime.now(UTC))
            prof = cProfile.Profile()
            prof.enable()
            took, _ = await drain(sender, n, time.perf_counter())
            prof.disable()
        finally:
            await sender.close()
            await service.close()
            await cleanup(settings)
    text = io.StringIO()
    text.write(f"# worker {n / took:.0f}/s under cProfile over {n:,}; raw httpx {raw_rate:.0f}/s; ")
    text.write(f"load average {os.getloadavg()[0]:.1f}\n")
    for key, count in (("tottime", 35), ("cumulative", 45)):
        pstats.Stats(prof, stream=text).sort_stats(key).print_stats(count)
    out.write_text(text.getvalue())
    print(f"profile in {out}")


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 3000
    out = Path(argv[1]) if len(argv) > 1 else RESULTS / "webhooks-profile.txt"
    servers = start_servers()
    try:
        asyncio.run(profile(Env(servers.endpoints), n, out))
    finally:
        servers.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
