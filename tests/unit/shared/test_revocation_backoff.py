"""The revocation list's retries while Kafka does not answer (``RevocationList.run`` with
``shared.messaging.kafka.Backoff``), on a clock the test moves: 1 s doubling to 30 s, ``auth.revocations.retry`` at
the first failure and then at most once a minute with the attempts, ``auth.revocations.connected`` once when it reads
again; not ready meanwhile, ready once caught up, and ended at once by ``stop``. Kafka is stood in for here
(declaring the topic fails, then a consumer reads an empty topic); tests/integration/test_revocation_retry.py and
test_token_revocation.py run the list on the real one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from shared.edge import revocation
from shared.messaging.kafka import Backoff
from shared.ops.settings import Settings
from testkit.kafka import STOPS_WITHIN_S
from testkit.waiting import wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class WaitsOnTheClock(Backoff):
    """The list's backoff, whose waits pass on the test's clock (and are recorded) rather than in real time."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(who="auth.revocations", clock=clock)
        self.test_clock, self.waits = clock, list[float]()

    def failed(self, exc: BaseException) -> float:
        wait = super().failed(exc)
        self.waits.append(wait)
        self.test_clock.now += wait
        return 0.0


class EmptyTopic:
    """A consumer of the revocations topic, which holds nothing."""

    def __init__(self, **_: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    def assign(self, _: list[TopicPartition]) -> None:
        pass

    async def seek_to_beginning(self, _: TopicPartition) -> None:
        pass

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)

    async def getmany(self, *_: TopicPartition, **__: int) -> dict[TopicPartition, list[object]]:
        await asyncio.sleep(0.01)
        return {}

    async def position(self, _: TopicPartition) -> int:
        return 0

    async def stop(self) -> None:
        pass


def kafka_away_for(attempts: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Declaring the topic fails ``attempts`` times (None: always), then works; the topic is empty."""
    tried = 0

    async def ensure_topics(*_: object, **__: object) -> None:
        nonlocal tried
        tried += 1
        if attempts is None or tried <= attempts:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9)]")

    monkeypatch.setattr(revocation, "ensure_topics", ensure_topics)
    monkeypatch.setattr(revocation, "AIOKafkaConsumer", EmptyTopic)


async def test_an_outage_is_retried_after_doubling_waits_and_warned_of_once_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kafka_away_for(10, monkeypatch)
    revocations, stop, clock = revocation.RevocationList(Settings(_env_file=None)), asyncio.Event(), Clock()
    backoff = WaitsOnTheClock(clock)
    with capture_logs() as logs:
        reading = asyncio.create_task(revocations.run(stop, backoff=backoff))

        async def caught_up() -> bool:
            return revocations.caught_up

        await wait_until(caught_up, timeout=STOPS_WITHIN_S)
        stop.set()
        await asyncio.wait_for(reading, STOPS_WITHIN_S)
    assert backoff.waits == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]  # at 0, 1, 3, 7, 15, 31, 61, 91, 121, 151 s
    warned = [e for e in logs if e["event"] == "auth.revocations.retry"]
    assert [(e["attempts"], e["down_s"], e["next_s"], e["log_level"]) for e in warned] == [
        (1, 0, 1, "warning"),
        (7, 61, 30, "warning"),
        (9, 121, 30, "warning"),
    ]
    assert "KafkaConnectionError" in str(warned[0]["error"])
    connected = [e for e in logs if e["event"] == "auth.revocations.connected"]
    assert connected == [
        {"event": "auth.revocations.connected", "log_level": "info", "failed_attempts": 10, "down_s": 181}
    ]
    assert revocations.readiness() == "ok" and backoff.failures == 0


async def test_without_kafka_the_list_is_not_ready_waits_a_second_first_and_stops_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kafka_away_for(None, monkeypatch)
    revocations, stop = revocation.RevocationList(Settings(_env_file=None)), asyncio.Event()
    with capture_logs() as logs:
        reading = asyncio.create_task(revocations.run(stop))  # its own backoff: 1 s first

        async def failed() -> bool:
            return revocations.problem is not None

        await wait_until(failed, timeout=STOPS_WITHIN_S)
        assert revocations.readiness() == "not reading the revoked tokens: KafkaConnectionError"
        stop.set()
        await asyncio.wait_for(reading, STOPS_WITHIN_S)  # in its first wait, which stop ends
    assert [(e["event"], e["attempts"], e["next_s"]) for e in logs] == [("auth.revocations.retry", 1, 1.0)]
