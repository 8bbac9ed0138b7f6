"""Load a generated year (``tools.demo_history``) into the running services, over their HTTP APIs only.

In order: the demo's teams and salespeople (``tools.simulate``'s, so live traffic finds them), the campaigns
(back-dated a year with ``X-Occurred-At``, an admin's right), then the batches of each service's
``POST /imports/batches`` (``shared.imports.runner.HttpSender``): the directory's organisations, the leads and each
campaign's daily spend, the deals (repeat customers' deals with their whole history in one row), the agenda's
activities. What a reaction makes cannot be a row: a converted lead's deal and a won deal's order are waited for,
then driven through their normal routes with ``X-Occurred-At`` (an admin's token: back-dating beyond the limit),
``concurrency`` aggregates at a time, each one's commands in order. A second load of the same history appends
nothing new to the rows (``exists``); the scripts' commands are refused as before their stream's last event, counted
as refused, not failed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.imports.runner import HttpSender, RunError
from shared.ops.settings import Settings
from tools.demo_history import SOURCE, History, Script, Step
from tools.simulate import Endpoints, Simulation, tokens

BATCH_ROWS = 200
BATCH_BYTES = 400_000
RETRIES = (1.0, 2.0, 4.0, 8.0, 8.0)  # a row naming what the service's replica does not have yet: sent again after
REFERENCE_FIELDS = ("organisation_id", "subject_id")  # the `$import` fields the history's rows carry


@dataclass
class Loaded:
    rows: int = 0
    created: int = 0
    exists: int = 0
    refused: int = 0
    commands: int = 0
    commands_refused: int = 0
    skipped: int = 0  # scripts whose first command found it done (a second load of the same history)
    waited_out: int = 0  # reactions that never came (a deal or an order not made in time)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


Progress = Callable[[str, int], None]  # (what, how many more done)


class Loader:
    def __init__(
        self,
        settings: Settings,
        urls: dict[str, str],
        *,
        concurrency: int = 16,
        progress: Progress | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.urls = urls  # service → base URL: directory, leads, deals, production, agenda
        self.admin = tokens(settings)["admin"]
        self.transport = transport
        self.http = httpx.AsyncClient(timeout=60, transport=transport)
        self.sender = HttpSender(urls, self.admin["Authorization"].removeprefix("Bearer "), client=self.http)
        self.limit = asyncio.Semaphore(concurrency)
        self.progress = progress or (lambda _what, _n: None)
        self.loaded = Loaded()
        self.after: dict[str, str] = {}  # X-Directory-After for each service's batches

    async def close(self) -> None:
        await self.http.aclose()

    async def run(self, history: History) -> Loaded:
        started = time.monotonic()
        await self.people()
        await self.campaigns(history)
        await self.batches("directory", history.rows["directory"])
        await asyncio.gather(self.batches("leads", history.rows["leads"]), self.batches("deals", history.rows["deals"]))
        await asyncio.gather(self.batches("agenda", history.rows["agenda"]), self.scripts(history.scripts))
        self.loaded.seconds = time.monotonic() - started
        return self.loaded

    # ---------------------------------------------------------------------------------------------- set up
    async def people(self) -> None:
        """The simulation's teams and salespeople (409 on a second run: they are there)."""
        sim = Simulation(
            Endpoints(self.urls["leads"], self.urls["deals"], self.urls["production"], self.urls["directory"]),
            self.settings,
            transport=self.transport,
        )
        try:
            await sim.people()
        finally:
            await sim.close()
        self.loaded.errors += sim.stats.errors
        if sim.after:
            self.after["X-Directory-After"] = ", ".join(list(sim.after.values())[-8:])

    async def campaigns(self, history: History) -> None:
        """Each campaign created and started a year ago (an idempotency key per code: a second run finds it)."""
        for c in history.campaigns:
            body = {
                "name": c.name,
                "channel": c.channel,
                "code": c.code,
                "budget": {"amount": str(c.budget), "currency": "VND"},
            }
            at = {"X-Occurred-At": c.created_at.isoformat()}
            r = await self.post(
                f"{self.urls['leads']}/campaigns", body, at | {"Idempotency-Key": f"{SOURCE}-campaign-{c.code}"}
            )
            if r is not None and r.status_code == 201:
                await self.post(f"{self.urls['leads']}/campaigns/{r.json()['id']}/status", {"status": "active"}, at)

    async def post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response | None:
        try:
            r = await self.http.post(url, json=body, headers=self.admin | headers)
        except httpx.TransportError as exc:
            self.loaded.errors.append(f"POST {url}: {exc.__class__.__name__}")
            return None
        if r.status_code >= 400:
            self.loaded.errors.append(f"POST {url.split('//')[-1]}: {r.status_code} {r.text[:200]}")
        return r

    # ---------------------------------------------------------------------------------------------- batches
    async def batches(self, service: str, rows: Sequence[dict[str, Any]]) -> None:
        """The rows in batches (spend rows apart: the leads take them a batch at a time), three in flight."""
        chunks = list(chunked([r for r in rows if r["kind"] == "spend"])) + list(
            chunked([r for r in rows if r["kind"] != "spend"])
        )
        flight = asyncio.Semaphore(3)

        async def one(chunk: list[dict[str, Any]]) -> None:
            async with flight:
                await self.batch(service, chunk)

        await asyncio.gather(*(one(c) for c in chunks))

    async def batch(self, service: str, rows: list[dict[str, Any]]) -> None:
        """One batch; the rows refused on a reference the service's replica may not have yet, sent again."""
        for wait in (*RETRIES, None):
            try:
                answer = await self.sender.send(service, {"source": SOURCE, "rows": rows}, self.after)
            except RunError as exc:
                self.loaded.errors.append(str(exc))
                return
            by_row = {r["row"]: r for r in rows}
            again = []
            for result in answer["results"]:
                errors = result.get("errors") or []
                if result["status"] == "refused" and wait is not None and _names_reference(errors):
                    again.append(by_row[result["row"]])
                    continue
                self.count(service, by_row[result["row"]], result)
            if not again:
                return
            rows = again
            await asyncio.sleep(wait or 0)

    def count(self, service: str, row: dict[str, Any], result: dict[str, Any]) -> None:
        self.loaded.rows += 1
        status = result["status"]
        setattr(self.loaded, status, getattr(self.loaded, status) + 1)
        if status == "refused":
            self.loaded.errors.append(f"{service} {row['kind']} {row['key']}: {result['errors']}")
        elif status == "created" and service == "directory" and result.get("stream_id"):
            seen = [*self.after.get("X-Directory-After", "").split(", "), f"{result['stream_id']}@{result['version']}"]
            self.after["X-Directory-After"] = ", ".join([s for s in seen if s][-8:])
        self.progress(service, 1)

    # ---------------------------------------------------------------------------------------------- reactions
    async def scripts(self, scripts: Sequence[Script]) -> None:
        await asyncio.gather(*(self.script(s) for s in scripts))

    async def script(self, script: Script) -> None:
        async with self.limit:
            deal = f"{self.urls['deals']}/deals/{script.deal_id}"
            if script.steps:
                if await self.made(deal) is None:
                    return
                if not await self.steps(deal, script.steps):
                    return
            if script.order:
                found = await self.made(f"{self.urls['production']}/orders/for-deal/{script.deal_id}")
                if found is not None:
                    await self.steps(f"{self.urls['production']}/orders/{found['order_id']}", script.order)
            self.progress("reactions", 1)

    async def made(self, url: str, wait_s: float = 60.0) -> dict[str, Any] | None:
        """What a reaction made, once it is there (it travels through Kafka)."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            r = await self.http.get(url, headers=self.admin)
            if r.status_code == 200:
                found: dict[str, Any] = r.json()
                return found
            await asyncio.sleep(0.3)
        self.loaded.waited_out += 1
        self.loaded.errors.append(f"GET {url.split('//')[-1]}: not made in {wait_s:.0f} s")
        return None

    async def steps(self, url: str, steps: Sequence[Step]) -> bool:
        """The commands in order (each at its time); False when one is refused (the rest would be too). The first
        refused as out of time order or by the aggregate's state: loaded before (a second run), skipped."""
        for n, step in enumerate(steps):
            headers = self.admin | {"X-Occurred-At": step.at.isoformat()}
            try:
                r = await self.http.post(f"{url}/{step.path}", json=step.body, headers=headers)
            except httpx.TransportError as exc:
                r = None
                self.loaded.errors.append(f"POST {url}/{step.path}: {exc.__class__.__name__}")
            if n == 0 and r is not None and r.status_code in (409, 422) and _loaded_before(r):
                self.loaded.skipped += 1
                return False
            self.loaded.commands += 1
            if r is None or r.status_code >= 400:
                if r is not None:
                    self.loaded.errors.append(f"POST {url.split('//')[-1]}/{step.path}: {r.status_code} {r.text[:200]}")
                self.loaded.commands_refused += 1
                return False
        return True


