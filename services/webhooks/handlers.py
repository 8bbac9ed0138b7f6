"""The webhooks' use cases behind the API (decision 0026): subscriptions (URL checked and resolved, filter checked
against the registered event types, secret made here, sealed, shown once) and their deliveries (listed with their
attempts; a dead one redriven or skipped)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.webhooks import resolve
from services.webhooks.domain import filters, signing
from services.webhooks.domain.addresses import AllowList
from services.webhooks.domain.errors import (
    InvalidSubscriptionError,
    NotDeadError,
    NotFoundError,
    TooManySubscriptionsError,
)
from services.webhooks.sealing import Sealer
from services.webhooks.store import Store, Subscription

MAX_SUBSCRIPTIONS = 200
MAX_DESCRIPTION_CHARS = 500
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Config:
    allow: AllowList
    registered: Collection[str]  # every event type a subscription may name
    rotation_overlap: timedelta = timedelta(hours=24)  # how long the previous secret signs too after a rotation


def shown(s: Subscription, secret: str | None = None) -> dict[str, Any]:
    """A subscription as the API answers it: never its secret, but once, at creation or rotation."""
    out: dict[str, Any] = {
        "id": str(s.id),
        "url": s.url,
        "event_types": s.event_types,
        "description": s.description,
        "enabled": s.enabled,
        "disabled_reason": s.disabled_reason,
        "consecutive_failures": s.consecutive_failures,
        "created_by": s.created_by,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "secret_rotated_at": s.secret_rotated_at,
        "previous_secret_until": s.previous_secret_until,
    }
    if secret is not None:
        out["secret"] = secret
    return out


def _description(text: str) -> str:
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise InvalidSubscriptionError(f"description: at most {MAX_DESCRIPTION_CHARS} characters", field="description")
    return text


class Webhooks:
    def __init__(self, store: Store, sealer: Sealer, config: Config, clock: Clock = utc_now) -> None:
        self.store = store
        self.sealer = sealer
        self.config = config
        self.clock = clock

    async def _checked_url(self, url: str) -> str:
        await resolve.target(url, self.config.allow)  # refuses a private address, an unresolvable host
        return url

    async def create(
        self, url: str, event_types: list[str], description: str, enabled: bool, by: str
    ) -> dict[str, Any]:
        types = filters.check(event_types, self.config.registered)
        checked = await self._checked_url(url)
        if await self.store.count() >= MAX_SUBSCRIPTIONS:
            raise TooManySubscriptionsError(f"at most {MAX_SUBSCRIPTIONS} subscriptions")
        sid, secret, now = uuid.uuid4(), signing.new_secret(), self.clock()
        sub = Subscription(
            sid, checked, types, _description(description), self.sealer.seal(sid, secret), enabled,
            None if enabled else "by_operator", 0, by, now, now, now,
        )  # fmt: skip
        await self.store.add(sub)
        return shown(sub, secret)

    async def get(self, sid: uuid.UUID) -> Subscription:
        if (sub := await self.store.get(sid)) is None:
            raise NotFoundError("no such subscription")
        return sub

    async def change(self, sid: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
        """``changes``: any of url, event_types, description, enabled (re-enabling clears the run of failures)."""
        sub = await self.get(sid)
        new = replace(sub, updated_at=self.clock())
        if "url" in changes:
            new = replace(new, url=await self._checked_url(changes["url"]))
        if "event_types" in changes:
            new = replace(new, event_types=filters.check(changes["event_types"], self.config.registered))
        if "description" in changes:
            new = replace(new, description=_description(changes["description"]))
        if "enabled" in changes and changes["enabled"] != sub.enabled:
            on = bool(changes["enabled"])
            new = replace(new, enabled=on, disabled_reason=None if on else "by_operator", consecutive_failures=0)
        await self.store.update(new)
        return shown(new)

    async def rotate(self, sid: uuid.UUID) -> dict[str, Any]:
        """A new secret; the one it replaces (kept sealed as it was) signs too for the rotation window, so a receiver
        still holding it verifies until it has the new one. A secret older than that is dropped now."""
        sub = await self.get(sid)
        secret, now, overlap = signing.new_secret(), self.clock(), self.config.rotation_overlap
        previous, until = (sub.sealed_secret, now + overlap) if overlap > timedelta(0) else (None, None)
        new = replace(
            sub, sealed_secret=self.sealer.seal(sid, secret), secret_rotated_at=now, updated_at=now,
            previous_sealed_secret=previous, previous_secret_until=until,
        )  # fmt: skip
        await self.store.update(new)
        return shown(new, secret)

    async def delete(self, sid: uuid.UUID) -> None:
        if not await self.store.delete(sid):
            raise NotFoundError("no such subscription")

    async def deliveries(
        self, sid: uuid.UUID, state: str | None, limit: int, before: int | None
    ) -> list[dict[str, Any]]:
        await self.get(sid)
        return await self.store.deliveries(sid, state, limit, before)

    async def delivery(self, sid: uuid.UUID, did: int) -> dict[str, Any]:
        if (d := await self.store.delivery(sid, did)) is None:
            raise NotFoundError("no such delivery")
        return d | {"attempt_log": await self.store.attempts(did)}

    async def settle(self, sid: uuid.UUID, did: int, action: str) -> dict[str, Any]:
        """``redrive`` (tried again from now, its tries counted afresh) or ``skip`` (its stream moves on)."""
        state = {"redrive": "pending", "skip": "skipped"}[action]
        if not await self.store.settle_dead(sid, did, state, self.clock()):
            await self.delivery(sid, did)  # 404 when there is none
            raise NotDeadError(f"delivery {did} is not dead-lettered: only a dead-lettered delivery is {action}d")
        return await self.delivery(sid, did)
