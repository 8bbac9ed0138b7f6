"""Resolvable schemas (decision 0024): every published schema is JSON Schema 2020-12 with a URI ``$id``; every event
carries ``dataschema`` ending in the same path; every API serves the file there; the published (consumer) view accepts
additive fields while the producer's schema stays strict; the compatibility rules still refuse a breaking change."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator, ValidationError  # type: ignore[import-untyped]

from services.alerts.events import AlertRaised
from shared.core.events import JSON_SCHEMA_DIALECT, SCHEMA_ID_BASE
from shared.edge.http import install_common
from shared.messaging.envelope import CloudEvent, cloudevent_json_schema
from shared.store import Checkpoint, RecordedEvent
from shared.store.wire import envelope_json
from tools import contract

PUBLISHED = sorted(p for p in contract.DOCS.rglob("*.json") if p.name != "asyncapi.json")
BASE = "https://crm.example.vn/schemas"


def test_every_published_schema_is_2020_12_with_a_uri_id_naming_its_file_and_no_closed_object() -> None:
    assert len(PUBLISHED) > 100
    for path in PUBLISHED:
        schema = json.loads(path.read_text())
        assert schema["$schema"] == JSON_SCHEMA_DIALECT, path
        assert schema["$id"] == f"{SCHEMA_ID_BASE}/events/{path.relative_to(contract.DOCS)}", path
        Draft202012Validator.check_schema(schema)
        assert '"additionalProperties": false' not in path.read_text(), f"{path}: the consumer view is open"


def alert_data(**extra: object) -> dict[str, object]:
    now = datetime(2026, 12, 1, 8, tzinfo=UTC)
    event = AlertRaised(
        alert_id=uuid.uuid4(), service="deals", kind="deal_stuck", entity="deal-1", summary="stuck",
        details={"stage": "proposal"}, raised_at=now,
    )  # fmt: skip
    return event.model_dump(mode="json") | extra


def test_an_additive_field_passes_the_consumer_view_of_yesterday_but_not_the_producers_check() -> None:
    yesterday = json.loads((contract.DOCS / "alerts" / "AlertRaised.v1.json").read_text())
    strict = AlertRaised.json_schema()
    tomorrow = alert_data(priority="high")  # a field a later release adds, optional
    Draft202012Validator(yesterday).validate(tomorrow)
    Draft202012Validator(strict).validate(alert_data())
    with pytest.raises(ValidationError, match="priority"):
        Draft202012Validator(strict).validate(tomorrow)  # the producer's check stays strict
    # that release's schema: its optional field is compatible, and its events validate under its strict schema
    added = copy.deepcopy(strict)
    added["properties"]["priority"] = {"type": "string"}
    assert contract.changes(yesterday, contract.consumer_view(added)) == []
    Draft202012Validator(added).validate(tomorrow)


@pytest.mark.parametrize(
    ("change", "verdict"),
    [
        (lambda s: s["properties"].pop("summary"), "field 'summary' was removed"),
        (lambda s: s["properties"]["kind"].update(type="integer"), "field 'kind' changed type"),
        (lambda s: s["required"].append("concerns"), "field 'concerns' became required"),
    ],
    ids=["removed", "retyped", "made-required"],
)
def test_a_breaking_change_fails_the_check(monkeypatch: pytest.MonkeyPatch, change, verdict: str) -> None:
    """``python -m tools.contract check`` (CI) fails on it, and ``write`` refuses to publish it."""
    path = contract.DOCS / "alerts" / "AlertRaised.v1.json"
    broken = contract.consumer_view(AlertRaised.json_schema())
    change(broken)
    monkeypatch.setattr(contract, "schemas", lambda: {path: broken})
    (problem,) = contract.differences()
    assert verdict in problem and "bump schema_version" in problem
    written = path.read_bytes()
    assert contract.write() == [] and path.read_bytes() == written


def recorded(**overrides: object) -> RecordedEvent:
    now = datetime(2026, 12, 1, 8, tzinfo=UTC)
    event = RecordedEvent(
        "alert-1", 1, 5, uuid.uuid4(), "pipelines.alerts.AlertRaised", 1, alert_data(),
        {"correlation_id": "c-1", "causation_id": "c-1"}, now, now, Checkpoint(1, 5),
    )  # fmt: skip
    return dataclasses.replace(event, **overrides)


def test_every_event_carries_its_dataschema_and_the_envelope_schema_requires_what_is_always_sent() -> None:
    stored = recorded()
    message = envelope_json(stored, "deals", BASE)
    assert message == CloudEvent.from_recorded(stored, "deals", BASE).kafka_value()
    event = json.loads(message)
    assert event["dataschema"] == f"{BASE}/events/alerts/AlertRaised.v1.json"
    envelope = json.loads((contract.DOCS / "envelope.v1.json").read_text())
    assert envelope == cloudevent_json_schema()
    Draft202012Validator(envelope).validate(event)
    assert {"specversion", "datacontenttype", "id", "type", "source", "time", "data"} <= set(envelope["required"])
    for attribute in envelope["required"]:
        with pytest.raises(ValidationError):
            Draft202012Validator(envelope).validate({k: v for k, v in event.items() if k != attribute})
    older = {k: v for k, v in event.items() if k != "dataschema"}  # published before it was added
    Draft202012Validator(envelope).validate(older)
    assert CloudEvent.from_kafka(json.dumps(older).encode()).dataschema is None


@pytest.fixture(scope="module")
def api() -> TestClient:
    app = FastAPI()

    async def ready() -> dict[str, str]:
        return {}

    install_common(app, ready, "deals")
    return TestClient(app)


def test_every_api_serves_the_published_files_byte_for_byte_open_and_cacheable(api: TestClient) -> None:
    for path in (contract.DOCS / "envelope.v1.json", contract.DOCS / "deals" / "DealLost.v1.json"):
        answer = api.get(f"/schemas/events/{path.relative_to(contract.DOCS)}")
        assert answer.status_code == 200
        assert answer.content == path.read_bytes()
        assert answer.headers["content-type"] == "application/schema+json"
        assert answer.headers["cache-control"].startswith("public")
        again = api.get(answer.url.path, headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304 and not again.content


@pytest.mark.parametrize(
    "name",
    ["deals/Nope.v1.json", "deals/asyncapi.json", "../envelope.v1.json", "..%2F..%2Fpyproject.toml",
     "deals/../../../pyproject.toml", "deals/DealLost.v1.json/", "x" * 200],
)  # fmt: skip
def test_a_name_that_is_no_published_schema_is_a_404_problem(api: TestClient, name: str) -> None:
    answer = api.get(f"/schemas/events/{name}")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_name_past_its_bound_is_a_422_problem_naming_the_limit(api: TestClient) -> None:
    answer = api.get("/schemas/events/" + "x" * 5000)  # every input is bounded by its type (decision 0029)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["errors"][0]["ctx"] == {"max_length": 200}


def test_the_schema_files_are_in_the_image() -> None:
    dockerfile = (Path(contract.DOCS).parents[1] / "deploy" / "Dockerfile").read_text()
    assert "COPY docs/events ./docs/events" in dockerfile
