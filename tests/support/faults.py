"""Fault scenarios' moving parts: service processes that can be killed and restarted, servers of a test's own
stack that can be killed, paused or stopped abruptly, and a load driver that posts commands through the HTTP APIs
at a fixed rate and records every acknowledgement."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared.settings import Settings
from shared.stack import ROOT, LocalStack
from tests.support.services import bearer, process_env
from tests.support.waiting import wait_until

ADMIN = bearer("u-admin", "admin", team=None)
MODES = ("api", "relay", "projector")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Processes:
    """Each service's api, relay and projector as processes (logs in ``logs``), killed and restarted at will."""

    settings: Settings
    services: tuple[str, ...]
    logs: Path
    ports: dict[str, int] = field(default_factory=dict)
    running: dict[tuple[str, str], subprocess.Popen[bytes]] = field(default_factory=dict)
    started: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.ports = {s: free_port() for s in self.services}
        self.env = process_env(
            self.settings,
            PIPELINES_ALERT_SCAN_SECONDS="3600",  # no time-driven alerts: the scenarios compare what traffic did
            **{f"PIPELINES_{s.upper()}_PORT": str(p) for s, p in self.ports.items()},
        )

    @property
    def urls(self) -> dict[str, str]:
        return {s: f"http://127.0.0.1:{p}" for s, p in self.ports.items()}

    def log(self, service: str, mode: str) -> Path:
        return self.logs / f"{service}-{mode}.log"

    def start(self, service: str, mode: str) -> None:
        self.started[service, mode] += 1
        out = self.log(service, mode).open("ab")  # appended: a restarted process's log follows the killed one's
        self.running[service, mode] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}", mode], cwd=ROOT, env=self.env, stdout=out, stderr=out
        )
        out.close()

    def start_all(self) -> None:
        for service in self.services:
            for mode in MODES:
                self.start(service, mode)

    def kill(self, service: str, mode: str) -> None:
        p = self.running[service, mode]
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)

    def dead(self) -> list[tuple[str, str, int | None]]:
        return [(s, m, p.returncode) for (s, m), p in self.running.items() if p.poll() is not None]

    def started_count(self, service: str, mode: str) -> int:
        return self.log(service, mode).read_text(errors="replace").count("service.started")

    async def wait_started(self, timeout: float = 120.0) -> None:
        """Every process has logged ``service.started`` once per start, and every API answers /healthz."""

        async def up() -> bool:
            if self.dead():
                raise AssertionError(f"processes died while starting: {self.dead()}")
            if any(self.started_count(s, m) < n for (s, m), n in self.started.items()):
                return False
            async with httpx.AsyncClient(timeout=2) as http:
                for url in self.urls.values():
                    try:
                        if (await http.get(f"{url}/healthz")).status_code != 200:
                            return False
                    except httpx.HTTPError:
                        return False
            return True

        await wait_until(up, timeout=timeout, interval=0.5)

    def stop_all(self) -> None:
        for p in self.running.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.running.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


@contextlib.contextmanager
def own_stack(run_dir: Path, nodes: int = 1) -> Iterator[LocalStack]:
    """A stack of the test's own (its servers may be killed), always taken down and wiped afterwards."""
    stack = LocalStack(run_dir=run_dir, nodes=nodes)
    try:
        yield stack
    finally:
        for i in range(1, nodes + 1):  # a paused broker would not stop
            with contextlib.suppress(ProcessLookupError, FileNotFoundError, ValueError):
                os.kill(kafka_pid(stack, i), signal.SIGCONT)
        stack.down(wipe=True)


def kafka_pid(stack: LocalStack, node: int) -> int:
    return int((stack.run_dir / f"kafka-{node}" / "pid").read_text().split()[0])


