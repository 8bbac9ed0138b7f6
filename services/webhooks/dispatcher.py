"""The webhooks' dispatcher process (``python -m services.webhooks dispatcher``; decision 0026): two loops.

- **Queue**: one Kafka consumer in the group ``<topic_prefix>.webhooks`` reads every service's topic and the alerts
  topic; for each record, each enabled subscription whose filter wants its type gets a delivery row (the
  CloudEvent's bytes as on Kafka, its stream = the record's key, its offset); the offsets are committed once the rows
  are. The group shares the partitions among the dispatchers (a stream is one partition's, so one dispatcher's).
- **Send**: claims due deliveries that head their (subscription, stream) — any dispatcher may send any, the claim
  and the head rule keep each stream in order, one at a time — checks the URL's addresses again (DNS rebinding) and
  connects to the address it checked, signs (Standard Webhooks), POSTs without following redirects, records the
  attempt. A failure waits by exponential backoff with full jitter; the last try dead-letters the delivery, which
  then holds its stream; a run of failed attempts disables the subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CommitFailedError, IllegalStateError

from services.webhooks import resolve
from services.webhooks.domain import filters, retry, signing
from services.webhooks.domain.addresses import AllowList
from services.webhooks.domain.errors import WebhookError
from services.webhooks.handlers import Clock
from services.webhooks.sealing import Sealer
from services.webhooks.store import Claimed, Outcome, PostgresStore, Row, Subscription
from shared.messaging.kafka import stop_consumer, subscribe_when_present
from shared.ops import metrics
from shared.ops.version import VERSION

log = structlog.get_logger(__name__)
MAX_ERROR_CHARS = 500
MAX_ANSWER_BYTES = 4096  # read of an answer's body (then the connection is dropped): none of it is kept
USER_AGENT = f"pipelines-webhooks/{VERSION}"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
LANES = 2  # claim-send-record loops per worker, each with half the concurrency: one's database time is another's
# network time
POOL_CONNECTIONS = 8  # connections per pool: httpcore's pool scans every connection for every request it places
# (quadratic in the pool's size), so a worker's concurrency is spread over several small pools. Each is an httpx
# transport used directly: no client layer (redirects, cookies, auth, header merging) to pay for or to get wrong


@dataclass(frozen=True)
class Options:
    allow: AllowList
    policy: retry.Policy
    timeout_s: float = 10.0
    concurrency: int = 64
    lease: timedelta = timedelta(seconds=60)
    poll_s: float = 0.5


class Sender:
    """Claims, signs, posts and records; ``round()`` is one batch (the tests and the benchmark drive it too)."""

    def __init__(self, store: PostgresStore, sealer: Sealer, options: Options, clock: Clock) -> None:
        self.store, self.sealer, self.options, self.clock = store, sealer, options, clock
        per = min(POOL_CONNECTIONS, options.concurrency)
        self.pools = [  # no proxy (a transport takes none from the environment): it connects to the address checked
            httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=per, max_keepalive_connections=per))
            for _ in range(-(-options.concurrency // per))
        ]
        self._timeout = httpx.Timeout(options.timeout_s).as_dict()
        self._keys: dict[tuple[uuid.UUID, bytes], bytes] = {}
        self.wake = asyncio.Event()

    async def close(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.pools))

    def _key(self, sid: uuid.UUID, sealed: bytes) -> bytes:
        k = (sid, sealed)
        if k not in self._keys:
            if len(self._keys) > 1000:
                self._keys.clear()
            self._keys[k] = signing.secret_bytes(self.sealer.open(sid, sealed))
        return self._keys[k]

    def _headers(self, d: Claimed, stamp: int) -> dict[str, str]:
        """Signed with the secret, and with the previous one while its rotation window is open (the claim says)."""
        old = [] if d.previous_sealed_secret is None else [self._key(d.subscription_id, d.previous_sealed_secret)]
        return signing.headers(self._key(d.subscription_id, d.sealed_secret), d.event_id, stamp, d.body, *old)

    async def round(self) -> int:
        """Claim and send one batch; how many were attempted."""
        o = self.options
        claimed = await self.store.claim(self.clock(), o.lease, max(1, o.concurrency // LANES))
        if not claimed:
            return 0
        pools = self.pools  # a batch spread evenly over the clients (each lane's batch is half the concurrency)
        outcomes = await asyncio.gather(*(self._attempt(d, pools[i % len(pools)]) for i, d in enumerate(claimed)))
        disabled = await self.store.record(list(outcomes), self.clock(), o.policy.disable_after)
        for sid in disabled:
            log.warning("webhooks.subscription_disabled", subscription_id=str(sid), reason="failures")
        for out in outcomes:
            metrics.WEBHOOK_ATTEMPTS.labels(out.outcome).inc()
            if out.retry_at is None and not out.delivered:
                metrics.WEBHOOK_DEAD_LETTERED.inc()
        return len(claimed)

    async def _attempt(self, d: Claimed, http: httpx.AsyncHTTPTransport) -> Outcome:
        start = time.perf_counter()
        code: int | None = None
        try:
            target = await resolve.target(d.url, self.options.allow)
            stamp = int(self.clock().timestamp())
            headers = self._headers(d, stamp)
            headers |= {"content-type": CONTENT_TYPE, "user-agent": USER_AGENT, "host": target.url.netloc}
            extensions: dict[str, Any] = {"timeout": self._timeout}
            if target.url.scheme == "https":
                extensions["sni_hostname"] = target.host
            request = httpx.Request("POST", target.pinned_url(), content=d.body, headers=headers, extensions=extensions)
            response = await http.handle_async_request(request)  # a transport follows no redirect
            try:
                code = response.status_code
                async for _ in response.aiter_bytes(MAX_ANSWER_BYTES):
                    break
            finally:
                await response.aclose()
            outcome, error = ("delivered", None) if retry.succeeded(code) else ("http_error", f"answered {code}")
        except WebhookError as exc:
            outcome, error = "refused", exc.message
        except (httpx.HTTPError, OSError) as exc:
            outcome, error = "network_error", f"{type(exc).__name__}: {exc}"
        latency_ms = (time.perf_counter() - start) * 1000
        metrics.WEBHOOK_ATTEMPT_SECONDS.observe(latency_ms / 1000)
        return Outcome(d, outcome, code, latency_ms, error and error[:MAX_ERROR_CHARS], self._retry_at(d, outcome))

    def _retry_at(self, d: Claimed, outcome: str) -> datetime | None:
        if outcome == "delivered":
            return None
        tries = d.tries + 1
        if tries >= self.options.policy.max_attempts:
            return None  # dead-lettered
        return self.clock() + timedelta(seconds=self.options.policy.wait_s(tries))

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._lane(stop) for _ in range(LANES)))

    async def _lane(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent = await self.round()
            except Exception:  # a database blip: wait and go on
                log.exception("webhooks.send_round_failed")
                sent = 0
            if not sent:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.options.poll_s)


def rows_of(records: list[ConsumerRecord[bytes, bytes]], subs: list[Subscription]) -> list[Row]:
    """The deliveries ``records`` make for ``subs`` (a record that is no CloudEvent is skipped)."""
    out: list[Row] = []
    for r in records:
        try:
            event = json.loads(r.value or b"")
            event_id, event_type = str(event["id"]), str(event["type"])
        except (ValueError, KeyError, TypeError):
            continue
        stream = (r.key or b"").decode(errors="replace") or event_id
        for s in subs:
            if filters.wanted(s.event_types, event_type):
                out.append(Row(s.id, event_id, event_type, stream, r.topic, r.partition, r.offset, r.value or b""))
    return out


class Queuer:
    """The Kafka side: records → delivery rows, offsets committed after. Its consumer, started without topics, is
    subscribed to ``topics`` once they all exist (the services make them when they first start): meanwhile it waits,
    saying so once a minute, and a stop ends it at once."""

    def __init__(
        self, store: PostgresStore, consumer: AIOKafkaConsumer, topics: list[str], sender: Sender, clock: Clock
    ) -> None:
        self.store, self.consumer, self.topics, self.sender, self.clock = store, consumer, topics, sender, clock

    async def run(self, stop: asyncio.Event) -> None:
        if not await subscribe_when_present(self.consumer, self.topics, stop, who="webhooks.dispatcher"):
            return
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=500, max_records=2000)
            records = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            queued = await self.store.queue(rows_of(records, await self.store.all(enabled_only=True)), self.clock())
            try:
                await self.consumer.commit()
            except (CommitFailedError, IllegalStateError):  # a rebalance: the partition's new owner reads them again
                log.info("webhooks.commit_after_rebalance")  # and queues nothing twice (unique per event)
            if queued:
                metrics.WEBHOOK_QUEUED.inc(queued)
                self.sender.wake.set()


def consumer(group: str, bootstrap: str, start: str, options: dict[str, Any]) -> AIOKafkaConsumer:
    """The queue's consumer, without topics: made with them, its start would wait for a missing one, an aiokafka
    error line every 100 ms, deaf to a stop, and fail after 40 s (``Queuer.run`` subscribes it)."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset=start, **options
    )


async def run(queuer: Queuer, sender: Sender, stop: asyncio.Event) -> None:
    tasks: list[asyncio.Task[None]] = []
    try:
        await queuer.consumer.start()  # no topics yet: it starts at once
        tasks = [asyncio.create_task(queuer.run(stop)), asyncio.create_task(sender.run(stop))]
        done, _ = await asyncio.wait([*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t in tasks and t.exception():
                raise t.exception()  # type: ignore[misc]
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await stop_consumer(queuer.consumer)
        await sender.close()
