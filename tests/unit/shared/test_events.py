"""Event types are declared once: registry, wire format, upcasting and JSON Schema follow from the class."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from pydantic import ValidationError

from shared.core.events import (
    DomainEvent,
    EventDefinitionError,
    UnknownEventTypeError,
    UnsupportedSchemaVersionError,
    registry,
)
from shared.messaging.envelope import CloudEvent
from shared.store import Checkpoint, RecordedEvent
from testkit.events import ContactRecorded, Counted, ThingCreated, ThingRenamed


def test_declaring_a_class_registers_its_wire_name() -> None:
    assert registry.get("pipelines.test.ThingCreated") is ThingCreated
    assert "pipelines.test.ThingCreated" in registry
    assert ThingCreated in registry.types("pipelines.test.")


def test_unknown_types_and_future_versions_are_clear_errors() -> None:
    with pytest.raises(UnknownEventTypeError, match="pipelines.test.Nope"):
        registry.parse("pipelines.test.Nope", 1, {})
    with pytest.raises(UnsupportedSchemaVersionError, match="newer than this code"):
        registry.parse("pipelines.test.ThingCreated", 2, {"thing_id": "1", "name": "x"})


def test_older_versions_are_upcast() -> None:
    event = registry.parse("pipelines.test.ThingRenamed", 1, {"thing_id": "1", "name": "Tủ"})
    assert event == ThingRenamed(thing_id="1", name="Tủ", reason="(not recorded)")


def test_a_version_without_upcast_is_refused() -> None:
    class Bumped(DomainEvent):
        event_type: ClassVar[str] = "pipelines.test.Bumped"
        schema_version: ClassVar[int] = 3
        x: int

    with pytest.raises(UnsupportedSchemaVersionError, match="no upcast from schema version 1"):
        registry.parse("pipelines.test.Bumped", 1, {"x": 1})


def test_events_are_frozen_and_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Counted(n=1, extra=2)
    with pytest.raises(ValidationError):
        Counted(n=1).n = 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"event_type": "NoDots", "x": (int, 1)}, "must look like"),
        ({"event_type": "pipelines.test.ThingCreated", "x": (int, 1)}, "declared twice"),
    ],
)
def test_bad_declarations_fail_at_import_time(body: dict, message: str) -> None:
    with pytest.raises(EventDefinitionError, match=message):
        type(
            "Other" + str(uuid.uuid4().int)[:6],
            (DomainEvent,),
            {
                "__annotations__": {"event_type": "ClassVar[str]", "x": "int"},
                "event_type": body["event_type"],
            },
        )


def test_personal_fields_must_be_erasable() -> None:
    with pytest.raises(EventDefinitionError, match="must accept None"):

        class Leaky(DomainEvent):
            event_type: ClassVar[str] = "pipelines.test.Leaky"
            personal_fields: ClassVar[tuple[str, ...]] = ("email",)
            subject_field: ClassVar[str | None] = "person_id"
            person_id: str
            email: str


def test_json_schema_is_derived_from_the_class() -> None:
    schema = ContactRecorded.json_schema()
    assert schema["$id"] == "https://pipelines.invalid/schemas/events/test/ContactRecorded.v1.json"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["x-personal-fields"] == ["email", "full_name"]
    assert set(schema["required"]) == {"person_id", "email", "full_name", "source"}


def recorded(**overrides) -> RecordedEvent:
    base = dict(
        stream_id="thing-1",
        version=3,
        position=42,
        event_id=uuid.uuid4(),
        event_type="pipelines.test.ThingCreated",
        schema_version=1,
        data={"thing_id": "1", "name": "Đèn"},
        metadata={"correlation_id": "corr-1", "causation_id": "cause-1"},
        occurred_at=datetime(2026, 11, 1, 8, 0, tzinfo=UTC),
        recorded_at=datetime(2026, 11, 1, 8, 0, 1, tzinfo=UTC),
        checkpoint=Checkpoint(900, 42),
    )
    return RecordedEvent(**(base | overrides))


def test_envelope_is_a_structured_cloudevent_with_lowercase_extensions() -> None:
    e = recorded()
    envelope = CloudEvent.from_recorded(e, "things")
    wire = envelope.model_dump(mode="json")
    assert wire["specversion"] == "1.0"
    assert wire["id"] == str(e.event_id)
    assert wire["source"] == "/pipelines/things"
    assert wire["type"] == "pipelines.test.ThingCreated"
    assert wire["subject"] == wire["streamid"] == "thing-1"
    assert wire["datacontenttype"] == "application/json"
    assert wire["dataschema"] == "https://pipelines.invalid/schemas/events/test/ThingCreated.v1.json"
    assert (wire["streamversion"], wire["position"], wire["schemaversion"]) == (3, 42, 1)
    assert (wire["correlationid"], wire["causationid"]) == ("corr-1", "cause-1")
    assert all(k.isalnum() and k.islower() for k in wire)
    assert envelope.kafka_key() == b"thing-1"
    back = CloudEvent.from_kafka(envelope.kafka_value())
    assert back == envelope
    assert back.to_event() == ThingCreated(thing_id="1", name="Đèn")
    assert "Đèn".encode() in envelope.kafka_value(), "Vietnamese text kept as it is"


def test_envelope_without_correlation_uses_its_own_id() -> None:
    e = recorded(metadata={})
    envelope = CloudEvent.from_recorded(e, "things")
    assert envelope.correlationid == envelope.causationid == str(e.event_id)


@pytest.mark.parametrize("value", [None, b"", b"{}", b'{"specversion": "0.3"}', b"\xff"])
def test_garbage_is_not_an_envelope(value: bytes | None) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError is a ValueError
        CloudEvent.from_kafka(value)
