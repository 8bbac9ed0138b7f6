"""The secure stack (``scripts/stack --secure``: SASL/SCRAM-SHA-512 over TLS and ACLs) the tests that need it share,
and each process's credentials on it, as a deployment gives them (deploy/k8s: a Kafka user per service, one for the
board; SASL_SSL, trusting the CA that signed the brokers' certificate: the run dir's ``tls/ca.pem``).

One start per test run: ``PIPELINES_SECURE_RUN_DIR`` names a run dir its caller owns. ``make test`` sets it, so the
parallel phase's ACL test and the serial phase's end-to-end run share one broker start; the first test that needs
the stack starts it there, nothing here stops it, and ``make test`` wipes it after both phases. Without it, a
session starts one in a temporary dir on first use and wipes it at the end.

Its ACLs name the deployed topics and groups (``pipelines.*``: the prefix is pinned when it is set up), so the tests
on this stack use those names, not a prefix of their own: ``reset`` gives a test a stack without anyone's earlier
topics and groups. (A secure stack set up with another ``PIPELINES_TOPIC_PREFIX`` names that one instead:
tests/integration/test_kafka_acls_prefix.py.)
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from shared.messaging.kafka import admin_client
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints, LocalStack

SECURE_RUN_DIR = "PIPELINES_SECURE_RUN_DIR"
PROTOCOL, MECHANISM = "SASL_SSL", "SCRAM-SHA-512"
DEPLOYED_PREFIX = "pipelines"


@dataclass(frozen=True)
class SecureStack:
    endpoints: Endpoints  # its Kafka (SASL over TLS only) and its own PostgreSQL
    passwords: Mapping[str, str]  # the SCRAM users: admin (super user), each service's (SERVICES), web
    cafile: str  # the run dir's certificate authority (PEM), which signed the brokers' certificate

    @classmethod
    def of(cls, run_dir: Path, endpoints: Endpoints) -> SecureStack:
        """The stack of ``run_dir`` (up): its users' passwords and its CA, as ``scripts/stack`` made them."""
        lines = (run_dir / "kafka-users").read_text().splitlines()
        return cls(endpoints, dict(line.split(" ", 1) for line in lines), str((run_dir / "tls" / "ca.pem").resolve()))

    @property
    def bootstrap(self) -> str:
        return self.endpoints.kafka_bootstrap_servers

    def credentials(self, user: str, password: str | None = None) -> dict[str, str]:
        """A process's Kafka security settings as environment variables: its own user, as deploy/ gives them."""
        return {
            "PIPELINES_KAFKA_SECURITY_PROTOCOL": PROTOCOL,
            "PIPELINES_KAFKA_SASL_MECHANISM": MECHANISM,
            "PIPELINES_KAFKA_SASL_USERNAME": user,
            "PIPELINES_KAFKA_SASL_PASSWORD": password or self.passwords[user],
            "PIPELINES_KAFKA_SSL_CAFILE": self.cafile,
        }

    def as_user(self, settings: Settings, user: str, password: str | None = None) -> Settings:
        """``settings`` on this stack's Kafka with ``user``'s credentials."""
        return settings.model_copy(
            update={
                "kafka_bootstrap_servers": self.bootstrap,
                "kafka_security_protocol": PROTOCOL,
                "kafka_sasl_mechanism": MECHANISM,
                "kafka_sasl_username": user,
                "kafka_sasl_password": SecretStr(password or self.passwords[user]),
                "kafka_ssl_cafile": self.cafile,
            }
        )

    def options(self, user: str, password: str | None = None) -> dict[str, Any]:
        """A client's security options, as a process's settings give them."""
        return self.as_user(Settings(_env_file=None), user, password).kafka_options()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """The stack to one test at a time: pytest-xdist workers share it, and ``reset`` deletes every topic."""
        with _locked(Path(self.cafile).parent.parent, "tests.lock"):
            yield

    async def reset(self) -> None:
        """Delete every ``pipelines.*`` topic (as admin; the consumer groups' offsets on them go with them) and wait
        until they are gone: what an earlier test on the stack left there must not reach the next one's services."""
        async with admin_client(self.bootstrap, **self.options("admin")) as admin:
            for _ in range(100):
                left = [t for t in await admin.list_topics() if t.startswith(f"{DEPLOYED_PREFIX}.")]
                if not left:
                    return
                await admin.delete_topics(left)
                await asyncio.sleep(0.1)
        raise TimeoutError(f"topics not deleted: {left}")


@contextmanager
def _locked(run_dir: Path, name: str = "starting.lock") -> Iterator[None]:
    """One starter at a time (two xdist workers may both need the stack): the second finds it up."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def secure_stack(env: Mapping[str, str] = os.environ) -> Iterator[SecureStack]:
    """The secure stack: the caller's (``PIPELINES_SECURE_RUN_DIR``; started if down, left running) or one of this
    session's own (wiped at the end)."""
    given = env.get(SECURE_RUN_DIR)
    run_dir = Path(given) if given else Path(tempfile.mkdtemp(prefix="pipelines-secure-")) / "stack"
    stack = LocalStack(run_dir=run_dir, secure=True, topic_prefix=DEPLOYED_PREFIX)
    try:
        with _locked(run_dir):
            endpoints = stack.up()  # `up` on a running stack only prints its endpoints
        yield SecureStack.of(run_dir, endpoints)
    finally:
        if not given:
            stack.down(wipe=True)
            run_dir.parent.rmdir()
