"""The consumer in docs/SUBSCRIBING.md, run as written against events the relay published."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid

import pytest

from shared.messaging.relay import OutboxRelay
from shared.ops.stack import ROOT, Endpoints
from shared.store import NewEvent
from shared.store.postgres import PostgresEventStore
from testkit.events import Counted
from testkit.waiting import published

pytestmark = [pytest.mark.pg, pytest.mark.kafka]


async def test_the_documented_consumer_reads_each_event_once(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    text = (ROOT / "docs" / "SUBSCRIBING.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    topic = await kafka_topic()
    for v in range(3):
        await pg_store.append("counter-a", [NewEvent(Counted(n=v))], expected_version=v)
    await pg_store.append("counter-b", [NewEvent(Counted(n=9))], expected_version=0)
    relay = OutboxRelay(
        pg_store,
        service="test",
        topic=topic,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
    )
    await relay.setup()
    assert await relay.lead()
    try:
        assert await published(relay, 4) == 4
        relay.checkpoint = relay.checkpoint._replace(tx=0, position=0)  # a crashed relay publishes them again
        assert await published(relay, 4) == 4
    finally:
        await relay.close()
    env = os.environ | {
        "TOPIC": topic,
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
        "GROUP": f"doc-{uuid.uuid4().hex[:8]}",
        "MAX_MESSAGES": "4",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, err.decode()[-2000:]
    lines = out.decode().splitlines()
    assert sorted(lines) == sorted(
        [f"pipelines.test.Counted counter-a {v} 1" for v in (1, 2, 3)] + ["pipelines.test.Counted counter-b 1 1"]
    )
