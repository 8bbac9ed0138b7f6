"""Overload answered, on a real process (issue 32 item 3, decision 0032).

The deals service runs as one process (``python -m services.deals all``: its API under uvicorn, its relay and
projectors) with ``PIPELINES_MAX_IN_FLIGHT=3``. Three commands are held open inside the API (their heads sent,
their bodies not yet); the next command and a read are answered 503 ``busy`` with ``Retry-After`` at once, while
/healthz, /readyz and /metrics answer 200. Then the held bodies are sent: all three commands succeed, the refused
one succeeds when sent again, and every accepted command's event is in the store, on the topic and in the read
model: nothing accepted is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest

from testkit.kafka import read_topic
from testkit.services import DeployDeals, bearer
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

BOUND = 3
ADMIN = bearer("u-admin", "admin")
JSON = ADMIN | {"Content-Type": "application/json"}


def deal(n: int) -> bytes:
    return json.dumps({"title": f"Tủ đông {n}", "customer": "Bình An", "owner_id": "u-lan"}).encode()


async def hold(port: int, body: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A command whose head is sent and whose body is not: the API holds it in flight, waiting for the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = [
        "POST /deals HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Authorization: {ADMIN['Authorization']}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    await writer.drain()
    return reader, writer


async def finish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> tuple[int, dict[str, Any]]:
    """Send the held command's body; its status and answer."""
    writer.write(body)
    await writer.drain()
    raw = await reader.read()  # Connection: close: the answer is everything until the server closes
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(payload)


def metric(text: str, name: str) -> float:
    line = next((x for x in text.splitlines() if x.startswith(name + '{service="deals"}')), None)
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


async def test_past_the_bound_a_real_api_answers_busy_and_loses_nothing_it_accepted(deploy_deals: DeployDeals) -> None:
    deals_api = await deploy_deals("all", PIPELINES_MAX_IN_FLIGHT=str(BOUND))
    settings, core, port, url = deals_api.settings, deals_api.core, deals_api.port, deals_api.url
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            held = [await hold(port, deal(n)) for n in range(BOUND)]

            async def all_held() -> bool:
                return metric((await http.get("/metrics")).text, "pipelines_http_in_flight") == BOUND

            await wait_until(all_held, timeout=30)
            refused = [
                await http.post("/deals", headers=JSON, content=deal(BOUND)),
                await http.get("/deals", headers=ADMIN),  # reads share the bound
            ]
            for r in refused:
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"] in ("1", "2")
                assert r.headers["content-type"] == "application/problem+json"
                assert r.json()["rule"] == "busy"
            for probe in ("/healthz", "/readyz", "/metrics"):
                assert (await http.get(probe)).status_code == 200, probe
            assert metric((await http.get("/metrics")).text, "pipelines_http_shed_total") == 2

            answers = await asyncio.gather(*(finish(r, w, deal(n)) for n, (r, w) in enumerate(held)))
            assert [status for status, _ in answers] == [201] * BOUND, answers
            again = await http.post("/deals", headers=JSON, content=deal(BOUND))  # the refused one, retried
            assert again.status_code == 201, again.text
            accepted = {a["stream_id"] for _, a in answers} | {again.json()["stream_id"]}
            deals = [a["id"] for _, a in answers] + [again.json()["id"]]

            async with core.storage.pool.acquire() as conn:
                stored = await conn.fetch(
                    f"SELECT stream_id FROM {core.storage.store.schema}.events WHERE stream_id LIKE 'deal-%'"
                )
            assert {str(r["stream_id"]) for r in stored} == accepted  # the refused command stored nothing

            topic = settings.events_topic("deals")

            async def on_topic() -> bool:
                return {e.streamid for _, e in await read_topic(settings.kafka_bootstrap_servers, topic)} >= accepted

            await wait_until(on_topic, timeout=60, interval=0.5)

            async def in_read_model() -> bool:
                found = [(await http.get(f"/deals/{d}", headers=ADMIN)).status_code for d in deals]
                return found == [200] * len(deals)

            await wait_until(in_read_model, timeout=60, interval=0.2)
    finally:
        for _, writer in held:
            with contextlib.suppress(Exception):
                writer.close()
