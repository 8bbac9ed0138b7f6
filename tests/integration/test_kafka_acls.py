"""Kafka with SASL/SCRAM and ACLs (``scripts/stack --secure``): each service's credentials write its own topic and
read what it subscribes to, and nothing else.

The session's secure stack (``secure_stack``, testkit/secure.py; the secure end-to-end run shares it): SCRAM users
made when the storage was formatted, the StandardAuthorizer, the services' ACLs. The deals relay publishes with the
deals credentials (as its settings give them to every client); the deals credentials cannot write the leads topic,
the leads ones cannot write the deals topic nor read the production topic; the directory writes only its own topic
and every pipeline reads it, and it reads the leads' (conversions linked to customers); the agenda writes only its
own, which deals reads, and reads the deals', leads' and directory's; the webhooks' dispatcher reads, in its own
group, the topics its code subscribes to and writes nothing; a wrong password and a client without SASL do not get in.
"""

from __future__ import annotations

import asyncio
import sys
import time
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from services.webhooks import dispatcher
from services.webhooks import main as webhooks
from shared.edge.revocation import RevocationList, revocations_topic
from shared.messaging.kafka import admin_client, read_whole_topic, subscribe_when_present
from shared.messaging.relay import OutboxRelay
from shared.ops.settings import SERVICES, Settings
from shared.ops.stack import ROOT, Endpoints
from shared.store import NewEvent
from shared.store.postgres import PostgresEventStore
from testkit.events import Counted
from testkit.secure import SecureStack
from testkit.services import drop_everything, isolated_settings, process_env
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture
async def secure(secure_stack: SecureStack) -> AsyncIterator[SecureStack]:
    """The session's secure stack, without the ``pipelines.*`` topics and groups an earlier test left there, for this
    test alone (another worker's test on it waits)."""
    with secure_stack.exclusive():
        await secure_stack.reset()
        yield secure_stack


async def write(secure: SecureStack, user: str, topic: str, password: str | None = None) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=secure.bootstrap, enable_idempotence=True, acks="all", **secure.options(user, password)
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"k")
    finally:
        await producer.stop()


async def read(secure: SecureStack, user: str, topic: str) -> list[bytes]:
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


async def read_without_group(secure: SecureStack, user: str, topic: str) -> list[bytes]:
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
    secure: SecureStack, pg_store: PostgresEventStore, endpoints: Endpoints
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
    # the directory writes its own topic; every pipeline reads it (their replicas of users and teams, decision 0017)
    await write(secure, "directory", topics["directory"])
    for reader in ("leads", "deals", "production"):
        assert len(await read(secure, reader, topics["directory"])) == 1, f"{reader} reads the directory's events"
    with pytest.raises(TopicAuthorizationFailedError):
        await write(secure, "directory", topics["deals"])
    with pytest.raises(TopicAuthorizationFailedError):
        await write(secure, "deals", topics["directory"])
    # the directory's customer 360 reads what deals and orders did (the relay's one event above)
    assert len(await read(secure, "directory", topics["deals"])) == 1, "the directory reads the deals events"
    # the web board reads every pipeline's events and writes none
    assert len(await read_without_group(secure, "web", topics["deals"])) == 1
    with pytest.raises((TopicAuthorizationFailedError, ClusterAuthorizationFailedError)):  # not even idempotent
        await write(secure, "web", topics["deals"])
    await write(secure, "leads", topics["leads"])
    assert len(await read_whole_topic(secure.bootstrap, topics["leads"], **secure.options("admin"))) == 1
    # the directory links the leads' conversions to customers (decision 0017): it reads the leads' events
    assert len(await read(secure, "directory", topics["leads"])) == 1, "the directory reads the leads events"
    # the agenda (decision 0020) writes its own topic, which deals reads for each open deal's next step; it reads the
    # deals', leads' and directory's events (its replicas of subjects and owners), not production's
    await write(secure, "agenda", topics["agenda"])
    assert len(await read(secure, "deals", topics["agenda"])) == 1, "deals reads the agenda's events"
    for source in ("deals", "leads", "directory"):
        assert len(await read(secure, "agenda", topics[source])) == 1, f"the agenda reads the {source} events"
    with pytest.raises(TopicAuthorizationFailedError):
        await write(secure, "agenda", topics["deals"])
    with pytest.raises(TopicAuthorizationFailedError):
        await write(secure, "deals", topics["agenda"])
    with pytest.raises(TopicAuthorizationFailedError):
        await read(secure, "agenda", topics["production"])
    # no way in without the right password, or without SASL
    with pytest.raises(KafkaConnectionError):
        await write(secure, "deals", topics["deals"], password="not-the-password")
    plain = AIOKafkaProducer(bootstrap_servers=secure.bootstrap, request_timeout_ms=3000)
    with pytest.raises(KafkaConnectionError):
        await plain.start()
    await plain.stop()


