"""Fault scenarios' moving parts: service processes that can be killed and restarted, servers of a test's own
stack that can be killed, paused or stopped abruptly, a load driver that posts commands through the HTTP APIs
at a fixed rate and records every acknowledgement, and watchers of what clients and probes see meanwhile
(read-your-writes answers, every process's ``/readyz``)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.ops.settings import Settings
from shared.ops.stack import ROOT, LocalStack, free_ports
from shared.store.db import connect
from testkit.services import bearer, process_env
from testkit.waiting import wait_until

ADMIN = bearer("u-admin", "admin", team=None)
MODES = ("api", "relay", "projector")
BASE_NICE = os.getpriority(os.PRIO_PROCESS, 0)  # the service processes run at the test run's own priority
CLIENT_NICE = -5  # the load driver's thread, raised when allowed: clients do not share the servers' CPU


@dataclass
class Processes:
    """Each service's api, relay and projector as processes (logs in ``logs``), killed and restarted at will."""

    settings: Settings
    services: tuple[str, ...]
    logs: Path
    ports: dict[str, int] = field(default_factory=dict)
    ops_ports: dict[tuple[str, str], int] = field(default_factory=dict)  # relays' and projectors' /readyz
    running: dict[tuple[str, str], subprocess.Popen[bytes]] = field(default_factory=dict)
    started: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        ops = [(s, m) for s in self.services for m in MODES if m != "api"]
        ports = free_ports(len(self.services) + len(ops))  # distinct: one free_port() after another may repeat
        self.ports = dict(zip(self.services, ports[: len(self.services)], strict=True))
        self.ops_ports = dict(zip(ops, ports[len(self.services) :], strict=True))
        self.env = process_env(
            self.settings,
            PIPELINES_ALERT_SCAN_SECONDS="3600",  # no time-driven alerts: the scenarios compare what traffic did
            **{f"PIPELINES_{s.upper()}_PORT": str(p) for s, p in self.ports.items()},
        )

    @property
    def urls(self) -> dict[str, str]:
        return {s: f"http://127.0.0.1:{p}" for s, p in self.ports.items()}

    @property
    def readiness_urls(self) -> dict[str, str]:
        """Every process's /readyz: the APIs on their ports, relays and projectors on their ops ports."""
        urls = {f"{s} api": f"{u}/readyz" for s, u in self.urls.items()}
        return urls | {f"{s} {m}": f"http://127.0.0.1:{p}/readyz" for (s, m), p in self.ops_ports.items()}

    def log(self, service: str, mode: str) -> Path:
        return self.logs / f"{service}-{mode}.log"

    def start(self, service: str, mode: str) -> None:
        self.started[service, mode] += 1
        out = self.log(service, mode).open("ab")  # appended: a restarted process's log follows the killed one's
        env = self.env
        if (service, mode) in self.ops_ports:
            env = env | {"PIPELINES_OPS_PORT": str(self.ops_ports[service, mode])}
        p = self.running[service, mode] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}", mode], cwd=ROOT, env=env, stdout=out, stderr=out
        )
        out.close()
        if os.getpriority(os.PRIO_PROCESS, 0) != BASE_NICE:  # started while the load driver's priority is raised
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, p.pid, BASE_NICE)

    def start_all(self, modes: tuple[str, ...] = MODES) -> None:
        for service in self.services:
            for mode in modes:
                self.start(service, mode)

    def kill(self, service: str, mode: str) -> None:
        p = self.running[service, mode]
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)

    def kill_all(self, modes: tuple[str, ...] = MODES) -> None:
        """SIGKILL to every process of these kinds at once, then wait until they are gone."""
        victims = [p for (_, m), p in self.running.items() if m in modes and p.poll() is None]
        for p in victims:
            p.send_signal(signal.SIGKILL)
        for p in victims:
            p.wait(timeout=10)

    def signal_all(self, sig: signal.Signals, modes: tuple[str, ...] = MODES) -> None:
        """``sig`` (SIGSTOP, SIGCONT) to every running process of these kinds."""
        for (_, m), p in self.running.items():
            if m in modes and p.poll() is None:
                p.send_signal(sig)

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
        for i in range(1, nodes + 1):  # its data goes: no need for a clean shutdown (~10 s a node), nor to resume one
            with contextlib.suppress(ProcessLookupError, FileNotFoundError, ValueError):
                os.kill(kafka_pid(stack, i), signal.SIGKILL)
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
    on a connection error or a 5xx (for up to ``give_up_s``; after the Retry-After the answer gives, else after
    0.5 s, doubled at each try up to 2 s), and every 2xx answer is recorded as acknowledged."""

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
    began: float = 0.0  # when the load began and ended (time.monotonic())
    ended: float = 0.0
    sent_at: list[float] = field(default_factory=list)  # when each command was first sent (time.monotonic())
    failed: list[tuple[float, str, str]] = field(default_factory=list)  # (when sent, service, 5xx or error) of tries
    # numbers for names and phones: from a random start, so two loads on the same services make other people
    _n: Iterator[int] = field(default_factory=lambda: itertools.count(random.randrange(90_000_000)))

    def offered_rate(self) -> float:
        """Commands sent per second (retries not counted), over the time the load ran."""
        return len(self.sent_at) / max((self.ended or time.monotonic()) - self.began, 1e-9)

    def rates(self) -> list[int]:
        """Commands sent in each whole second of the load."""
        per = Counter(int(t - self.began) for t in self.sent_at)
        return [per[i] for i in range(int((self.ended or time.monotonic()) - self.began))]

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
        backoff = 0.25
        while True:
            backoff = min(backoff * 2, 2.0)
            tried = time.monotonic()
            try:
                r = await http.post(self.urls[service] + path, json=body, headers=headers)
                self.statuses[f"{service} {r.status_code}"] += 1
                if r.status_code >= 500:
                    self.failed.append((tried, service, str(r.status_code)))
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
                    with contextlib.suppress(ValueError):
                        backoff = float(r.headers["retry-after"])
            except httpx.HTTPError as exc:
                self.statuses[f"{service} {type(exc).__name__}"] += 1
                self.failed.append((tried, service, type(exc).__name__))
            if time.monotonic() > deadline:
                self.given_up += 1
                return
            await asyncio.sleep(backoff)

    async def run(self, stop: asyncio.Event) -> None:
        """Post until ``stop`` on a fixed schedule (``rate`` a second, however long each takes), then wait for the
        commands in flight (each ends within ``give_up_s``).

        The clients of a real deployment do not share the servers' CPU; here they do, on 2 cores where starting a
        service process alone takes ~2.5 s of CPU. So this thread's priority is raised (nice ``CLIENT_NICE``, when
        the test runs as root) while it posts: else the machine's load would lower the load offered to it."""
        with _priority(CLIENT_NICE):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        services = itertools.cycle(self.urls)
        tasks: set[asyncio.Task[None]] = set()
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
        async with httpx.AsyncClient(timeout=10, limits=limits) as http:
            self.began = due = time.monotonic()
            while not stop.is_set():
                t = asyncio.create_task(self._command(http, next(services)))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                self.sent_at.append(time.monotonic())
                # A fixed schedule: commands due while this process had no CPU go out as soon as it has (up to 5 s
                # of them), so a stall neither lowers the rate nor hides the latency the stall caused.
                due = max(due + 1 / self.rate, time.monotonic() - 5.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(due - time.monotonic(), 0.0))
            self.ended = time.monotonic()
            if tasks:
                await asyncio.gather(*tasks)

    def summary(self) -> str:
        return (
            f"sent {self.sent} ({self.offered_rate():.1f}/s, each second {_spread(self.rates())}), "
            f"acked {self.total_acked()}, replayed {self.replayed}, given up {self.given_up}, "
            f"statuses {dict(self.statuses)}, retry-after {dict(self.retry_after)}"
        )


