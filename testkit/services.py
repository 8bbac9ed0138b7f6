"""Running a service's parts in this test process against the real servers, isolated by name prefixes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from shared.edge.auth import issue_token
from shared.edge.keys import SigningKeys
from shared.edge.revocation import revocations_topic
from shared.edge.service import ServiceCore
from shared.messaging.kafka import delete_topics
from shared.ops.settings import SERVICES, Settings
from shared.ops.stack import ROOT, Endpoints, free_port
from shared.store.db import connect
from testkit.waiting import wait_until

# the tests' one key pair (decision 0022): tokens are signed with TEST_KEYS (``bearer``); the processes under test
# are given the public key only (TEST_JWKS), as every API in a deployment is
TEST_KEYS = SigningKeys.from_seeds({"test": b"t" * 32})
TEST_JWKS = json.dumps(TEST_KEYS.jwks())
KEY_SETTINGS = frozenset(
    {"PIPELINES_JWT_SIGNING_KEYS", "PIPELINES_JWT_ACTIVE_KID", "PIPELINES_JWT_PUBLIC_KEYS", "PIPELINES_JWKS_URL"}
)
# the tests' epoch keyrings (shared/privacy/keyring.py): one file per key store, and each test's key store has its own name
TEST_KEYRINGS = Path(tempfile.gettempdir()) / "pipelines-test-keyrings"


def isolated_settings(endpoints: Endpoints) -> Settings:
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
        kafka_replication_factor=endpoints.replication_factor,
        schema_prefix=f"t{tag}_",
        topic_prefix=f"t{tag}",
        pii_schema=f"t{tag}_pii",
        jwt_public_keys=TEST_JWKS,
        jwt_active_kid=None,
        jwks_url=None,
        pii_master_key=base64.b64encode(b"m" * 32).decode(),
        keyring_dir=str(TEST_KEYRINGS),
        log_json=False,
        # these suites run no directory: owners are tokens' subs nobody registered (decision 0017, "Step 3")
        check_references=False,
    )
    return settings.model_copy(update={"jwt_signing_keys": {}})  # not merged with the environment's (operator_settings)


def operator_settings(settings: Settings) -> Settings:
    """``settings`` as an operator's tools run with them (``pipelines token``, history, the simulation): the tests'
    signing keys besides the public ones. Set after validation: pydantic-settings merges a dict setting given in code
    with the environment's (a shell with ``scripts/stack env`` evaluated holds the local stack's keys)."""
    seeds = {kid: SecretStr(seed) for kid, seed in TEST_KEYS.seeds().items()}
    return settings.model_copy(
        update={"jwt_signing_keys": seeds, "jwt_active_kid": "test", "jwt_public_keys": TEST_JWKS}
    )


def bearer(user: str, *roles: str, team: str | None = "north") -> dict[str, str]:
    token = issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)
    return {"Authorization": f"Bearer {token}"}


async def drop_schemas(settings: Settings) -> None:
    """Every schema of these settings' prefix (``isolated_settings``), with what is in it."""
    conn = await connect(settings.database_url_for("deals"))
    try:
        schemas = await conn.fetch(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE $1",
            settings.schema_prefix + "%",
        )
        for row in schemas:
            await conn.execute(f'DROP SCHEMA "{row["schema_name"]}" CASCADE')
    finally:
        await conn.close()


async def drop_everything(settings: Settings) -> None:
    """The schemas and the topics of these settings."""
    await drop_schemas(settings)
    topics = [settings.events_topic(s) for s in SERVICES] + [settings.dead_letter_topic(s) for s in SERVICES]
    topics += [revocations_topic(settings), settings.alerts_topic()]
    await delete_topics(settings.kafka_bootstrap_servers, topics, **settings.kafka_options())


@asynccontextmanager
async def running(tasks: list[asyncio.Task[Any]], stop: asyncio.Event) -> AsyncIterator[None]:
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://deals")


class SimClock:
    """An injected clock the simulations move forward."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def start_parts(
    core: ServiceCore, stop: asyncio.Event, *, projections: set[str] | None = None
) -> list[asyncio.Task[Any]]:
    """Run a service's relay and projection runners (all, or those named) in this process until ``stop``."""
    relay = core.relay()
    relay.poll_interval = 0.1
    await relay.setup()
    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(relay.run(stop))]
    for runner in core.runners():
        if projections is None or runner.projection.name in projections:
            runner.poll_interval = 0.2
            await runner.setup()
            tasks.append(asyncio.create_task(runner.run(stop)))
    return tasks


