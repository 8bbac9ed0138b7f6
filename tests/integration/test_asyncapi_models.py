"""Models generated from the AsyncAPI documents by the official CLI (``asyncapi generate models python``) parse whole
messages the relay published: a service's events topic and the alerts topic, read back from real Kafka."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from shared.core.events import registry
from shared.messaging.kafka import read_whole_topic
from shared.messaging.relay import OutboxRelay
from shared.ops.stack import Endpoints
from shared.privacy.pii import parse_stored
from shared.store import NewEvent
from shared.store.postgres import PostgresEventStore
from testkit.waiting import published
from tests.contract.test_asyncapi import MODELS_ARGS
from tools import asyncapi, asyncapi_cli, contract

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.slow]

PARSE = r"""
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
for message in json.load(open(sys.argv[2])):
    value = json.loads(message["value"])
    package = "alerts_models" if message["topic"].startswith("alerts") else "deals_models"
    name = f"{value['type'].rsplit('.', 1)[1]}V{value['schemaversion']}Message"
    model = getattr(importlib.import_module(f"{package}.{name}"), name).model_validate_json(message["value"])
    data = {k: getattr(model.data, k) for k, v in value["data"].items() if isinstance(v, str | int | bool)}
    data = {k: getattr(v, "value", v) for k, v in data.items()}  # a generated enum's member: its value
    print(json.dumps([type(model).__name__, model.type, model.schemaversion, model.streamid, model.correlationid, data]))
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python (pydantic) models of the deals and the alerts documents, generated once, as two packages."""
    root = tmp_path_factory.mktemp("models")
    (root / "docs").symlink_to(contract.DOCS.parent)  # docs/SUBSCRIBING.md's command, run as written from here
    for name in ("deals", "alerts"):
        args = [a.replace("deals", name) for a in MODELS_ARGS]
        result = asyncapi_cli.run(args, cwd=root, timeout=240)
        assert result.returncode == 0, result.stdout + result.stderr
        (root / f"{name}_models" / "__init__.py").touch()
    return root


def real_events(topic: str) -> list[NewEvent]:
    """The committed examples of ``topic`` (real events of a demo run) that carry no personal field, as events."""
    out = []
    for record in map(json.loads, asyncapi.EXAMPLES.read_text().splitlines()):
        value = record["value"]
        cls = registry.get(value["type"])
        if record["topic"] == topic and value["schemaversion"] == cls.schema_version and not cls.personal_fields:
            event = parse_stored(value["type"], value["schemaversion"], value["data"])
            out.append(NewEvent(event, occurred_at=None, metadata={"actor": value.get("actor") or "u-test"}))
    return out


async def test_generated_models_parse_whole_messages_from_the_topics(
    models: Path, pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic, tmp_path: Path
) -> None:
    events_topic, alerts_topic = await kafka_topic("deals"), await kafka_topic("alerts", partitions=1)
    deals, alerts = real_events("pipelines.deals.events"), real_events("pipelines.alerts")
    assert len(deals) >= 5 and alerts
    for i, event in enumerate([*deals, *alerts]):
        await pg_store.append(f"stream-{i}", [event], expected_version=0)
    relay = OutboxRelay(
        pg_store,
        service="deals",
        topic=events_topic,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
        routes={"pipelines.alerts.": alerts_topic},
    )
    await relay.setup()
    assert await relay.lead()
    try:
        assert await published(relay, len(deals) + len(alerts)) == len(deals) + len(alerts)
    finally:
        await relay.close()
    records = [
        *await read_whole_topic(endpoints.kafka_bootstrap_servers, events_topic),
        *await read_whole_topic(endpoints.kafka_bootstrap_servers, alerts_topic),
    ]
    messages = [{"topic": r.topic, "key": r.key.decode(), "value": r.value.decode()} for r in records]
    (tmp_path / "messages.json").write_text(json.dumps(messages))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PARSE,
        str(models),
        str(tmp_path / "messages.json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()[-3000:]
    parsed = [json.loads(line) for line in out.decode().splitlines()]
    assert len(parsed) == len(messages)
    for message, (model, event_type, version, stream, correlation, data) in zip(messages, parsed, strict=True):
        value = json.loads(message["value"])
        assert model == f"{event_type.rsplit('.', 1)[1]}V{version}Message"
        assert (event_type, version, stream, correlation) == (
            value["type"],
            value["schemaversion"],
            message["key"],
            value["correlationid"],
        )
        assert data == {k: v for k, v in value["data"].items() if isinstance(v, str | int | bool)}
    assert {m["topic"] for m in messages} == {events_topic, alerts_topic}
