"""The in-flight bound (shared.edge.overload, decision 0032) on an app built as every API's, in-process.

Requests held inside a route fill the bound; the next is answered 503 ``busy`` with ``Retry-After`` at once, reads
and writes alike, while /healthz, /readyz and /metrics still answer; once the held ones finish the bound frees.
The same on a real server process, with the store and the topic checked: tests/integration/test_overload.py.
"""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from shared.edge.http import install_common
from shared.edge.overload import CEILING, FLOOR, in_flight_bound
from shared.ops.settings import Settings


async def ok_ready() -> dict[str, str]:
    return {"postgresql": "ok"}


def held_app(release: asyncio.Event, bound: int | None) -> FastAPI:
    app = FastAPI()
    install_common(app, ok_ready, "overload-test")
    if bound is not None:
        app.state.max_in_flight = bound

    @app.post("/things")
    async def create() -> dict[str, str]:
        await release.wait()
        return {"id": "t"}

    @app.get("/things")
    async def read() -> dict[str, str]:
        return {"id": "t"}

    return app


def metric(text: str, name: str) -> float:
    line = next(x for x in text.splitlines() if x.startswith(name + '{service="overload-test"}'))
    return float(line.rsplit(" ", 1)[1])


async def test_past_the_bound_requests_are_answered_busy_at_once_and_probes_still_answer() -> None:
    release = asyncio.Event()
    app = held_app(release, bound=2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        shed_before = metric((await http.get("/metrics")).text, "pipelines_http_shed_total")
        held = [asyncio.create_task(http.post("/things")) for _ in range(2)]

        async def both_in() -> None:
            while metric((await http.get("/metrics")).text, "pipelines_http_in_flight") < 2:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(both_in(), 10)
        for r in [await http.post("/things", json={}), await http.get("/things")]:
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] in ("1", "2")
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json() == {
                "type": "urn:pipelines:problem:busy",
                "title": "Unavailable",
                "status": 503,
                "detail": "this API is busy: too many requests in flight; retry after the seconds Retry-After says",
                "rule": "busy",
            }
        for probe in ("/healthz", "/readyz", "/metrics"):
            assert (await http.get(probe)).status_code == 200, probe
        text = (await http.get("/metrics")).text
        assert metric(text, "pipelines_http_shed_total") == shed_before + 2
        release.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        assert (await http.post("/things")).status_code == 200  # the bound is free again
        assert metric((await http.get("/metrics")).text, "pipelines_http_in_flight") == 0


async def test_an_app_without_a_bound_queues_as_before() -> None:
    release = asyncio.Event()
    app = held_app(release, bound=None)  # the board and the ops ports set none
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        held = [asyncio.create_task(http.post("/things")) for _ in range(20)]
        assert (await http.get("/things")).status_code == 200
        release.set()
        assert {r.status_code for r in await asyncio.gather(*held)} == {200}


def test_the_default_bound_follows_the_pool_within_its_limits() -> None:
    assert in_flight_bound(Settings(_env_file=None, db_pool_size=10, max_in_flight=None)) == 40
    assert in_flight_bound(Settings(_env_file=None, db_pool_size=1, max_in_flight=None)) == FLOOR
    assert in_flight_bound(Settings(_env_file=None, db_pool_size=5000, max_in_flight=None)) == CEILING
    assert in_flight_bound(Settings(_env_file=None, db_pool_size=10, max_in_flight=3)) == 3
