"""Session fixtures: real Kafka and PostgreSQL, resolved by shared.ops.stack (env → testcontainers → local stack).

Each test gets its own PostgreSQL schema and its own Kafka topics. A run with PIPELINES_FAIL_ON_SKIP=1
(as `make test` and CI run it) fails if any test was skipped: a skipped real-server test proves nothing.

Under pytest-xdist (``-n 2``: suites that mostly wait on servers), the controlling process starts the servers
once and hands their endpoints to its workers in the environment; it stops them when the run ends.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import pytest

from shared.messaging.kafka import TopicSpec, delete_topics, ensure_topics
from shared.ops.stack import Endpoints, Servers, start_servers
from testkit.oidc import OidcProvider
from testkit.secure import SecureStack
from testkit.secure import secure_stack as start_secure_stack

REAL_SERVER_MARKERS = ("pg", "kafka", "cluster", "e2e")
OIDC_REDIRECT_URL = "http://127.0.0.1:8000/login/oidc/callback"  # the test provider's client's; never fetched here


def _xdist_controller(config: pytest.Config) -> bool:
    """This process runs xdist workers (and is not one)."""
    return bool(getattr(config.option, "numprocesses", None)) and not os.environ.get("PYTEST_XDIST_WORKER")


def pytest_configure(config: pytest.Config) -> None:
    if _xdist_controller(config):
        servers = start_servers()
        config.stash[_SERVERS] = servers
        e = servers.endpoints
        os.environ |= {
            "KAFKA_BOOTSTRAP_SERVERS": e.kafka_bootstrap_servers,
            "DATABASE_URL": e.database_url,
            "PIPELINES_KAFKA_REPLICATION_FACTOR": str(e.replication_factor),
        }


def pytest_unconfigure(config: pytest.Config) -> None:
    servers = config.stash.get(_SERVERS, None)
    if servers is not None:
        servers.stop()


@pytest.fixture(scope="session")
def endpoints(request: pytest.FixtureRequest) -> Iterator[Endpoints]:
    servers = start_servers()
    request.config.stash[_SOURCE] = servers.endpoints.source
    try:
        yield servers.endpoints
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def secure_stack() -> Iterator[SecureStack]:
    """Kafka with SASL/SCRAM and ACLs, and a PostgreSQL of its own (testkit/secure.py): started when a test first
    asks for it; one start per ``make test`` (``PIPELINES_SECURE_RUN_DIR``), shared by both of its phases."""
    with start_secure_stack() as stack:
        yield stack


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """A real OpenID Provider (npm oidc-provider under Node, testkit/oidc): one client ``pipelines`` whose redirect
    URL is ``OIDC_REDIRECT_URL`` (``restart(redirect_uris=[…])`` for a board's own), no accounts until a test adds
    its users (``add_account``). Started when a test first asks for it, stopped at the end of the session."""
    with OidcProvider(tmp_path_factory.mktemp("oidc"), [OIDC_REDIRECT_URL]) as provider:
        yield provider


@pytest.fixture
async def pg_schema(endpoints: Endpoints) -> AsyncIterator[str]:
    """A fresh schema for this test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
        yield name
        await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _connected(endpoints: Endpoints, schema: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(endpoints.database_url, server_settings={"search_path": schema})
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def pg_conn(endpoints: Endpoints, pg_schema: str) -> AsyncIterator[asyncpg.Connection]:
    async with _connected(endpoints, pg_schema) as conn:
        yield conn


@pytest.fixture
async def pg_conn_other(endpoints: Endpoints, pg_schema: str) -> AsyncIterator[asyncpg.Connection]:
    """A second connection to the test's schema: another session's transaction beside ``pg_conn``'s."""
    async with _connected(endpoints, pg_schema) as conn:
        yield conn


@pytest.fixture
async def kafka_topic(endpoints: Endpoints) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Factory: ``await kafka_topic(partitions=6)`` creates a topic unique to this test; all are deleted after."""
    created: list[str] = []

    async def make(prefix: str = "t", partitions: int = 6) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:12]}"
        await ensure_topics(
            endpoints.kafka_bootstrap_servers,
            [TopicSpec(name, partitions=partitions, replication_factor=endpoints.replication_factor)],
        )
        created.append(name)
        return name

    yield make
    if created:
        await delete_topics(endpoints.kafka_bootstrap_servers, created)


_SOURCE = pytest.StashKey[str]()
_SERVERS = pytest.StashKey[Servers]()


def pytest_report_header(config: pytest.Config) -> str:
    return f"infra: PIPELINES_INFRA={os.environ.get('PIPELINES_INFRA', '(auto)')}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    source = config.stash.get(_SOURCE, None)
    if source:
        terminalreporter.write_line(f"real servers from: {source}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("PIPELINES_FAIL_ON_SKIP") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        if reporter:
            reporter.write_line(f"FAILED: {skipped} test(s) skipped; every test must run here", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
async def pg_pool(endpoints: Endpoints) -> AsyncIterator[asyncpg.Pool]:
    from shared.store.db import create_pool

    pool = await create_pool(endpoints.database_url, min_size=2, max_size=40)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def pg_store(pg_pool: asyncpg.Pool, pg_schema: str):
    """A PostgreSQL event store in this test's schema, with its key store in the same schema."""
    from shared.privacy.pii import PersonalData
    from shared.store.keystore import PostgresKeyStore
    from shared.store.postgres import PostgresEventStore
    from testkit.services import TEST_KEYRINGS

    keys = PostgresKeyStore(pg_pool, master_key=b"k" * 32, keyring_dir=TEST_KEYRINGS, schema=pg_schema)
    await keys.setup()
    store = PostgresEventStore(pg_pool, pg_schema, PersonalData(keys))
    await store.setup()
    return store