@contextlib.contextmanager
def _priority(nice: int) -> Iterator[None]:
    """This thread's nice value moved by ``nice`` for the block, if it may be (raising it needs root)."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, before + nice)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


def _spread(values: list[int]) -> str:
    if not values:
        return "-"
    v = sorted(values)
    return f"min {v[0]} median {v[len(v) // 2]} max {v[-1]}"


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


@dataclass(frozen=True)
class Answer:
    """What a watcher saw: for ``what`` (a service, or a process's /readyz), from ``began`` to ``ended``
    (time.monotonic()), ``outcome``."""

    what: str
    began: float
    ended: float
    outcome: str


class ReadYourWrites:
    """Per service, one probe after the other: a command, then a query for it with the command's ``position``
    (read your writes). The query's answer is ``fresh`` (the write is in it), ``stale`` (200 without it: a wrong
    answer, never acceptable), ``behind`` (503 with Retry-After: the read model is not there yet), ``timeout``
    (no answer within the client's 15 s), or ``status N``; a command that fails is ``write status N``, a request
    that fails otherwise ``error <name>``."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self.answers: list[Answer] = []
        self._n = itertools.count(random.randrange(90_000_000))

    def of(self, service: str, began: float = 0.0, ended: float = float("inf")) -> Counter[str]:
        """The outcomes of the service's probes that began and ended within [began, ended]."""
        return Counter(a.outcome for a in self.answers if a.what == service and began <= a.began and a.ended <= ended)

    def outcomes(self) -> Counter[str]:
        return Counter(f"{a.what} {a.outcome}" for a in self.answers)

    def _probe(self, service: str) -> tuple[str, dict[str, Any], Any]:
        """(command path, body, (id, position) → the query's path and how to find the write in its answer)."""
        n = next(self._n)
        body: dict[str, Any]
        if service == "leads":
            source = f"probe-{uuid.uuid4().hex[:8]}"
            body = {"source": source, "contact": {"name": f"Thăm dò {n}", "phone": f"08{n:08d}"}}
            return "/leads", body, lambda i, p: (f"/leads?source={source}&position={p}", "lead_id", i)
        if service == "deals":
            owner = f"u-probe-{uuid.uuid4().hex[:8]}"
            body = {"title": f"Thăm dò {n}", "customer": "Khách", "owner_id": owner}
            return (
                f"/deals?deal_id={uuid.uuid4()}",
                body,
                lambda i, p: (f"/deals?owner_id={owner}&position={p}", "deal_id", i),
            )
        line = {"product": "Tủ mát", "quantity": "1"}
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()  # due before every other order
        body = {"customer": f"Thăm dò {n}", "lines": [line], "due_date": tomorrow}
        return "/orders", body, lambda i, p: (f"/orders?limit=200&position={p}", "order_id", i)

    async def once(self, http: httpx.AsyncClient, service: str) -> Answer:
        began = time.monotonic()
        path, body, query = self._probe(service)
        try:
            w = await http.post(
                self.urls[service] + path, json=body, headers=ADMIN | {"Idempotency-Key": str(uuid.uuid4())}
            )
            if w.status_code >= 300:
                return Answer(service, began, time.monotonic(), f"write status {w.status_code}")
            written = w.json()
            q, key, wanted = query(written["id"], written["position"])
            r = await http.get(self.urls[service] + q, headers=ADMIN)
            if r.status_code == 200:
                found = any(str(item.get(key)) == str(wanted) for item in r.json()["items"])
                outcome = "fresh" if found else "stale"
            elif r.status_code == 503 and r.headers.get("retry-after"):
                outcome = "behind"
            else:
                outcome = f"status {r.status_code}"
        except httpx.TimeoutException:
            outcome = "timeout"
        except httpx.HTTPError as exc:
            outcome = f"error {type(exc).__name__}"
        return Answer(service, began, time.monotonic(), outcome)

    async def run(self, stop: asyncio.Event) -> None:
        async def probe(service: str) -> None:
            async with httpx.AsyncClient(timeout=15) as http:
                while not stop.is_set():
                    self.answers.append(await self.once(http, service))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.5)

        await asyncio.gather(*(probe(s) for s in self.urls))