async def applied_everything(core: ServiceCore, projection: str) -> bool:
    """The projection's active generation has applied every event of the service's store."""
    storage = core.storage
    async with storage.pool.acquire() as conn:
        stored = await conn.fetchval(f"SELECT count(*) FROM {storage.store.schema}.events")
    async with storage.read_models.connection(projection) as conn:
        applied = await conn.fetchval("SELECT coalesce(sum(version), 0) FROM projection_progress")
    return bool(applied == stored)


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a service process needs to run with these (isolated) settings."""
    inherited = {k: v for k, v in os.environ.items() if k not in KEY_SETTINGS}  # no signing key, whatever the shell has
    return inherited | {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "PIPELINES_KAFKA_REPLICATION_FACTOR": str(settings.kafka_replication_factor),  # the topics they create
        "DATABASE_URL": str(settings.database_url),
        "PIPELINES_SCHEMA_PREFIX": settings.schema_prefix,
        "PIPELINES_TOPIC_PREFIX": settings.topic_prefix,
        "PIPELINES_PII_SCHEMA": settings.pii_schema,
        "PIPELINES_JWT_PUBLIC_KEYS": settings.jwt_public_keys or TEST_JWKS,  # public keys only: none can sign
        **({"PIPELINES_JWKS_URL": settings.jwks_url} if settings.jwks_url else {}),
        "PIPELINES_PII_MASTER_KEY": settings.pii_master_key.get_secret_value() if settings.pii_master_key else "",
        "PIPELINES_KEYRING_DIR": settings.keyring_dir or "",
        "PIPELINES_LOG_JSON": "true",
        "PIPELINES_CHECK_REFERENCES": str(settings.check_references).lower(),  # off: these suites run no directory
        **extra,
    }


def spawn(args: Sequence[str], env: dict[str, str], log: Path, *, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    """``python ARGS`` from the checkout's root (or ``cwd``: another code tree's) (e.g. ``("-m", "services.deals",
    "api")``), its output to ``log`` (read it when a test fails); stop it with ``stop_processes``."""
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


async def wait_ready(urls: dict[str, str], processes: list[subprocess.Popen[bytes]], timeout: float = 120) -> None:
    """Until every url's /readyz answers 200 and every process still runs (TimeoutError after ``timeout``)."""
    async with httpx.AsyncClient() as http:

        async def ready() -> bool:
            for url in urls.values():
                try:
                    if (await http.get(f"{url}/readyz", timeout=2)).status_code != 200:
                        return False
                except httpx.HTTPError:
                    return False
            return all(p.poll() is None for p in processes)

        await wait_until(ready, timeout=timeout, interval=0.5)


def stop_processes(processes: Iterable[subprocess.Popen[bytes]], wait_s: float = 30) -> None:
    """SIGTERM to each process still running, then wait ``wait_s`` for them all; kill one that has not stopped by
    then, and reap it (no zombie left)."""
    procs = list(processes)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@dataclass
class Served:
    """A service built on isolated settings, its relay and read models running in this process, and an HTTP
    client of its app."""

    service: Any
    clock: SimClock
    http: httpx.AsyncClient
    settings: Settings


Serve = Callable[..., Awaitable[Served]]  # the ``serve`` fixture of tests/integration/conftest.py


@asynccontextmanager
async def serving(
    build: Callable[..., Awaitable[ServiceCore]],
    endpoints: Endpoints,
    *,
    start: datetime,
    projections: set[str] | None = None,
) -> AsyncIterator[Served]:
    """``build(settings, clock=…)`` on isolated settings with a ``SimClock`` at ``start``; its topics made, its relay
    and projections (all, or those named) running until the block ends; then everything stopped and dropped."""
    settings = isolated_settings(endpoints)
    clock = SimClock(start)
    service = await build(settings, clock=clock)
    await service.ensure_topics()
    stop = asyncio.Event()
    tasks = await start_parts(service, stop, projections=projections)
    http = client_for(service.app())
    try:
        yield Served(service, clock, http, settings)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await http.aclose()
        await service.close()
        await drop_everything(settings)


@dataclass
class Deployed:
    """A service's process started as a deployment starts it (``deployed``), on a port of its own."""

    settings: Settings
    core: ServiceCore  # the same service built in this process: its store and topics, for the test to look into
    process: subprocess.Popen[bytes]
    port: int
    url: str


DeployDeals = Callable[..., Awaitable[Deployed]]  # the ``deploy_deals`` fixture of tests/integration/conftest.py


@asynccontextmanager
async def deployed(
    build: Callable[..., Awaitable[ServiceCore]], endpoints: Endpoints, mode: str, log: Path, **env: str
) -> AsyncIterator[Deployed]:
    """``build`` on isolated settings, its schema and topics made as a deployment's first start makes them; then
    ``python -m services.<name> MODE`` on a free port with ``env`` besides, until it is ready (its output in ``log``).
    When the block ends the process is stopped, the service closed and everything it made dropped."""
    settings = isolated_settings(endpoints)
    core = await build(settings)
    await core.ensure_topics()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    name_port = {f"PIPELINES_{core.name.upper()}_PORT": str(port)}
    process = spawn(("-m", f"services.{core.name}", mode), process_env(settings, **name_port, **env), log)
    try:
        await wait_ready({core.name: url}, [process])
        yield Deployed(settings, core, process, port, url)
    finally:
        stop_processes([process])
        await core.close()
        await drop_everything(settings)
