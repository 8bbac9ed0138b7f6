"""The notifier: every poll, what the plan says is due now is delivered, each delivery claimed on its own stream
first (services.agenda.delivery), so that two notifiers, or one restarted, never send one twice.

Metrics (shared.ops.metrics): ``pipelines_notifier_sent_total``, ``pipelines_notifier_failed_total`` (by outcome:
retry | gave_up), ``pipelines_notifier_claims_lost_total``, ``pipelines_notifier_held`` (messages waiting for quiet
hours to end), ``pipelines_notifier_send_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from services.agenda import delivery as dl
from services.agenda.notifier.plan import ROLE_OF_KIND, Activity, Alert, Message, Recipient, Rules, plan
from services.agenda.notifier.render import Envelope, Mail, email_message
from shared.ops.metrics import NOTIFIER_CLAIMS_LOST as CLAIMS_LOST
from shared.ops.metrics import NOTIFIER_FAILED as FAILED
from shared.ops.metrics import NOTIFIER_HELD as HELD
from shared.ops.metrics import NOTIFIER_SEND_SECONDS as SEND_SECONDS
from shared.ops.metrics import NOTIFIER_SENT as SENT
from shared.store import ConcurrencyError, EventStore, NewEvent, StaleTransactionError

log = structlog.get_logger(__name__)
REMEMBERED = 200_000  # delivery streams a process remembers having seen (a few tens of MB at most)


class Source(Protocol):
    """What the notifier reads: the open activities due around ``now``, the active alerts, the recipients."""

    async def activities(self, now: datetime) -> list[Activity]: ...

    async def alerts(self, now: datetime) -> list[Alert]: ...

    async def recipients(self, user_ids: set[str], roles: set[str]) -> dict[str, Recipient]:
        """The users named, and the active users with any of ``roles``."""
        ...


class Sender(Protocol):
    async def send(self, mail: Mail) -> None: ...


@dataclass(frozen=True)
class Options:
    sender: str = "Pipelines <no-reply@pipelines.invalid>"
    board_url: str = "http://127.0.0.1:8100"
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 5
    backoff_base_s: float = 30.0
    backoff_cap_s: float = 3600.0
    concurrency: int = 16
    poll_s: float = 15.0
    rules: Rules = field(default_factory=Rules)

    @property
    def domain(self) -> str:
        return self.sender.rsplit("@", 1)[-1].strip("> ") or "pipelines.invalid"


class Notifier:
    def __init__(
        self,
        store: EventStore,
        source: Source,
        sender: Sender,
        clock: Callable[[], datetime],
        options: Options | None = None,
        name: str | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.sender = sender
        self.clock = clock
        self.options = options or Options()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._finished: set[str] = set()  # streams of deliveries sent or given up (never read again)
        self._seen: set[str] = set()  # streams this process has claimed on, or found there
        self._rng = random.Random()

    async def poll(self) -> dict[str, int]:
        """One round: plan, then deliver what is due; the outcomes counted (sent, failed, lost, skipped, held)."""
        now = self.clock()
        if len(self._seen) > REMEMBERED:  # forgotten now and then: the streams still say what was done
            self._seen.clear()
            self._finished.clear()
        activities = await self.source.activities(now)
        alerts = await self.source.alerts(now)
        users = {a.owner_id for a in activities} | {u for al in alerts for u in al.concerns}
        roles = {ROLE_OF_KIND[al.kind] for al in alerts if not al.concerns and al.kind in ROLE_OF_KIND}
        recipients = await self.source.recipients(users, roles) if users or roles else {}
        p = plan(recipients, activities, alerts, now, self.options.rules)
        HELD.set(p.held)
        counts = {"sent": 0, "failed": 0, "lost": 0, "skipped": 0, "held": p.held, "errors": 0}
        slots = asyncio.Semaphore(self.options.concurrency)

        async def one(m: Message) -> None:
            async with slots:
                counts[await self.deliver(m)] += 1

        for result in await asyncio.gather(*(one(m) for m in p.messages), return_exceptions=True):
            if isinstance(result, Exception):  # the store unreachable for one: the others go on; its lease lapses
                counts["errors"] += 1
                log.warning("notifier.delivery_failed", error=repr(result))
            elif isinstance(result, BaseException):  # cancelled: stopping
                raise result
        return counts

    async def deliver(self, m: Message) -> str:
        """Claim, send, record: ``sent``, ``failed``, ``lost`` (another notifier has it) or ``skipped``."""
        did = dl.delivery_id(m.recipient.user_id, m.item)
        stream = dl.stream_of(did)
        if stream in self._finished:
            return "skipped"
        mid = dl.message_id(did, self.options.domain)
        claimed = await self._claim(m, did, stream, mid)
        if isinstance(claimed, str):
            return claimed
        attempt, version = claimed
        msg = email_message(m, Envelope(self.options.sender, self.options.board_url, mid, self.clock()))
        try:
            with SEND_SECONDS.time():
                await self.sender.send(msg)
        except Exception as exc:  # a refusal, the server gone, a timeout: recorded, retried later
            return await self._failed(stream, did, mid, attempt, version, exc)
        sent = dl.DeliverySent(delivery_id=did, message_id=mid, attempt=attempt, sent_at=self.clock())
        await self._append(stream, sent, version)
        self._finished.add(stream)
        SENT.labels(m.what).inc()
        return "sent"

    async def _claim(self, m: Message, did: uuid.UUID, stream: str, mid: str) -> tuple[int, int] | str:
        """The claim appended: (attempt, the stream's version after it); else why not. A delivery this process has
        not seen is first claimed as new (most are: one round trip); only when its stream exists is it read."""
        now = self.clock()

        def claim(attempt: int) -> dl.DeliveryClaimed:
            lease = now + self.options.lease
            return dl.DeliveryClaimed(
                delivery_id=did,
                recipient_id=m.recipient.user_id,
                item=m.item,
                message_id=mid,
                attempt=attempt,
                lease_until=lease,
                claimed_by=self.name,
                claimed_at=now,
            )

        if stream not in self._seen:
            self._seen.add(stream)
            if await self._append(stream, claim(1), 0):
                return 1, 1
        state = dl.fold([r.to_event() for r in await self.store.read_stream(stream)])
        if dl.finished(state):
            self._finished.add(stream)
            return "skipped"
        if not dl.claimable(state, now):
            return "skipped"
        if not await self._append(stream, claim(state.attempt + 1), state.version):
            CLAIMS_LOST.inc()
            return "lost"
        return state.attempt + 1, state.version + 1

    async def _failed(self, stream: str, did: uuid.UUID, mid: str, attempt: int, version: int, exc: Exception) -> str:
        o = self.options
        now = self.clock()
        retry_at = (
            None
            if attempt >= o.max_attempts
            else now + dl.backoff(attempt, o.backoff_base_s, o.backoff_cap_s, self._rng)
        )
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        failed = dl.DeliveryFailed(
            delivery_id=did, message_id=mid, attempt=attempt, error=error, retry_at=retry_at, failed_at=now
        )
        await self._append(stream, failed, version)
        FAILED.labels("gave_up" if retry_at is None else "retry").inc()
        log.warning("notifier.send_failed", stream=stream, attempt=attempt, error=error, retry_at=str(retry_at))
        return "failed"

    async def _append(self, stream: str, event: dl.DeliveryEvent, expected: int) -> bool:
        try:
            await self.store.append(
                stream,
                [NewEvent(event, occurred_at=self.clock(), metadata={"actor": "system:agenda-notifier"})],
                expected_version=expected,
            )
        except (ConcurrencyError, StaleTransactionError):
            return False  # another notifier claimed it (or took over after our lease lapsed): nothing sent
        return True

    async def run(self, stop: asyncio.Event, on_error: Callable[[Exception], Awaitable[None]] | None = None) -> None:
        while not stop.is_set():
            try:
                await self.poll()
            except Exception as exc:  # a read model not there yet, the database restarting: try again next poll
                log.warning("notifier.poll_failed", error=repr(exc))
                if on_error is not None:
                    await on_error(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.options.poll_s)
