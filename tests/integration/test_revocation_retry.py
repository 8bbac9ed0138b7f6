"""The revocation list without Kafka (an address nobody listens on): not ready, it tries again and again but warns
once within the minute (``auth.revocations.retry``, ``shared.messaging.kafka.Backoff``), and ends at once when
stopped. The real Kafka client on a real socket; tests/unit/shared/test_revocation_backoff.py follows the schedule
over a longer outage on a test clock."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from shared.edge.revocation import RevocationList
from shared.messaging.kafka import Backoff
from shared.ops.stack import Endpoints, free_port
from testkit.kafka import WaitingForTopics
from testkit.services import isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.kafka]


async def test_a_list_without_kafka_is_not_ready_warns_once_however_often_it_tries_and_stops_when_asked(
    endpoints: Endpoints,
) -> None:
    settings = isolated_settings(endpoints).model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})
    revocations, stop = RevocationList(settings), asyncio.Event()
    # short waits, so that a few attempts fail within the minute between warnings
    backoff = Backoff(who="auth.revocations", first_s=0.1)
    with capture_logs() as logs:
        reading = WaitingForTopics(asyncio.create_task(revocations.run(stop, backoff=backoff)), stop, logs)

        async def failed_thrice() -> bool:
            return backoff.failures >= 3

        await wait_until(failed_thrice, timeout=60)
        assert revocations.readiness() == "not reading the revoked tokens: KafkaConnectionError"
        await reading.stopped()
    warned = [e for e in logs if e["event"] == "auth.revocations.retry"]
    assert len(warned) == 1 and warned[0]["attempts"] == 1 and "KafkaConnectionError" in str(warned[0]["error"])
    assert not [e for e in logs if e["event"] == "auth.revocations.connected"]
