"""The live feed's waits while Kafka does not answer (``shared.messaging.kafka.Backoff``, ``who`` "web.live"), on a
clock the test moves: 1 s doubling to 30 s, from 1 s again after a good connection; a warning at the first failure
and then at most once a minute, counting the attempts; one info line when it connects again. And the feed's check in
/readyz."""

from __future__ import annotations

from structlog.testing import capture_logs

from services.web import live
from shared.messaging.kafka import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail_for(backoff: Backoff, clock: Clock, attempts: int) -> list[float]:
    """``attempts`` failures, each followed by the wait the backoff asks for; the waits."""
    waits = []
    for _ in range(attempts):
        wait = backoff.failed(ConnectionRefusedError("no broker"))
        waits.append(wait)
        clock.now += wait
    return waits


def test_waits_double_from_one_second_to_thirty_and_start_over_after_a_connection() -> None:
    clock = Clock()
    backoff = Backoff(who="web.live", clock=clock)
    with capture_logs():
        assert fail_for(backoff, clock, 8) == [1, 2, 4, 8, 16, 30, 30, 30]
        backoff.connected(partitions=24)
        assert fail_for(backoff, clock, 3) == [1, 2, 4]


def test_an_outage_is_warned_of_once_a_minute_with_the_attempts_and_its_end_once() -> None:
    clock = Clock()
    backoff = Backoff(who="web.live", clock=clock)
    with capture_logs() as logs:
        fail_for(backoff, clock, 10)  # at 0, 1, 3, 7, 15, 31, 61, 91, 121, 151 s
        backoff.connected(partitions=24)  # at 181 s
    warned = [e for e in logs if e["event"] == "web.live.retry"]
    assert [(e["attempts"], e["down_s"], e["log_level"]) for e in warned] == [
        (1, 0, "warning"),
        (7, 61, "warning"),
        (9, 121, "warning"),
    ]
    assert warned[0]["error"] == "ConnectionRefusedError('no broker')" and warned[0]["next_s"] == 1
    connected = [e for e in logs if e["event"] == "web.live.connected"]
    assert connected == [
        {"event": "web.live.connected", "log_level": "info", "partitions": 24, "failed_attempts": 10, "down_s": 181}
    ]


def test_a_new_outage_is_warned_of_at_once() -> None:
    clock = Clock()
    backoff = Backoff(who="web.live", clock=clock)
    with capture_logs() as logs:
        backoff.connected(partitions=24)  # a first connection: no outage to tell of
        fail_for(backoff, clock, 2)
        backoff.connected(partitions=24)
        fail_for(backoff, clock, 1)  # 3 s after the last warning, but another outage
    assert [e["event"] for e in logs] == [
        "web.live.connected",
        "web.live.retry",
        "web.live.connected",
        "web.live.retry",
    ]
    assert "failed_attempts" not in logs[0] and logs[2]["failed_attempts"] == 2
    assert logs[3]["attempts"] == 1


def test_the_feed_is_ready_when_it_reads_or_waits_for_topics_not_when_kafka_is_away() -> None:
    hub = live.Hub()
    assert hub.readiness() == "not connected to Kafka"
    hub.waiting = ("pipelines.alerts", "pipelines.deals.events")
    assert hub.readiness() == "ok; waiting for topics: pipelines.alerts, pipelines.deals.events"
    hub.waiting, hub.connected = (), True
    assert hub.readiness() == "ok"
