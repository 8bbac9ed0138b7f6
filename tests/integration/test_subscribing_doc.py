"""docs/SUBSCRIBING.md works as written, against events the relay published (real Kafka, PostgreSQL, HTTP):

- its Python consumer, in a fresh virtual environment made with its install line, parses each message with the
  CloudEvents SDK and handles each event once (the relay publishes them twice, as after a crash);
- its kcat line, with Debian's kcat and jq, prints one JSON object per event;
- each event's ``dataschema`` resolves over HTTP (an API serving its schemas) to the published file, and its schema
  check (jsonschema with a registry that fetches) accepts the event's data and refuses a wrong one.

The code and lines are taken from the markdown, so the doc and the tests cannot drift.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import ValidationError  # type: ignore[import-untyped]

from services.alerts.events import AlertCleared, AlertRaised
from shared.edge.http import install_common
from shared.edge.service import serve
from shared.messaging.envelope import CloudEvent
from shared.messaging.relay import OutboxRelay
from shared.ops.stack import ROOT, Endpoints, free_port
from shared.store import NewEvent
from shared.store.postgres import PostgresEventStore
from testkit.kafka import read_records
from testkit.waiting import published, wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

DOC = ROOT / "docs" / "SUBSCRIBING.md"
DOCS_EVENTS = ROOT / "docs" / "events"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


@dataclass
class Published:
    topic: str
    base: str  # the schema base URL the relay wrote, served by a real HTTP server
    bootstrap: str


async def schemas_api(port: int, stop: asyncio.Event) -> asyncio.Task[None]:
    """An API's common routes (install_common: every service's app has them), served over HTTP on ``port``."""
    app = FastAPI()

    async def ready() -> dict[str, str]:
        return {}

    install_common(app, ready, "deals")
    task = asyncio.create_task(serve(app, "127.0.0.1", port, stop))
    async with httpx.AsyncClient() as http:

        async def up() -> bool:
            try:
                return (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(up, timeout=20)
    return task


@pytest.fixture
async def events(pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic) -> AsyncIterator[Published]:
    """Three alerts events on two streams (real types with published schemas), published twice (as after a crash)
    to a topic of this test, their dataschema pointing at a schemas API this fixture serves."""
    topic = await kafka_topic()
    now = datetime(2026, 12, 1, 8, tzinfo=UTC)
    ids = [uuid.uuid4(), uuid.uuid4()]
    for i, alert in enumerate(ids):
        raised = AlertRaised(
            alert_id=alert, service="deals", kind="deal_stuck", entity=f"deal-{i}", summary="Đứng yên 14 ngày",
            details={"stage": "proposal"}, raised_at=now, concerns=("u-lan",),
        )  # fmt: skip
        await pg_store.append(f"alert-{alert}", [NewEvent(raised)], expected_version=0)
    cleared = AlertCleared(alert_id=ids[0], service="deals", kind="deal_stuck", entity="deal-0", cleared_at=now)
    await pg_store.append(f"alert-{ids[0]}", [NewEvent(cleared)], expected_version=1)
    port, stop = free_port(), asyncio.Event()
    server = await schemas_api(port, stop)
    base = f"http://127.0.0.1:{port}/schemas"
    relay = OutboxRelay(
        pg_store,
        service="deals",
        topic=topic,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
        schema_base=base,
    )
    await relay.setup()
    assert await relay.lead()
    try:
        assert await published(relay, 3) == 3
        relay.checkpoint = relay.checkpoint._replace(tx=0, position=0)  # a crashed relay publishes them again
        assert await published(relay, 3) == 3
    finally:
        await relay.close()
    try:
        yield Published(topic, base, endpoints.kafka_bootstrap_servers)
    finally:
        stop.set()
        await server


@dataclass
class SdkLike:
    """What the doc's check reads of a CloudEvents SDK event (the SDK itself runs in the fresh venv's test)."""

    envelope: CloudEvent

    def get_dataschema(self) -> str | None:
        return self.envelope.dataschema

    def get_data(self) -> dict[str, object]:
        return self.envelope.data


async def test_each_events_dataschema_resolves_over_http_and_its_data_follows_it(events: Published) -> None:
    namespace: dict[str, object] = {}
    exec(blocks("python")[1], namespace)  # noqa: S102  # the doc's own schema check (jsonschema, fetching over HTTP)
    check = namespace["check"]

    async with httpx.AsyncClient() as http:
        for record in await read_records(events.bootstrap, events.topic, 6):
            envelope = CloudEvent.from_kafka(record.value)
            assert envelope.dataschema is not None and envelope.dataschema.startswith(events.base + "/events/alerts/")
            answer = await http.get(envelope.dataschema)
            path = envelope.dataschema.removeprefix(events.base + "/")
            assert answer.status_code == 200 and answer.content == (DOCS_EVENTS.parent / path).read_bytes()
            assert answer.json()["$id"].endswith("/schemas/" + path)
            await asyncio.to_thread(check, SdkLike(envelope))  # urllib blocks: off the loop that serves the schemas
            wrong = envelope.model_copy(update={"data": envelope.data | {"alert_id": 42}})
            with pytest.raises(ValidationError, match="42"):
                await asyncio.to_thread(check, SdkLike(wrong))


async def test_the_documented_kcat_line_prints_one_json_object_per_event(events: Published) -> None:
    kcat = next(line for line in blocks("bash") if line.startswith("kcat "))
    assert "-f '%s\\n'" in kcat and " -e " in kcat
    line = kcat.replace("pipelines.deals.events", events.topic)
    env = os.environ | {"KAFKA_BOOTSTRAP_SERVERS": events.bootstrap}
    done = await asyncio.to_thread(
        subprocess.run, ["bash", "-o", "pipefail", "-c", line], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = [json.loads(x) for x in done.stdout.decode().splitlines()]
    assert len(lines) == 6  # each event twice: the topic has both deliveries
    assert {x["type"] for x in lines} == {"pipelines.alerts.AlertRaised", "pipelines.alerts.AlertCleared"}
    assert all(set(x) == {"type", "streamversion", "data"} and x["data"]["service"] == "deals" for x in lines)


def fresh_venv(where: Path) -> Path:
    """A new virtual environment with what the doc's install line installs (pip's cache in the ignored .cache)."""
    python = shutil.which("python3.11") or sys.executable
    subprocess.run([python, "-m", "venv", str(where)], check=True, timeout=120)
    install = next(b for b in blocks("bash") if "pip install" in b).strip()
    assert install.startswith("python3 -m pip install ") and "==" in install, install
    line = install.replace("python3 -m pip", f"{where}/bin/python -m pip", 1)
    env = os.environ | {"PIP_CACHE_DIR": str(ROOT / ".cache" / "pip"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(["bash", "-c", f"{line} --quiet"], check=True, timeout=300, env=env)
    return where / "bin" / "python"


async def test_the_documented_consumer_in_a_fresh_venv_reads_each_event_once(events: Published, tmp_path) -> None:
    python = await asyncio.to_thread(fresh_venv, tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))} | {
        "TOPIC": events.topic,
        "KAFKA_BOOTSTRAP_SERVERS": events.bootstrap,
        "GROUP": f"doc-{uuid.uuid4().hex[:8]}",
        "MAX_MESSAGES": "3",
    }
    process = await asyncio.create_subprocess_exec(
        str(python), "-c", blocks("python")[0], env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, err.decode()[-2000:]
    lines = sorted(out.decode().splitlines())
    assert len(lines) == 3, lines  # three events, each handled once though delivered twice
    assert [line.split()[0] for line in lines] == ["pipelines.alerts.AlertCleared"] + [
        "pipelines.alerts.AlertRaised"
    ] * 2
    assert sorted(line.split()[2] for line in lines) == ["1", "1", "2"]  # stream versions
