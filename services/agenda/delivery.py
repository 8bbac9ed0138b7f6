"""A reminder's delivery: the agenda's event contract for the notifier's sends (decision 0020, "Never twice"), and
the pure rules deciding what a notifier may do with one.

Each delivery — one item (an activity falling due, one overdue, an alert, a morning's digest) to one recipient —
is a stream ``agenda-delivery-<uuid5(recipient, item)>``. A notifier appends ``DeliveryClaimed`` at the version it
read (two notifiers race on it; the store lets one win), sends, then appends ``DeliverySent`` or ``DeliveryFailed``
(``retry_at``: when the next attempt may claim it, exponential backoff with jitter; None: given up after the last
attempt). A notifier killed inside the SMTP transaction leaves a claim whose lease lapses: the next claim sends again,
with the same ``Message-ID`` (it is the delivery's), so a mail client shows it once. No personal data: the recipient
is a user id, the address is opened from the directory's replica when the message is written.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from pydantic import AwareDatetime

from shared.core.events import DomainEvent

NS_DELIVERY = uuid.UUID("a9e0da00-de11-5e47-9000-000000000025")
STREAM_PREFIX = "agenda-delivery-"


def delivery_id(recipient_id: str, item: str) -> uuid.UUID:
    """The delivery of ``item`` (e.g. ``activity:<uuid>:due:<iso time>``, ``alert:<uuid>``) to ``recipient_id``."""
    return uuid.uuid5(NS_DELIVERY, f"{recipient_id}\n{item}")


def stream_of(delivery: uuid.UUID) -> str:
    return f"{STREAM_PREFIX}{delivery}"


def message_id(delivery: uuid.UUID, domain: str) -> str:
    """The delivery's ``Message-ID``: the same for every attempt, so a message sent twice reads as one."""
    return f"<{delivery}@{domain}>"


class DeliveryEvent(DomainEvent):
    delivery_id: uuid.UUID


class DeliveryClaimed(DeliveryEvent):
    """A notifier took the delivery (attempt ``attempt``) until ``lease_until``; another may claim it after."""

    event_type: ClassVar[str] = "pipelines.agenda.DeliveryClaimed"
    recipient_id: str
    item: str  # what is delivered: activity:<id>:due:<due_at> | activity:<id>:overdue | alert:<id> | digest:<date>
    message_id: str
    attempt: int
    lease_until: AwareDatetime
    claimed_by: str  # the notifier process (host:pid)
    claimed_at: AwareDatetime


class DeliverySent(DeliveryEvent):
    event_type: ClassVar[str] = "pipelines.agenda.DeliverySent"
    message_id: str
    attempt: int
    sent_at: AwareDatetime


class DeliveryFailed(DeliveryEvent):
    """The SMTP server refused or could not be reached; ``retry_at`` None: the last attempt, given up."""

    event_type: ClassVar[str] = "pipelines.agenda.DeliveryFailed"
    message_id: str
    attempt: int
    error: str
    retry_at: AwareDatetime | None
    failed_at: AwareDatetime


# ---------------------------------------------------------------------------------------------- the rules
@dataclass(frozen=True)
class Delivery:
    """A delivery's state, from its stream."""

    version: int = 0
    attempt: int = 0  # attempts claimed so far
    sent: bool = False
    gave_up: bool = False
    lease_until: datetime | None = None  # of a claim not yet answered
    retry_at: datetime | None = None  # of the last failure


def evolve(d: Delivery, e: DomainEvent) -> Delivery:
    v = d.version + 1
    match e:
        case DeliveryClaimed():
            return Delivery(v, e.attempt, lease_until=e.lease_until)
        case DeliverySent():
            return Delivery(v, d.attempt, sent=True)
        case DeliveryFailed():
            return Delivery(v, d.attempt, gave_up=e.retry_at is None, retry_at=e.retry_at)
    return Delivery(v, d.attempt, d.sent, d.gave_up, d.lease_until, d.retry_at)


def fold(events: list[DomainEvent]) -> Delivery:
    d = Delivery()
    for e in events:
        d = evolve(d, e)
    return d


def claimable(d: Delivery, now: datetime) -> bool:
    """Whether a notifier may claim the delivery now: not sent, not given up, no live lease, its retry time come."""
    if d.sent or d.gave_up:
        return False
    if d.lease_until is not None and d.lease_until > now:
        return False
    return d.retry_at is None or d.retry_at <= now


def finished(d: Delivery) -> bool:
    return d.sent or d.gave_up


def backoff(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> timedelta:
    """The wait after failed attempt ``attempt`` (1, 2, …): ``base·2^(attempt-1)``, capped, with full jitter
    between half and all of it (two notifiers' retries spread out)."""
    full = min(cap_s, base_s * 2 ** (attempt - 1))
    r = (rng or random).uniform(0.5, 1.0)
    return timedelta(seconds=full * r)