def pg_ctl(stack: LocalStack, *args: str) -> None:
    """pg_ctl on the stack's own cluster (as the postgres user when we are root, as scripts/stack runs it)."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    data = (stack.run_dir / "pg").resolve() / "data"
    cmd = [str(bins[-1]), "-D", str(data), *args]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


@dataclass
class Load:
    """Commands posted at ``rate`` per second across the services' APIs; each is retried with its Idempotency-Key
    on a connection error or a 5xx (for up to ``give_up_s``), and every 2xx answer is recorded as acknowledged."""

    urls: dict[str, str]
    rate: float = 10.0
    give_up_s: float = 45.0
    acked: dict[str, set[tuple[str, int]]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    retry_after: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    given_up: int = 0
    replayed: int = 0  # retries answered with the first answer (Idempotent-Replayed)
    deals: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    _n: Iterator[int] = field(default_factory=itertools.count)

    def total_acked(self) -> int:
        return sum(len(v) for v in self.acked.values())

    def _next(self, service: str) -> tuple[str, dict[str, Any]]:
        i = next(self._n)
        if service == "deals":
            r = random.random()
            if len(self.deals) < 10 or r < 0.2:
                line = {"product": "Tủ mát", "quantity": "2", "unit_price": {"amount": "1000000", "currency": "VND"}}
                body = {"title": f"Đơn {i}", "customer": "Khách", "owner_id": "u-lan", "lines": [line]}
                return f"/deals?deal_id={uuid.uuid4()}", body
            if r < 0.3:  # won: production's reaction makes its order (once, whatever is killed meanwhile)
                return f"/deals/{self.deals.pop(random.randrange(len(self.deals)))}/win", {}
            return f"/deals/{random.choice(self.deals)}/log-activity", {"activity_type": "call", "channel": "phone"}
        if service == "leads":
            return "/leads", {"source": "manual", "contact": {"name": f"Khách {i}", "phone": f"09{i:08d}"}}
        if service == "production":
            if len(self.orders) < 5 or random.random() < 0.3:
                line = {"product": "Tủ mát", "quantity": "2"}
                return "/orders", {"customer": f"Quán {i}", "lines": [line], "due_date": "2027-01-10"}
            due = f"2027-02-{1 + i % 28:02d}"
            return f"/orders/{random.choice(self.orders)}/change-due-date", {"due_date": due, "reason": "chờ vật tư"}
        raise ValueError(service)

    async def _command(self, http: httpx.AsyncClient, service: str) -> None:
        path, body = self._next(service)
        headers = ADMIN | {"Idempotency-Key": str(uuid.uuid4())}
        deadline = time.monotonic() + self.give_up_s
        self.sent += 1
        while True:
            try:
                r = await http.post(self.urls[service] + path, json=body, headers=headers)
                self.statuses[f"{service} {r.status_code}"] += 1
                if r.status_code < 300:
                    a = r.json()
                    self.replayed += bool(a.get("replayed"))
                    if "stream_id" in a:
                        self.acked.setdefault(service, set()).add((a["stream_id"], a["version"]))
                    if path.startswith("/deals?"):
                        self.deals.append(a["id"])
                    elif path == "/orders":
                        self.orders.append(a["id"])
                    return
                if r.status_code < 500:
                    return  # refused (a rule, a conflict): nothing acknowledged
                if r.headers.get("retry-after"):
                    self.retry_after[f"{service} {r.status_code}"] += 1
            except httpx.HTTPError as exc:
                self.statuses[f"{service} {type(exc).__name__}"] += 1
            if time.monotonic() > deadline:
                self.given_up += 1
                return
            await asyncio.sleep(0.5)

    async def run(self, stop: asyncio.Event) -> None:
        """Post until ``stop``, then wait for the commands in flight (each ends within ``give_up_s``)."""
        services = itertools.cycle(self.urls)
        tasks: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(timeout=10) as http:
            while not stop.is_set():
                t = asyncio.create_task(self._command(http, next(services)))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1 / self.rate)
            if tasks:
                await asyncio.gather(*tasks)

    def summary(self) -> str:
        return (
            f"sent {self.sent}, acked {self.total_acked()}, replayed {self.replayed}, given up {self.given_up}, "
            f"statuses {dict(self.statuses)}, retry-after {dict(self.retry_after)}"
        )


@contextlib.asynccontextmanager
async def traffic(load: Load) -> Any:
    """The load runs in the background for the block; on leaving, it stops and its last commands finish."""
    stop = asyncio.Event()
    task = asyncio.create_task(load.run(stop))
    try:
        yield load
    finally:
        stop.set()
        await task
