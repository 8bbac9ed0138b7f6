"""A secure stack set up with another topic prefix (``PIPELINES_TOPIC_PREFIX=acme scripts/stack --secure up``)
writes its ACLs for that prefix's names: each service's credentials write ``acme.<service>.events`` and not another
service's, use consumer groups ``acme.<service>...``, and get nothing under the default ``pipelines`` prefix.

Its own broker start (about 10 s, beside the other tests' on the second worker): only a stack set up with the prefix
shows that the script reads it at the first setup, keeps it in the run dir and names it in every ACL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
)

from shared.edge.revocation import revocations_topic
from shared.messaging.kafka import admin_client
from shared.ops.settings import SERVICES, Settings
from shared.ops.stack import LocalStack
from testkit.secure import SecureStack

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.slow]

PREFIX = "acme.t1"  # a dot in it too: the ACLs' prefixes end in a dot of their own


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SecureStack, Path]]:
    run_dir = tmp_path_factory.mktemp("secure-prefix") / "stack"
    stack = LocalStack(run_dir=run_dir, secure=True, topic_prefix=PREFIX)
    try:
        yield SecureStack.of(run_dir, stack.up()), run_dir
    finally:
        stack.down(wipe=True)


async def write(secure: SecureStack, user: str, topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=secure.bootstrap, enable_idempotence=True, acks="all", **secure.options(user)
    )
    try:
        await producer.start()  # refused here for a user that may write no topic (an idempotent producer's id)
        await producer.send_and_wait(topic, b"{}", key=b"k")
    finally:
        await producer.stop()


async def read(secure: SecureStack, user: str, topic: str, group: str) -> int:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=secure.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **secure.options(user),
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
        await consumer.commit()  # the group's offsets: READ on the group
        return sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()


async def test_the_acls_name_the_topic_prefix_the_stack_was_set_up_with(
    prefixed: tuple[SecureStack, Path],
) -> None:
    secure, run_dir = prefixed
    assert (run_dir / "topic-prefix").read_text().strip() == PREFIX
    s = Settings(_env_file=None, topic_prefix=PREFIX)
    default = Settings(_env_file=None, topic_prefix="pipelines")
    # each service declares its own topics with its own credentials (CREATE on <prefix>.*)
    for service in SERVICES:
        async with admin_client(secure.bootstrap, **secure.options(service)) as admin:
            await admin.create_topics(
                [NewTopic(t, 1, 1) for t in (s.events_topic(service), s.dead_letter_topic(service))]
            )
    async with admin_client(secure.bootstrap, **secure.options("admin")) as admin:
        await admin.create_topics([NewTopic(default.events_topic("deals"), 1, 1), NewTopic(s.alerts_topic(), 1, 1)])
    # its own events, its dead letters and the alerts: yes; another service's events, or the default prefix's: no
    await write(secure, "deals", s.events_topic("deals"))
    await write(secure, "deals", s.dead_letter_topic("deals"))
    await write(secure, "deals", s.alerts_topic())
    with pytest.raises(TopicAuthorizationFailedError):
        await write(secure, "deals", s.events_topic("leads"))
    with pytest.raises(TopicAuthorizationFailedError):
        await write(secure, "leads", s.events_topic("deals"))
    with pytest.raises(TopicAuthorizationFailedError):
        await write(secure, "deals", default.events_topic("deals"))
    # consumer groups <prefix>.<service>...: production reads the deals events in its own; not in the default's
    assert await read(secure, "production", s.events_topic("deals"), f"{PREFIX}.production.board.g1") == 1
    with pytest.raises(GroupAuthorizationFailedError):
        await read(secure, "production", s.events_topic("deals"), "pipelines.production.board.g1")
    with pytest.raises(GroupAuthorizationFailedError):
        await read(secure, "production", s.events_topic("deals"), f"{PREFIX}.deals.board.g1")
    # the sign-in service writes the revoked sessions under the prefix, declaring the topic itself; the board no more
    topic = revocations_topic(s)
    async with admin_client(secure.bootstrap, **secure.options("signin")) as admin:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    await write(secure, "signin", topic)
    with pytest.raises((TopicAuthorizationFailedError, ClusterAuthorizationFailedError)):
        await write(secure, "web", topic)
