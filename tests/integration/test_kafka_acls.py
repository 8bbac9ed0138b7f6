"""Kafka with SASL/SCRAM and ACLs (``scripts/stack --secure``): each service's credentials write its own topic and
read what it subscribes to, and nothing else.

A secure stack of this test (its own run dir): SCRAM users made when the storage was formatted, the
StandardAuthorizer, the services' ACLs. The deals relay publishes with the deals credentials (as its settings give
them to every client); the deals credentials cannot write the leads topic, the leads ones cannot write the deals
topic nor read the production topic; a wrong password and a client without SASL do not get in.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import ClusterAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError

from shared.edge.revocation import RevocationList
from shared.messaging.kafka import admin_client, read_whole_topic
from shared.messaging.relay import OutboxRelay
from shared.ops.settings import SERVICES, Settings
from shared.ops.stack import ROOT, Endpoints
from shared.store import NewEvent
from shared.store.postgres import PostgresEventStore
from testkit.events import Counted
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.slow]


@dataclass
class Secure:
    bootstrap: str
    passwords: dict[str, str]

    def options(self, user: str, password: str | None = None) -> dict[str, Any]:
        """A client's security options, as a process's settings give them."""
        return Settings(
            _env_file=None,
            kafka_bootstrap_servers=self.bootstrap,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username=user,
            kafka_sasl_password=password or self.passwords[user],
        ).kafka_options()


def stack(run_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [str(ROOT / "scripts/stack"), "--run-dir", str(run_dir), "--secure", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    run_dir = tmp_path_factory.mktemp("secure") / "stack"
    try:
        out = stack(run_dir, "up")
        bootstrap = next(line.split("=", 1)[1] for line in out.splitlines() if "KAFKA_BOOTSTRAP_SERVERS=" in line)
        assert "export PIPELINES_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT" in out
        passwords = dict(line.split() for line in (run_dir / "kafka-users").read_text().splitlines())
        yield Secure(bootstrap, passwords)
    finally:
        stack(run_dir, "down", "--wipe")


async def write(secure: Secure, user: str, topic: str, password: str | None = None) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=secure.bootstrap, enable_idempotence=True, acks="all", **secure.options(user, password)
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"k")
    finally:
        await producer.stop()


async def read(secure: Secure, user: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=secure.bootstrap,
        group_id=f"pipelines.{user}.acl-test",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **secure.options(user),
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
        return [r.value or b"" for records in batches.values() for r in records]
    finally:
        await consumer.stop()


async def read_without_group(secure: Secure, user: str, topic: str) -> list[bytes]:
    """As the web board reads: every partition assigned, no consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=secure.bootstrap, enable_auto_commit=False, **secure.options(user))
    await consumer.start()
    try:
        async with admin_client(secure.bootstrap, **secure.options(user)) as admin:
            (described,) = await admin.describe_topics([topic])
        tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        batches = await consumer.getmany(timeout_ms=5000)
        return [r.value or b"" for records in batches.values() for r in records]
    finally:
        await consumer.stop()


async def test_a_service_writes_its_own_topic_and_not_another_services(
    secure: Secure, pg_store: PostgresEventStore, endpoints: Endpoints
) -> None:
    topics = {s: f"pipelines.{s}.events" for s in SERVICES}
    async with admin_client(secure.bootstrap, **secure.options("admin")) as admin:
        await admin.create_topics([NewTopic(t, 3, 1) for t in topics.values()])
    # the deals relay, with the deals credentials, publishes the deals events
    await pg_store.append("deal-1", [NewEvent(Counted(n=1))], expected_version=0)
    relay = OutboxRelay(
        pg_store,
        service="deals",
        topic=topics["deals"],
        bootstrap_servers=secure.bootstrap,
        database_url=endpoints.database_url,
        poll_interval=0.1,
        kafka_options=secure.options("deals"),
    )
    await relay.setup()
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:

        async def published() -> bool:
            return len(await read_whole_topic(secure.bootstrap, topics["deals"], **secure.options("admin"))) == 1

        await wait_until(published, timeout=30, interval=0.2)
    finally:
        stop.set()
        await task
    assert len(await read(secure, "production", topics["deals"])) == 1, "production reads the deals events"
    # another service's topic: refused
    with pytest.raises(TopicAuthorizationFailedError):
        await write(secure, "deals", topics["leads"])
    with pytest.raises(TopicAuthorizationFailedError):
        await write(secure, "leads", topics["deals"])
    with pytest.raises(TopicAuthorizationFailedError):
        await write(secure, "production", topics["leads"])
    with pytest.raises(TopicAuthorizationFailedError):
        await read(secure, "leads", topics["production"])
    # the web board reads every pipeline's events and writes none
    assert len(await read_without_group(secure, "web", topics["deals"])) == 1
    with pytest.raises((TopicAuthorizationFailedError, ClusterAuthorizationFailedError)):  # not even idempotent
        await write(secure, "web", topics["deals"])
    await write(secure, "leads", topics["leads"])
    assert len(await read_whole_topic(secure.bootstrap, topics["leads"], **secure.options("admin"))) == 1
    # no way in without the right password, or without SASL
    with pytest.raises(KafkaConnectionError):
        await write(secure, "deals", topics["deals"], password="not-the-password")
    plain = AIOKafkaProducer(bootstrap_servers=secure.bootstrap, request_timeout_ms=3000)
    with pytest.raises(KafkaConnectionError):
        await plain.start()
    await plain.stop()


async def test_the_web_board_alone_revokes_tokens_and_every_api_reads_the_revocations(secure: Secure) -> None:
    """Issue 20 item 8: signing out publishes on pipelines.auth.revocations with the web credentials (the board may
    declare the topic: it can start before any service); each service's credentials read it; none may write it."""

    def settings(user: str) -> Settings:
        return Settings(
            _env_file=None,
            kafka_bootstrap_servers=secure.bootstrap,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username=user,
            kafka_sasl_password=secure.passwords[user],
        )

    stop = asyncio.Event()
    lists = {user: RevocationList(settings(user)) for user in ("web", *SERVICES)}
    reading = [asyncio.create_task(lists["web"].run(stop))]  # declares the topic with the web's rights
    try:

        async def ready() -> bool:
            return all(r.readiness() == "ok" for r in lists.values())

        async def web_ready() -> bool:
            return lists["web"].readiness() == "ok"

        await wait_until(web_ready, timeout=60, interval=0.1)
        reading += [asyncio.create_task(lists[s].run(stop)) for s in SERVICES]
        await wait_until(ready, timeout=60, interval=0.1)
        await lists["web"].publish("signed-out-1", time.time() + 600)

        async def everywhere() -> bool:
            return all("signed-out-1" in r for r in lists.values())

        await wait_until(everywhere, timeout=30, interval=0.1)
        for service in SERVICES:  # only the board signs out
            with pytest.raises((TopicAuthorizationFailedError, ClusterAuthorizationFailedError)):
                await RevocationList(settings(service)).publish("forged", time.time() + 600)
    finally:
        stop.set()
        await asyncio.gather(*reading)