def chunked(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Batches of at most ``BATCH_ROWS`` rows and about ``BATCH_BYTES`` of JSON."""
    out: list[list[dict[str, Any]]] = []
    chunk: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        n = len(json.dumps(row, ensure_ascii=False).encode())
        if chunk and (len(chunk) >= BATCH_ROWS or size + n > BATCH_BYTES):
            out.append(chunk)
            chunk, size = [], 0
        chunk.append(row)
        size += n
    if chunk:
        out.append(chunk)
    return out


def _loaded_before(r: httpx.Response) -> bool:
    """A refusal saying the aggregate is past this step: its stream has a later event, or it left that stage."""
    rule = str(r.json().get("rule", "")) if r.headers.get("content-type", "").endswith("json") else ""
    return rule == "before_previous_event" or rule.startswith(("order_", "deal_")) or rule in ("before_opening",)


def _names_reference(errors: list[dict[str, Any]]) -> bool:
    return any(any(name in str(e.get("field", "")) for name in REFERENCE_FIELDS) for e in errors)


async def load(settings: Settings, urls: dict[str, str], history: History, progress: Progress | None = None) -> Loaded:
    loader = Loader(settings, urls, progress=progress)
    try:
        return await loader.run(history)
    finally:
        await loader.close()


def totals(history: History) -> dict[str, int]:
    """What the progress counts: each service's rows and the reactions' scripts."""
    counts = {service: len(rows) for service, rows in history.rows.items() if rows}
    return counts | {"reactions": len(history.scripts)}