async def test_the_webhooks_dispatcher_reads_what_it_delivers_in_its_group_and_writes_nothing(
    secure: SecureStack,
) -> None:
    """Decision 0026: the dispatcher's consumer, as its code makes it (its topics, its group), reads every service's
    events and the alerts with the webhooks' credentials and commits its offsets; the webhooks' user writes no topic,
    reads no dead letters, and uses no other service's group."""
    settings = secure.as_user(Settings(_env_file=None), "webhooks")
    topics = webhooks.topics(settings)
    assert set(topics) == {settings.events_topic(s) for s in SERVICES} | {settings.alerts_topic()}
    async with admin_client(secure.bootstrap, **secure.options("admin")) as admin:
        await admin.create_topics([NewTopic(t, 1, 1) for t in [*topics, settings.dead_letter_topic("deals")]])
    for topic in [*topics, settings.dead_letter_topic("deals")]:
        await write(secure, "admin", topic)
    consumer = dispatcher.consumer(
        f"{settings.topic_prefix}.webhooks", secure.bootstrap, "earliest", settings.kafka_options()
    )
    await consumer.start()
    try:
        assert await subscribe_when_present(consumer, topics, asyncio.Event(), who="test")  # as Queuer.run does
        got: list[str] = []
        async with asyncio.timeout(30):
            while len(got) < len(topics):
                batches = await consumer.getmany(timeout_ms=1000)
                got += [r.topic for records in batches.values() for r in records]
        await consumer.commit()  # its group's offsets: the dispatcher commits after queuing
    finally:
        await consumer.stop()
    assert sorted(got) == sorted(topics)
    for topic in (settings.events_topic("deals"), settings.alerts_topic(), revocations_topic(settings)):
        with pytest.raises((TopicAuthorizationFailedError, ClusterAuthorizationFailedError)):
            await write(secure, "webhooks", topic)
    with pytest.raises(TopicAuthorizationFailedError):  # dead letters are the services' own
        await read(secure, "webhooks", settings.dead_letter_topic("deals"))
    with pytest.raises(GroupAuthorizationFailedError):  # the deals projectors' group is not its
        await read_in_group(secure, "webhooks", settings.events_topic("deals"), "pipelines.deals")


async def read_in_group(secure: SecureStack, user: str, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=secure.bootstrap, group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=False, **secure.options(user),
    )  # fmt: skip
    try:
        await consumer.start()
        await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()


async def test_the_signin_service_alone_revokes_sessions_and_every_reader_reads_the_revocations(
    secure: SecureStack,
) -> None:
    """Issues 20 item 8 and 27: signing out publishes on pipelines.auth.revocations with the sign-in service's
    credentials (it may declare the topic: it can start before any service); the board's and each service's
    credentials read it, and the webhooks' (its API refuses signed-out tokens); none of them may write it (decision
    0022)."""

    def settings(user: str) -> Settings:
        return secure.as_user(Settings(_env_file=None), user)

    stop = asyncio.Event()
    readers = ("web", *SERVICES, "webhooks")
    lists = {user: RevocationList(settings(user)) for user in ("signin", *readers)}
    reading = [asyncio.create_task(lists["signin"].run(stop))]  # declares the topic with the sign-in's rights
    try:

        async def ready() -> bool:
            return all(r.readiness() == "ok" for r in lists.values())

        async def signin_ready() -> bool:
            return lists["signin"].readiness() == "ok"

        await wait_until(signin_ready, timeout=60, interval=0.1)
        reading += [asyncio.create_task(lists[u].run(stop)) for u in readers]
        await wait_until(ready, timeout=60, interval=0.1)
        await lists["signin"].publish_session("signed-out-1", time.time() + 600)

        async def everywhere() -> bool:
            return all("sid:signed-out-1" in r for r in lists.values())

        await wait_until(everywhere, timeout=30, interval=0.1)
        for user in readers:  # only the sign-in service signs out
            with pytest.raises((TopicAuthorizationFailedError, ClusterAuthorizationFailedError)):
                await RevocationList(settings(user)).publish_session("forged", time.time() + 600)
    finally:
        stop.set()
        await asyncio.gather(*reading)


async def test_a_process_with_a_wrong_password_stops_at_once_and_says_why(secure_stack: SecureStack) -> None:
    """A wrong password never becomes right by retrying: a service process given one stops within seconds, its last
    words naming the user Kafka refused, rather than retrying for a minute and ending on "Unable to bootstrap" (the
    words of a network fault)."""
    settings = isolated_settings(secure_stack.endpoints)
    env = process_env(settings) | secure_stack.credentials("deals", "not-the-password")
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.deals", "relay", cwd=ROOT, env=env, stdout=PIPE, stderr=STDOUT
    )
    try:
        async with asyncio.timeout(45):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"still running {time.monotonic() - started:.0f} s after it started with a wrong password")
    finally:
        await drop_everything(secure_stack.as_user(settings, "admin"))
    assert process.returncode not in (0, None)
    last = output.decode().strip().splitlines()[-1]
    assert "Kafka refused the credentials of user 'deals'" in last, last
