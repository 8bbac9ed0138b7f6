"""The published contract (docs/events) matches the code, and the compatibility rules are what they say."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.deals.events import ActivityLogged
from shared.messaging.envelope import CloudEvent
from shared.ops.settings import SERVICES
from shared.store import Checkpoint, RecordedEvent
from shared.store.wire import envelope_json
from tools import contract

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
V1 = json.loads((contract.DOCS / "deals" / "ActivityLogged.v1.json").read_text())


def test_the_committed_files_are_what_the_code_generates() -> None:
    assert contract.differences() == []


def test_every_service_has_an_asyncapi_3_document_listing_its_events() -> None:
    for service in SERVICES:
        doc = json.loads((contract.DOCS / service / "asyncapi.json").read_text())
        assert doc["asyncapi"] == "3.0.0"
        addresses = {c["address"] for c in doc["channels"].values()}
        assert addresses == {f"pipelines.{service}.events"}
    deals = json.loads((contract.DOCS / "deals" / "asyncapi.json").read_text())
    assert {"DealWon.v1", "ActivityLogged.v1", "ActivityLogged.v2"} <= set(deals["channels"]["events"]["messages"])


def mutated(change) -> dict:
    new = copy.deepcopy(V1)
    change(new)
    return new


@pytest.mark.parametrize(
    ("change", "verdict"),
    [
        (lambda s: s["properties"].update(mood={"type": "string"}), None),  # a new optional field
        (lambda s: s["properties"]["note"].update(description="free text"), None),  # words only
        (lambda s: s["properties"].pop("outcome"), "field 'outcome' was removed"),
        (lambda s: s["properties"]["stage_id"].update(type="integer"), "field 'stage_id' changed type"),
        (lambda s: s["required"].append("outcome"), "field 'outcome' became required"),
        (
            lambda s: (s["properties"].update(mood={"type": "string"}), s["required"].append("mood")),
            "new field 'mood' is required",
        ),
        (lambda s: s.update({"x-event-type": "pipelines.deals.ActivityRecorded"}), "the type was renamed"),
    ],
    ids=["new-optional-field", "description", "removed", "retyped", "made-required", "new-required", "renamed"],
)
def test_compatibility_rules(change, verdict: str | None) -> None:
    problems = contract.changes(V1, mutated(change))
    if verdict is None:
        assert problems == []
    else:
        assert any(verdict in p for p in problems), problems


def test_the_real_v2_change_was_incompatible_and_so_got_a_new_version() -> None:
    v2 = ActivityLogged.json_schema()
    assert v2["x-schema-version"] == 2
    assert contract.changes(V1, {**v2, "x-schema-version": 1}) == ["new field 'direction' is required"]


def recorded_v1() -> RecordedEvent:
    data = {
        "deal_id": str(uuid.uuid4()),
        "activity_id": str(uuid.uuid4()),
        "activity_type": "call",
        "channel": "phone",
        "stage_id": "contacted",
        "outcome": "hẹn gặp tuần sau",
        "duration_minutes": 12,
        "note": None,
    }
    now = datetime(2026, 3, 1, 8, tzinfo=UTC)
    return RecordedEvent(
        stream_id=f"deal-{data['deal_id']}",
        version=2,
        position=7,
        event_id=uuid.uuid4(),
        event_type="pipelines.deals.ActivityLogged",
        schema_version=1,
        data=data,
        metadata={},
        occurred_at=now,
        recorded_at=now,
        checkpoint=Checkpoint(1, 7),
    )


def test_a_version_1_event_reads_as_version_2_from_the_store_and_from_a_kafka_message() -> None:
    stored = recorded_v1()
    from_store = stored.to_event()
    assert isinstance(from_store, ActivityLogged)
    assert from_store.direction == "outbound"
    message = CloudEvent.from_recorded(stored, "deals").kafka_value()
    assert b'"schemaversion":1' in message
    from_kafka = CloudEvent.from_kafka(message).to_event()
    assert from_kafka == from_store


@pytest.mark.parametrize(
    ("occurred_at", "metadata", "data"),
    [
        (datetime(2026, 3, 1, 8, tzinfo=UTC), {}, {"a": 1}),
        (
            datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=timezone(timedelta(hours=7))),
            {"correlation_id": "c-1", "causation_id": "e-0", "actor": "u-lan"},
            {"tên": "Nguyễn Văn An", "amount": "12.50", "nested": {"list": [1, None, True]}, "token": "pii:v1:x"},
        ),
        (  # recorded with tracing on (decision 0027): the CloudEvents distributed-tracing attributes
            datetime(2026, 3, 1, 8, tzinfo=UTC),
            {"actor": "u-lan", "traceparent": TRACEPARENT, "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
            {"a": 1},
        ),
        (datetime(2026, 3, 1, 8, tzinfo=UTC), {"correlation_id": "c-1", "traceparent": TRACEPARENT}, {"a": 1}),
    ],
)
def test_the_relays_envelope_is_the_cloudevents_models_byte_for_byte(occurred_at, metadata, data) -> None:
    """The relay writes the envelope without building the model (shared.store.wire.envelope_json): same bytes."""
    stored = dataclasses.replace(recorded_v1(), occurred_at=occurred_at, metadata=metadata, data=data)
    assert envelope_json(stored, "deals") == CloudEvent.from_recorded(stored, "deals").kafka_value()
