"""Kafka helpers every process uses: topic names, explicit topic creation, admin client and consumer lifetime, and
the waits of a reader that retries while Kafka does not answer (``Backoff``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError, SaslAuthenticationFailed

DEFAULT_PARTITIONS = 6
TOPIC_ALREADY_EXISTS = 36
UNKNOWN_TOPIC = 3
TOPIC_CHECK_S = 1.0  # how often a consumer waiting for its topics looks for them
TOPIC_WAIT_LOG_S = 60.0  # how often it says it still waits

log = structlog.get_logger(__name__)


def events_topic(service: str) -> str:
    """The one topic a service publishes its events to."""
    return f"pipelines.{service}.events"


class TopicMismatchError(RuntimeError):
    """A topic exists with other settings than the ones this code declares."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 1
    # Topics keep everything: read models are rebuilt by replaying them from the beginning.
    retention_ms: int = -1


class KafkaCredentialsError(RuntimeError):
    """Kafka refused this process's SASL credentials: retrying cannot help, so the process stops and says so."""


async def refuse_wrong_credentials(bootstrap_servers: str, options: dict[str, Any]) -> None:
    """After a failed bootstrap: raise ``KafkaCredentialsError`` if the first broker refuses the SASL credentials.

    aiokafka only logs why it could not bootstrap and raises "Unable to bootstrap", a network fault's words, so a
    wrong password would be retried like a broker still starting (for a minute, then that message). One direct
    connection tells them apart; anything else it meets is left to the caller's retries."""
    if not str(options.get("security_protocol", "")).startswith("SASL"):
        return
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    sasl = {k: options.get(k) for k in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password")}
    try:
        conn = await create_conn(
            host,
            int(port),
            security_protocol=options["security_protocol"],
            ssl_context=options.get("ssl_context"),
            request_timeout_ms=10_000,
            **sasl,
        )
    except SaslAuthenticationFailed as exc:
        raise KafkaCredentialsError(
            f"Kafka refused the credentials of user {sasl['sasl_plain_username']!r} ({sasl['sasl_mechanism']}) at "
            f"{host}:{port}: check PIPELINES_KAFKA_SASL_USERNAME and PIPELINES_KAFKA_SASL_PASSWORD ({exc})"
        ) from None
    except (OSError, KafkaError, TimeoutError):
        return
    conn.close()


@asynccontextmanager
async def admin_client(
    bootstrap_servers: str, *, wait_s: float = 60.0, **options: Any
) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client (``options``: security settings), retrying the first connection while a broker starts."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=30000, **options)
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            await admin.close()
            await refuse_wrong_credentials(bootstrap_servers, options)
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap_servers: str, specs: Iterable[TopicSpec], *, wait_s: float = 60.0, **options: Any
) -> None:
    """Create each topic with its explicit partitions; an existing one must have the same partition count.
    ``wait_s``: how long to retry the first connection (``admin_client``; 0: once, for a caller that retries itself).
    ``options``: the client's security settings (``Settings.kafka_options()``)."""
    specs = list(specs)
    async with admin_client(bootstrap_servers, wait_s=wait_s, **options) as admin:
        response = await admin.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=s.replication_factor,
                    topic_configs={"retention.ms": str(s.retention_ms)},
                )
                for s in specs
            ]
        )
        for topic, code, *rest in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"creating topic {topic} failed: error {code} {rest}")
        for _ in range(100):  # a new topic's metadata reaches the broker's cache a moment after creation
            described = {t["topic"]: t for t in await admin.describe_topics([s.name for s in specs])}
            if all(described.get(s.name, {}).get("partitions") for s in specs):
                break
            await asyncio.sleep(0.1)
    for s in specs:
        got = len(described[s.name]["partitions"])
        if got != s.partitions:
            raise TopicMismatchError(f"topic {s.name} has {got} partitions, this code declares {s.partitions}")


async def topic_configs(bootstrap_servers: str, topics: Iterable[str], name: str, **options: Any) -> dict[str, str]:
    """The effective value of one config (``max.message.bytes``, say) of each topic: its own or the broker's."""
    topics = list(topics)
    async with admin_client(bootstrap_servers, **options) as admin:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, {name: None}) for t in topics]
        )
    found: dict[str, str] = {}
    for response in responses:
        for error_code, error_message, _kind, topic, entries in response.resources:
            if error_code:
                raise RuntimeError(f"describing topic {topic} failed: error {error_code} {error_message}")
            for entry in entries:
                if entry[0] == name:
                    found[topic] = entry[1]
    missing = set(topics) - set(found)
    if missing:
        raise RuntimeError(f"topics {sorted(missing)} have no {name}")
    return found


