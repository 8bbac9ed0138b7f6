"""One revocation list for every API: signing out revokes the token's id (``jti``) until it expires, everywhere.

- The medium is Kafka, the one thing every API process shares (each service may have its own database): the topic
  ``<topic_prefix>.auth.revocations``, one partition, kept as long as a token may live plus an hour
  (``PIPELINES_JWT_MAX_LIFETIME_S``: a revocation older than that names a token that has expired anyway). A message
  is ``{"jti": …, "exp": …}``, keyed by the jti.
- Every API process, and every web board replica, keeps a ``RevocationList``: it reads the topic from its
  beginning without a consumer group (each process needs every revocation) and keeps each id in memory until the
  token's expiry. A message ``{"sid": …, "exp": …}`` (keyed ``"sid:" + sid``) ends a sign-in session: it is kept as
  ``"sid:" + sid`` until ``exp`` (the session's last token's expiry), and the verifier refuses every token whose
  ``sid`` claim names it (decision 0022). ``shared.edge.auth.TokenVerifier`` asks it on every request, for tokens it remembers as verified too.
  A revocation reaches every reader within about a second (``POLL_MS``).
- ``readiness()``: "ok" once the process has read everything the topic held when it started reading, so a new
  replica takes no traffic while it would still accept a token signed out before it started; before that
  "catching up", and why when it cannot read the topic (``run`` tries again after 1 s doubling to 30 s, warning
  ``auth.revocations.retry`` once a minute: ``shared.messaging.kafka.Backoff``).
- ``publish`` (a token) and ``publish_session`` (every token of a session): what signing out calls (the sign-in
  service): onto the topic for the others, then into this process's own list.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.messaging.kafka import Backoff, TopicSpec, ensure_topics, stop_consumer
from shared.ops.settings import Settings

log = structlog.get_logger(__name__)
POLL_MS = 250  # how long one read of the topic waits for a new revocation (and a stop)
RETENTION_MARGIN_S = 3600  # kept beyond the longest token lifetime
FORGET_AFTER_S = 120  # an id is kept this long past its token's expiry (beyond the verifier's leeway)
PUBLISH_TIMEOUT_S = 10.0
SESSION_PREFIX = "sid:"  # a revoked session's entry in the list (a jti never starts so: token_urlsafe has no ':')


def revocations_topic(settings: Settings) -> str:
    return f"{settings.topic_prefix}.auth.revocations"


def topic_spec(settings: Settings) -> TopicSpec:
    """The topic as every process declares it: one partition, kept as long as a token may live (plus an hour)."""
    retention_s = settings.jwt_max_lifetime_s + RETENTION_MARGIN_S
    return TopicSpec(revocations_topic(settings), 1, settings.kafka_replication_factor, retention_ms=retention_s * 1000)


def parse(value: bytes | None) -> tuple[str, float] | None:
    """A message's (jti, exp), or ("sid:" + sid, exp) for a session's; None for anything else (skipped)."""
    try:
        body = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    jti, sid, exp = body.get("jti"), body.get("sid"), body.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    if isinstance(jti, str) and jti and sid is None:
        return jti, float(exp)
    if isinstance(sid, str) and sid and jti is None:
        return SESSION_PREFIX + sid, float(exp)
    return None


class RevocationList:
    """The token ids this process refuses, each until its token's expiry (``jti in revocations``).

    Without settings (unit tests), a list of this process only: ``publish`` revokes here and nowhere else."""

    def __init__(self, settings: Settings | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._next_offset: int | None = None  # where reading resumes after a reconnection
        self._next_prune = 0.0
        self.caught_up = False
        self.problem: str | None = None  # why the topic cannot be read now

    def __contains__(self, token_id: object) -> bool:
        return token_id in self._expiry

    def __len__(self) -> int:
        return len(self._expiry)

    def revoke(self, token_id: str, expires: float) -> None:
        if expires > self._expiry.get(token_id, float("-inf")):
            self._expiry[token_id] = expires
        self._prune()

    def _prune(self) -> None:
        now = self._clock()
        if now < self._next_prune:
            return
        self._next_prune = now + 60
        for token_id in [t for t, exp in self._expiry.items() if exp + FORGET_AFTER_S < now]:
            del self._expiry[token_id]

    def readiness(self) -> str:
        if self.caught_up and self.problem is None:
            return "ok"
        return self.problem or "catching up with the revoked tokens"

    async def publish(self, token_id: str, expires: float) -> None:
        """Revoke in every process that reads the topic, and here at once; raises when Kafka does not take it (then
        nothing is revoked, here neither, and the caller says so: the user may try again)."""
        await self._publish({"jti": token_id, "exp": expires}, token_id, expires)

    async def publish_session(self, session_id: str, expires: float) -> None:
        """Revoke every token of the sign-in session ``session_id`` (their ``sid``) that expires by ``expires``, as
        ``publish`` does for one token."""
        await self._publish({"sid": session_id, "exp": expires}, SESSION_PREFIX + session_id, expires)

    async def _publish(self, message: dict[str, object], entry: str, expires: float) -> None:
        s = self._settings
        if s is None:
            self.revoke(entry, expires)
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap_servers, acks="all", request_timeout_ms=10_000, **s.kafka_options()
        )
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await producer.start()
                value = json.dumps(message).encode()
                await producer.send_and_wait(revocations_topic(s), value, key=entry.encode())
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()
        self.revoke(entry, expires)
        log.info("auth.session_revoked" if "sid" in message else "auth.token_revoked", expires=expires)

    async def run(self, stop: asyncio.Event, *, backoff: Backoff | None = None) -> None:
        """Read the topic (declaring it first) until ``stop``; reconnect on failure, resuming where it was, after
        ``backoff``'s wait (``shared.messaging.kafka.Backoff``: 1 s doubling to 30 s; ``auth.revocations.retry`` at
        the first failure and then once a minute, ``auth.revocations.connected`` when it reads again)."""
        s = self._settings
        if s is None:
            raise ValueError("a revocation list without settings has no topic to read")
        tp = TopicPartition(revocations_topic(s), 0)
        backoff = backoff or Backoff(who="auth.revocations")
        while not stop.is_set():
            consumer = AIOKafkaConsumer(
                bootstrap_servers=s.kafka_bootstrap_servers,
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # an offset gone by retention: from the oldest kept
                **s.kafka_options(),
            )
            try:
                # one try: the backoff spaces the attempts (admin_client alone retries a minute, deaf to stop)
                await ensure_topics(s.kafka_bootstrap_servers, [topic_spec(s)], wait_s=0, **s.kafka_options())
                await consumer.start()
                consumer.assign([tp])
                if self._next_offset is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, self._next_offset)
                end = (await consumer.end_offsets([tp]))[tp]
                self.problem = None
                backoff.connected()
                while not stop.is_set():
                    batch = await consumer.getmany(tp, timeout_ms=POLL_MS, max_records=1000)
                    for record in batch.get(tp, []):
                        self._apply(record.value)
                        self._next_offset = record.offset + 1
                    if not self.caught_up and await consumer.position(tp) >= end:
                        self.caught_up = True
                        log.info("auth.revocations.caught_up", revoked=len(self._expiry))
                    self._prune()
            except Exception as exc:  # Kafka away: tokens revoked meanwhile reach this process once it reads again
                self.problem = f"not reading the revoked tokens: {type(exc).__name__}"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff.failed(exc))
            finally:
                await _stop(consumer)

    def _apply(self, value: bytes | None) -> None:
        parsed = parse(value)
        if parsed is None:
            log.warning("auth.revocations.skipped", reason="not a revocation")
            return
        self.revoke(*parsed)


async def _stop(consumer: AIOKafkaConsumer) -> None:
    try:
        await stop_consumer(consumer)
    except Exception as exc:  # Kafka away: the next read starts a new consumer
        log.debug("auth.revocations.stop_failed", error=repr(exc))
