"""The AsyncAPI documents (tools/asyncapi.py) describe the wire: every topic, every version, the whole message, and
the official CLI (``@asyncapi/cli``, tools/asyncapi_cli) finds them valid."""

from __future__ import annotations

import json
import re
import shlex
import warnings
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from shared.ops.settings import SERVICES
from tools import asyncapi, asyncapi_cli, contract

DOCS = contract.DOCS
ROOT = DOCS.parent.parent
MODELS_ARGS = [
    "generate", "models", "python", "docs/events/deals/asyncapi.json", "-o", "deals_models", "--pyDantic",
    "--no-interactive",
]  # fmt: skip
ENVELOPE = json.loads((DOCS / "envelope.v1.json").read_text())


def document(name: str) -> dict:
    return json.loads((DOCS / name / "asyncapi.json").read_text())


def test_one_document_per_topic_family_each_channel_one_topic() -> None:
    addresses = {}
    for name in (*SERVICES, "alerts", "dlq", "auth"):
        doc = document(name)
        assert doc["asyncapi"] == "3.0.0"
        addresses[name] = sorted(c["address"] for c in doc["channels"].values())
    assert addresses["alerts"] == ["pipelines.alerts"]
    assert addresses["dlq"] == sorted(f"pipelines.{s}.dlq" for s in SERVICES)
    assert addresses["auth"] == ["pipelines.auth.revocations"]
    for service in SERVICES:
        assert addresses[service] == [f"pipelines.{service}.events"]


def test_every_published_version_is_a_message_of_its_topic() -> None:
    for directory in (*SERVICES, "alerts"):
        (channel,) = document(directory)["channels"].values()
        versions = {p.name.removesuffix(".json") for p in (DOCS / directory).glob("*.v*.json")}
        assert set(channel["messages"]) == versions, directory
    deals = document("deals")["channels"]["events"]["messages"]
    assert {"ActivityLogged.v1", "ActivityLogged.v2"} <= set(deals)  # an older version stays listed


def test_a_message_is_the_whole_cloudevent_with_its_headers_key_and_correlation() -> None:
    doc = document("deals")
    message = doc["components"]["messages"]["ActivityLogged.v1"]
    assert message["contentType"] == "application/cloudevents+json"
    assert doc["defaultContentType"] == "application/cloudevents+json"
    assert doc["components"]["correlationIds"]["correlationid"]["location"] == "$message.payload#/correlationid"
    headers = doc["components"]["schemas"]["CloudEventHeaders"]
    assert headers["properties"]["content-type"]["const"] == "application/cloudevents+json; charset=utf-8"
    assert message["bindings"]["kafka"]["key"] == {"$ref": "#/components/schemas/StreamKey"}
    payload = doc["components"]["schemas"]["ActivityLogged.v1"]
    assert payload["required"] == ENVELOPE["required"]  # the envelope…
    for name, prop in ENVELOPE["properties"].items():
        if name not in ("type", "schemaversion", "data"):
            assert payload["properties"][name] == prop
    assert payload["properties"]["data"]["allOf"] == [{"$ref": "./ActivityLogged.v1.json"}]  # …with this data
    assert (DOCS / "deals" / "ActivityLogged.v1.json").exists()
    assert payload["properties"]["type"]["const"] == "pipelines.deals.ActivityLogged"
    assert payload["properties"]["schemaversion"]["const"] == 1


def test_bindings_servers_security_and_operations() -> None:
    doc = document("leads")
    binding = doc["channels"]["events"]["bindings"]["kafka"]
    k8s = asyncapi.deployed()
    assert binding["partitions"] == int(k8s["PIPELINES_KAFKA_PARTITIONS"])
    assert binding["replicas"] == int(k8s["PIPELINES_KAFKA_REPLICATION_FACTOR"])
    assert binding["topicConfiguration"]["retention.ms"] == -1  # topics keep everything (replays)
    assert doc["components"]["securitySchemes"]["scram"]["type"] == "scramSha512"
    assert doc["servers"]["deployment"]["protocol"] == "kafka-secure"
    assert doc["servers"]["deployment"]["security"] == [{"$ref": "#/components/securitySchemes/scram"}]
    (operation,) = doc["operations"].values()
    assert operation["action"] == "receive"
    assert len(operation["messages"]) == len(doc["channels"]["events"]["messages"])
    auth = document("auth")["channels"]["revocations"]["bindings"]["kafka"]
    assert (auth["partitions"], auth["topicConfiguration"]["retention.ms"]) == (1, asyncapi.REVOCATION_RETENTION_MS)


def test_the_examples_are_real_messages_that_fit_their_schemas() -> None:
    envelope = Draft202012Validator(ENVELOPE)
    shown = 0
    for directory in (*SERVICES, "alerts"):
        doc = document(directory)
        for key, message in doc["components"]["messages"].items():
            for example in message.get("examples", []):
                value = example["payload"]
                assert example["headers"] == {"content-type": "application/cloudevents+json; charset=utf-8"}
                assert value["subject"] == value["streamid"]
                assert f"{value['type'].rsplit('.', 1)[1]}.v{value['schemaversion']}" == key
                envelope.validate(value)
                Draft202012Validator(json.loads((DOCS / directory / f"{key}.json").read_text())).validate(value["data"])
                shown += 1
    assert shown >= 40


@pytest.mark.slow
def test_the_official_cli_finds_every_document_valid(tmp_path: Path) -> None:
    """All documents in one CLI process (its start is slow), and one broken document to show it would fail."""
    broken = tmp_path / "broken" / "asyncapi.json"
    broken.parent.mkdir()
    doc = document("alerts")
    doc["channels"]["alerts"]["messages"]["nope"] = {"$ref": "#/components/messages/Nope"}
    broken.write_text(json.dumps(doc))
    documents = asyncapi_cli.documents()
    assert len(documents) == len(SERVICES) + 3
    result = asyncapi_cli.validate([*documents, broken])
    output = result.stdout + result.stderr
    for line in output.splitlines():  # the CLI's warnings, shown in pytest's summary (only errors fail)
        if re.match(r"\s*\d+:\d+\s+warning\s", line):
            warnings.warn(f"asyncapi validate: {line.strip()}", stacklevel=1)
    assert f"validated {len(documents) + 1} document(s): 1 invalid" in result.stdout
    assert result.returncode == 1
    for path in documents:
        assert f"File {path} is valid" in output
    assert f"File {broken} is valid" not in output
    assert "'#/components/messages/Nope' does not exist" in output
    assert "AlertRaised.v1.json'" in output  # a $ref to a schema file is resolved: none beside the broken copy


def documented_commands() -> list[list[str]]:
    """The commands SUBSCRIBING.md's AsyncAPI section gives, as argument lists."""
    text = (contract.DOCS.parent / "SUBSCRIBING.md").read_text()
    section = text.split("## AsyncAPI documents", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [shlex.split(line) for line in block.splitlines()]


def test_the_documented_commands_are_the_ones_the_tests_run() -> None:
    python = [".venv/bin/python", "-m", "tools.asyncapi_cli"]
    validate, validate_all, generate, touch = documented_commands()
    assert validate == [*python, "validate", "docs/events/deals/asyncapi.json"]
    assert (ROOT / validate[-1]).exists()
    assert validate_all == [*python, "validate-all"]  # what test_the_official_cli_finds_every_document_valid runs
    assert generate[:3] == python
    assert generate[3:] == MODELS_ARGS  # tests/integration/test_asyncapi_models.py runs these
    assert touch == ["touch", "deals_models/__init__.py"]