async def kafka_ready(bootstrap_servers: str, timeout_s: float = 3.0, **options: Any) -> bool:
    """A broker answers a metadata request within the timeout."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000), **options
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            await admin.describe_cluster()
        return True
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        await admin.close()


async def delete_topics(bootstrap_servers: str, names: Iterable[str], **options: Any) -> None:
    async with admin_client(bootstrap_servers, **options) as admin:
        response = await admin.delete_topics(list(names))
        for topic, code, *_ in response.topic_error_codes:
            if code not in (0, UNKNOWN_TOPIC):
                raise RuntimeError(f"deleting topic {topic} failed: error {code}")


async def read_whole_topic(
    bootstrap_servers: str, topic: str, *, timeout_s: float = 60.0, **options: Any
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record now in ``topic`` (up to the end offsets seen at the start), each partition in its order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        async with admin_client(bootstrap_servers, **options) as admin:
            (described,) = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        if not partitions:
            raise LookupError(f"no topic {topic!r} on {bootstrap_servers}")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        out: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(timeout_s):
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                for tp, records in (await consumer.getmany(*partitions, timeout_ms=500)).items():
                    out.extend(r for r in records if r.offset < end[tp])
        return out
    finally:
        await stop_consumer(consumer)


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer. aiokafka's group-less consumer, stopped soon after start, re-raises its own task's
    cancellation from ``stop()``: that one is swallowed, a cancellation of the calling task is not."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def wait_for_topics(
    consumer: AIOKafkaConsumer,
    topics: Iterable[str],
    stop: asyncio.Event,
    *,
    who: str,
    missing: Callable[[list[str]], object] | None = None,
) -> bool:
    """Wait until ``topics`` all exist, as the started ``consumer`` sees them; False if ``stop`` came first.

    It looks once a second, says so once a minute, and ends at once when stopped. ``missing``, if given, is told
    the missing topics at every look, and ``[]`` once they are all there (a runner's /readyz and gauge)."""
    wanted = set(topics)
    loop = asyncio.get_running_loop()
    started, said = loop.time(), None
    while absent := sorted(wanted - await consumer.topics()):
        if missing is not None:
            missing(absent)
        if said is None or loop.time() - said >= TOPIC_WAIT_LOG_S:
            said = loop.time()
            log.warning("kafka.waiting_for_topics", who=who, missing=absent, waited_s=round(said - started))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TOPIC_CHECK_S)
        if stop.is_set():
            return False
    if missing is not None:
        missing([])
    if said is not None:
        log.info("kafka.topics_present", who=who, waited_s=round(loop.time() - started))
    return True


async def subscribe_when_present(
    consumer: AIOKafkaConsumer,
    topics: Iterable[str],
    stop: asyncio.Event,
    *,
    who: str,
    missing: Callable[[list[str]], object] | None = None,
    listener: ConsumerRebalanceListener | None = None,
) -> bool:
    """Subscribe a started consumer to ``topics`` once they all exist (``wait_for_topics``), with ``listener`` told
    of its rebalances; False if ``stop`` came first.

    A consumer made with its topics waits in ``start()`` for a missing one, asking every 100 ms (an error line each
    time), for its request timeout (40 s), deaf to a stop: a projector on a topic another service makes (the
    agenda's on the alerts topic) took 40 s to end on SIGTERM. Here it looks once a second, says so once a minute,
    and ends at once when stopped; a topic made later is consumed from then on."""
    wanted = sorted(set(topics))
    if not await wait_for_topics(consumer, wanted, stop, who=who, missing=missing):
        return False
    consumer.subscribe(topics=wanted, listener=listener)
    return True


@dataclass(kw_only=True)
class Backoff:
    """The waits of a reader that retries while Kafka does not answer: ``first_s`` doubling up to ``most_s``, from
    ``first_s`` again after a good connection. It warns ``<who>.retry`` at the first failure, then at most once every
    ``say_every_s`` while the outage lasts (with the attempts so far), and says ``<who>.connected`` at info at every
    good connection (after an outage, with how long and how many attempts). Its users: the web board's live feed
    (``who`` is ``web.live``) and the revocation list (``auth.revocations``). ``clock``: for tests."""

    who: str
    first_s: float = 1.0
    most_s: float = 30.0
    say_every_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0  # attempts failed since the last good connection
    wait_s: float = 0.0  # the last wait
    down_since: float = 0.0
    said_at: float | None = None

    def failed(self, exc: BaseException) -> float:
        """Count a failed attempt, warn if it is time to; how long to wait before the next."""
        now = self.clock()
        if not self.failures:
            self.down_since = now
        self.failures += 1
        self.wait_s = min(self.wait_s * 2, self.most_s) if self.failures > 1 else self.first_s
        if self.said_at is None or now - self.said_at >= self.say_every_s:
            self.said_at = now
            down_s = round(now - self.down_since)
            log.warning(f"{self.who}.retry", error=repr(exc), attempts=self.failures, down_s=down_s, next_s=self.wait_s)
        return self.wait_s

    def connected(self, **fields: object) -> None:
        """A good connection: say so, with ``fields`` (after an outage, how long and how many attempts), and start
        over."""
        if self.failures:
            fields |= {"failed_attempts": self.failures, "down_s": round(self.clock() - self.down_since)}
        log.info(f"{self.who}.connected", **fields)
        self.failures, self.wait_s, self.said_at = 0, 0.0, None
