"""Retries: exponential backoff with full jitter (a uniformly random wait between 0 and base · 2^(n−1), capped),
so receivers recovering from an outage are not hit by every dispatcher at once."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 8  # attempts of one delivery before it is dead-lettered
    base_s: float = 1.0
    cap_s: float = 3600.0
    disable_after: int = 50  # consecutive failed attempts (any delivery) before the subscription is disabled

    def wait_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** min(attempt - 1, 60))
        return (rng or random).uniform(0, ceiling)


def succeeded(status: int) -> bool:
    """A 2xx answer delivers; anything else (a 3xx included: redirects are not followed) is a failure."""
    return 200 <= status < 300
