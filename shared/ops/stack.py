"""Where the servers are: endpoints from the environment, else containers, else the project's local stack.

Tests, benchmarks and the demo all resolve Kafka and PostgreSQL the same way:

1. ``KAFKA_BOOTSTRAP_SERVERS`` and ``DATABASE_URL`` in the environment (both, or neither);
2. else testcontainers, when a Docker engine answers (Apache Kafka's own image and PostgreSQL's);
3. else ``scripts/stack`` starts Apache Kafka from Maven jars and a throwaway PostgreSQL on loopback.

``PIPELINES_INFRA=env|testcontainers|local`` forces one of them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[2]
STACK_SCRIPT = ROOT / "scripts" / "stack"
KAFKA_IMAGE = "apache/kafka:4.1.1"
POSTGRES_IMAGE = "postgres:15"

Source = Literal["env", "testcontainers", "local"]


class StackError(RuntimeError):
    """The servers could not be found or started; the message says what to do."""


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap_servers: str
    database_url: str
    source: Source
    replication_factor: int = 1


def docker_available(timeout: float = 2.0) -> bool:
    """True when a Docker engine answers a ping (testcontainers can run)."""
    try:
        import docker

        client = docker.from_env(timeout=int(timeout))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no permission, no package: no Docker
        return False


def choose_source(env: Mapping[str, str], docker_ok: Callable[[], bool]) -> Source:
    """Pick where the servers come from. Pure apart from the ``docker_ok`` probe, which runs only if needed."""
    forced = env.get("PIPELINES_INFRA", "").strip()
    if forced:
        if forced not in ("env", "testcontainers", "local"):
            raise StackError(f"PIPELINES_INFRA={forced!r}: expected env, testcontainers or local")
        if forced == "testcontainers" and not docker_ok():
            raise StackError("PIPELINES_INFRA=testcontainers but no Docker engine answers")
    given = [name for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL") if env.get(name)]
    if forced == "env" or (not forced and given):
        if len(given) != 2:
            missing = {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"} - set(given)
            raise StackError(f"{', '.join(sorted(missing))} not set: give both endpoints or neither")
        return "env"
    if forced:
        return forced  # type: ignore[return-value]
    return "testcontainers" if docker_ok() else "local"


@dataclass
class LocalStack:
    """``scripts/stack`` driven from Python: one run dir, one or three Kafka nodes and a PostgreSQL."""

    run_dir: Path = field(default_factory=lambda: Path(os.environ.get("PIPELINES_RUN_DIR", ROOT / ".run")))
    nodes: int = 1
    secure: bool = False  # SASL/SCRAM and ACLs (``scripts/stack --secure``): fixed when the run dir is first set up
    # the topic prefix a secure stack's ACLs name (PIPELINES_TOPIC_PREFIX at its first setup); None: the environment's
    topic_prefix: str | None = None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        flags = ["--secure"] if self.secure else []
        cmd = [str(STACK_SCRIPT), "--run-dir", str(self.run_dir), "--nodes", str(self.nodes), *flags, *args]
        env = None if self.topic_prefix is None else {**os.environ, "PIPELINES_TOPIC_PREFIX": self.topic_prefix}
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600, env=env)
        if check and done.returncode != 0:
            raise StackError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return done

    def is_up(self) -> bool:
        return self._run("status", check=False).returncode == 0

    def up(self) -> Endpoints:
        return self._parse_env(self._run("up").stdout)

    def endpoints(self) -> Endpoints:
        return self._parse_env(self._run("env").stdout)

    def down(self, *, wipe: bool = False) -> None:
        self._run("down", *(["--wipe"] if wipe else []))

    def stop_node(self, node: int) -> None:
        self._run("stop-node", str(node))

    def start_node(self, node: int) -> None:
        self._run("start-node", str(node))

    @staticmethod
    def _parse_env(text: str) -> Endpoints:
        values = dict(
            line.removeprefix("export ").split("=", 1) for line in text.splitlines() if line.startswith("export ")
        )
        return Endpoints(
            kafka_bootstrap_servers=values["KAFKA_BOOTSTRAP_SERVERS"],
            database_url=values["DATABASE_URL"],
            source="local",
            replication_factor=int(values.get("PIPELINES_KAFKA_REPLICATION_FACTOR", "1")),
        )


def free_port() -> int:
    """A TCP port free on loopback now (the OS picks it; a race with another binder is possible, rare)."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on loopback now: each socket is held until all are bound, so the OS cannot hand
    the same port out twice (one ``free_port()`` after another can: two e2e services once got the same port)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


class ContainerStack:
    """Apache Kafka (KRaft, one node) and PostgreSQL in containers, for machines with a Docker engine."""

    def __init__(self) -> None:
        self._containers: list[Any] = []

    def up(self) -> Endpoints:
        from testcontainers.community.postgres import PostgresContainer
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        pg = PostgresContainer(
            POSTGRES_IMAGE, username="pipelines", password=secrets.token_urlsafe(18), dbname="pipelines"
        )
        pg.start()
        self._containers.append(pg)
        # The advertised address must be the host's port: bind a known free port one to one.
        port = free_port()
        kafka = (
            DockerContainer(KAFKA_IMAGE)
            .with_bind_ports(9092, port)
            .with_env("KAFKA_NODE_ID", "1")
            .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
            .with_env("KAFKA_LISTENERS", "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093")
            .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
            .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
            .with_env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
            .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
            .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
            .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
            .with_env("KAFKA_NUM_PARTITIONS", "6")
            .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
            .with_env("KAFKA_LOG_RETENTION_MS", "-1")
        )
        kafka.start()
        self._containers.append(kafka)
        wait_for_logs(kafka, "Kafka Server started", timeout=120)
        return Endpoints(
            kafka_bootstrap_servers=f"127.0.0.1:{port}",
            database_url=pg.get_connection_url(driver=None),
            source="testcontainers",
        )

    def down(self) -> None:
        while self._containers:
            self._containers.pop().stop()


@dataclass
class Servers:
    """The resolved endpoints plus how to release them (only what this process started is stopped)."""

    endpoints: Endpoints
    stop: Callable[[], None]


def start_servers(env: Mapping[str, str] | None = None) -> Servers:
    env = os.environ if env is None else env
    source = choose_source(env, docker_available)
    if source == "env":
        endpoints = Endpoints(
            kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
            database_url=env["DATABASE_URL"],
            source="env",
            replication_factor=int(env.get("PIPELINES_KAFKA_REPLICATION_FACTOR", "1")),
        )
        return Servers(endpoints, lambda: None)
    if source == "testcontainers":
        containers = ContainerStack()
        return Servers(containers.up(), containers.down)
    stack = LocalStack()
    if stack.is_up():  # a developer's running stack: use it, leave it running
        return Servers(stack.endpoints(), lambda: None)
    return Servers(stack.up(), stack.down)
