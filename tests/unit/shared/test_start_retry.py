"""A failed start is retried (shared.store.migrations.retry_setup): transient errors with backoff, a bounded number of
times, each retry logged; any other error at once."""

from __future__ import annotations

import asyncpg
import pytest
from structlog.testing import capture_logs

from shared.store.migrations import retry_setup


class FlakySetup:
    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "set up"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def test_transient_errors_are_retried_with_growing_delays_and_logged() -> None:
    setup = FlakySetup(
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.LockNotAvailableError("canceling statement due to lock timeout"),
        ConnectionRefusedError(111, "Connect call failed"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.SerializationError("could not serialize access"),
    )
    sleeps = Sleeps()
    with capture_logs() as logs:
        assert await retry_setup(setup, "event store", sleep=sleeps, first_delay_s=1.0, max_delay_s=4.0) == "set up"
    assert setup.calls == 6
    assert len(sleeps.delays) == 5
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]  # doubling up to the most, each with jitter in its upper half
    assert all(c / 2 <= d <= c for d, c in zip(sleeps.delays, ceilings, strict=True)), sleeps.delays
    retries = [e for e in logs if e["event"] == "start.retry"]
    assert [e["attempt"] for e in retries] == [1, 2, 3, 4, 5]
    assert all(e["what"] == "event store" and e["log_level"] == "warning" for e in retries)
    assert "DeadlockDetectedError" in retries[0]["error"]


async def test_a_start_still_failing_after_its_attempts_raises_the_last_error() -> None:
    setup = FlakySetup(*(asyncpg.DeadlockDetectedError(f"deadlock {i}") for i in range(5)))
    sleeps = Sleeps()
    with capture_logs() as logs, pytest.raises(asyncpg.DeadlockDetectedError, match="deadlock 2"):
        await retry_setup(setup, "relay", attempts=3, sleep=sleeps)
    assert setup.calls == 3
    assert len(sleeps.delays) == 2
    assert [e["event"] for e in logs] == ["start.retry", "start.retry", "start.failed"]


async def test_an_error_that_is_not_transient_is_not_retried() -> None:
    for error in (asyncpg.InsufficientPrivilegeError("permission denied"), ValueError("bad SQL identifier")):
        setup = FlakySetup(error)
        sleeps = Sleeps()
        with pytest.raises(type(error)):
            await retry_setup(setup, "key store", sleep=sleeps)
        assert setup.calls == 1
        assert sleeps.delays == []