class Readiness:
    """Every process's ``/readyz``, asked over and over (each at most once a second): ``200``, ``503`` (with the
    checks that failed), or ``no answer`` within the client's 10 s."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self.answers: list[Answer] = []
        self.latest: dict[str, Answer] = {}

    def seconds(self, status: str = "200") -> str:
        """How long the answers with this status took: median and longest."""
        took = sorted(a.ended - a.began for a in self.answers if a.outcome.startswith(status))
        return f"median {took[len(took) // 2]:.2f} s, longest {took[-1]:.2f} s" if took else "-"

    def between(self, began: float, ended: float) -> dict[str, Counter[str]]:
        """Per process, the outcomes of the requests sent after ``began`` and answered before ``ended``."""
        out: dict[str, Counter[str]] = {w: Counter() for w in self.urls}
        for a in self.answers:
            if began <= a.began and a.ended <= ended:
                out[a.what][a.outcome] += 1
        return out

    async def all_say(self, status: str, *, since: float, timeout: float) -> None:
        """Until every process's latest answer to a request sent after ``since`` starts with ``status``."""

        async def agreed() -> bool:
            return all(
                (a := self.latest.get(w)) is not None and a.began >= since and a.outcome.startswith(status)
                for w in self.urls
            )

        try:
            await wait_until(agreed, timeout=timeout, interval=0.2)
        except TimeoutError:
            raise AssertionError(f"not every /readyz says {status} within {timeout} s: {self.latest}") from None

    async def run(self, stop: asyncio.Event) -> None:
        async def ask(what: str, url: str) -> None:
            async with httpx.AsyncClient(timeout=10) as http:
                while not stop.is_set():
                    began = time.monotonic()
                    try:
                        r = await http.get(url)
                        failed = {k: v for k, v in r.json().get("checks", {}).items() if v != "ok"}
                        outcome = f"{r.status_code}" + (f" {failed}" if failed else "")
                    except (httpx.HTTPError, ValueError) as exc:
                        outcome = f"no answer ({type(exc).__name__})"
                    answer = Answer(what, began, time.monotonic(), outcome)
                    self.answers.append(answer)
                    self.latest[what] = answer
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), max(0.0, 1.0 - (answer.ended - began)))

        await asyncio.gather(*(ask(w, u) for w, u in self.urls.items()))


