"""Lockout and throttling arithmetic, pure (the clock is the caller's).

- **Lockout** counts the failed passwords given for one email (a keyed hash of it: the same rule for an email no one
  has, so the answers tell nothing about who exists): ``max_failures`` failures within ``lock_s`` of the first lock
  the email for ``lock_s`` (423 with Retry-After); while locked even the right password is refused. A success
  clears the count; a failure after the window starts a new count.
- **Throttling** counts attempts per client address in each minute: past ``per_minute``, 429 with Retry-After until
  the next minute. Kept in the process (each replica counts its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_ADDRESSES = 100_000  # addresses a throttle remembers (forgotten all at once past this; a minute's worth anyway)


@dataclass(frozen=True)
class Attempts:
    failures: int = 0
    first_failure: datetime | None = None
    locked_until: datetime | None = None


CLEAR = Attempts()


def locked_for(a: Attempts, now: datetime) -> int | None:
    """Whole seconds the email stays locked (at least 1), or None when it is not locked."""
    if a.locked_until is None or a.locked_until <= now:
        return None
    return max(1, math.ceil((a.locked_until - now).total_seconds()))


def after_failure(a: Attempts, now: datetime, *, max_failures: int, lock_s: int) -> Attempts:
    """The attempts once one more password failed at ``now``: the ``max_failures``-th within the window locks."""
    window = timedelta(seconds=lock_s)
    if a.first_failure is None or now - a.first_failure >= window:
        failures, first = 1, now
    else:
        failures, first = a.failures + 1, a.first_failure
    if failures >= max_failures:
        return Attempts(0, None, now + window)
    locked = a.locked_until if a.locked_until is not None and a.locked_until > now else None
    return Attempts(failures, first, locked)


class Throttle:
    """Attempts per client address per minute (``check`` counts one and says how long to wait when past)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._minute = -1
        self._counts: dict[str, int] = {}

    def check(self, address: str, now: datetime) -> int | None:
        """None: allowed (and counted); else the seconds until the next minute (Retry-After)."""
        minute = int(now.timestamp() // 60)
        if minute != self._minute or len(self._counts) >= MAX_ADDRESSES:
            self._minute, self._counts = minute, {}
        count = self._counts.get(address, 0) + 1
        self._counts[address] = count
        if count <= self.per_minute:
            return None
        return max(1, math.ceil((minute + 1) * 60 - now.timestamp()))