@contextlib.asynccontextmanager
async def watching(*watchers: ReadYourWrites | Readiness) -> Any:
    """The watchers run in the background for the block."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in watchers]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


class WritesHeld:
    """Tables locked against writes (SHARE mode) by transactions of the test's, one per service, while in the block.
    Reads go on; a writer waits for the lock inside its statement. The locks take no transaction id, so they hold no
    event back from the relays (a transaction with one would: they publish only what every older one left behind).

    On a relay's checkpoint table (``relay_checkpoints``): the relay publishes its next batch, has it acknowledged by
    Kafka, and waits to record it; a kill then lands after the publication and before the checkpoint, the window in
    which a crash makes the relay publish again. On a read model's progress table: its projector waits at the start
    of its next batch, having applied none of it.

    A backend waiting for a lock does not notice that its client is gone: it would record the batch of a relay
    killed meanwhile, as if the relay had died just after its checkpoint rather than just before it. So the relays'
    sessions still waiting to write are ended (``end_waiting``) before the locks go."""

    def __init__(self, settings: Settings, tables: dict[str, list[str]], *, end_waiting_at_exit: bool = False) -> None:
        """``tables``: per service, the tables (with their schema) to lock in its database."""
        self.settings = settings
        self.tables = tables
        self.end_waiting_at_exit = end_waiting_at_exit
        self._conns: list[asyncpg.Connection] = []

    @classmethod
    def relay_checkpoints(cls, settings: Settings, services: tuple[str, ...]) -> WritesHeld:
        """The relays' checkpoint tables; their sessions still waiting at the end are ended."""
        tables = {s: [f"{settings.schema_name(s)}.relay_checkpoints"] for s in services}
        return cls(settings, tables, end_waiting_at_exit=True)

    async def __aenter__(self) -> WritesHeld:
        for service, tables in self.tables.items():
            conn = await connect(self.settings.database_url_for(service))
            self._conns.append(conn)
            await conn.execute("BEGIN")
            for t in tables:
                await conn.execute(f"LOCK TABLE {t} IN SHARE MODE")
        return self

    async def __aexit__(self, *_: Any) -> None:
        try:
            if self.end_waiting_at_exit:
                await self.end_waiting()
        finally:
            for conn in self._conns:  # the transaction and its locks end with the session
                try:
                    await asyncio.wait_for(conn.close(), 5)
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    conn.terminate()  # the server went away meanwhile

    async def waiting(self, service: str) -> list[int]:
        """The sessions (pids) waiting to write one of the service's tables held (a relay: with a batch published)."""
        return await self._writers(service, "l.pid")

    async def end_waiting(self) -> list[int]:
        """End every session waiting to write a table held (its process reconnects, if it is alive); their pids."""
        ended = []
        for s in self.tables:
            ended += await self._writers(s, "l.pid, pg_terminate_backend(l.pid)")
        return ended

    async def _writers(self, service: str, what: str) -> list[int]:
        conn = await connect(self.settings.database_url_for(service))
        try:
            rows = await conn.fetch(
                f"""SELECT {what} FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                    WHERE NOT l.granted AND a.query ~* '^[[:space:]]*INSERT INTO'
                      AND l.relation = ANY(SELECT to_regclass(t) FROM unnest($1::text[]) AS t)""",
                self.tables[service],
            )
            return [r[0] for r in rows]
        finally:
            await conn.close()


def active_controller(stack: LocalStack) -> int:
    """The node id of the active KRaft controller of the stack's cluster (the metadata quorum's leader)."""
    endpoints = stack.endpoints()
    libs = sorted((ROOT / ".cache").glob("kafka-*/libs"))[-1]
    done = subprocess.run(
        [
            "java",
            "-Xmx128m",
            "-cp",
            f"{libs}/*",
            str(Path(__file__).with_name("QuorumLeader.java")),
            endpoints.kafka_bootstrap_servers,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout.strip().splitlines()[-1])


def skipped_duplicates(metrics_text: str) -> dict[str, float]:
    """``pipelines_projection_duplicates_total`` per projection in a process's /metrics: the events it read again
    at or below their stream's applied version, and skipped."""
    return {
        sample.labels["projection"]: sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "pipelines_projection_duplicates_total"
    }
