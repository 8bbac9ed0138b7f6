"""The wire format subscribers rely on: CloudEvents 1.0, structured JSON mode, one event per Kafka message.

Context attributes: ``specversion``, ``id`` (the event id), ``source`` (``/pipelines/<service>``), ``type``
(the event's wire name), ``subject`` (the stream id), ``time`` (when it happened), ``datacontenttype``, ``dataschema``
(the URI of the type's schema version: ``<base>/events/<service>/<Type>.v<N>.json``, base PIPELINES_SCHEMA_BASE_URL or
the service's API's ``/schemas``; absent from messages published before it was added).
Extension attributes (lower-case letters and digits, as the spec requires): ``streamid``, ``streamversion``,
``position``, ``schemaversion``, ``recordedtime``, ``correlationid``, ``causationid``, and ``actor`` (who did it, as
the store recorded it; absent when it recorded none) so that a store restored from its topic keeps it; ``traceparent``
and ``tracestate`` (the CloudEvents distributed-tracing extension: the W3C trace context of the relay's span that
published it, absent when the event was recorded with tracing off; decision 0027).
The Kafka key is the stream id, so one stream's events share a partition and keep their order; the header
``content-type: application/cloudevents+json; charset=utf-8`` marks structured mode (Kafka protocol binding).
Personal fields in ``data`` are sealed tokens (``shared.privacy.pii``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.core.events import JSON_SCHEMA_DIALECT, SCHEMA_ID_BASE, DomainEvent, schema_uri
from shared.privacy.pii import parse_stored
from shared.store import RecordedEvent

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


class CloudEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = Field(None, min_length=1)  # always sent now; older messages on a topic lack it
    data: dict[str, Any]
    streamid: str = Field(min_length=1)
    streamversion: int = Field(ge=1)
    position: int = Field(ge=1)
    schemaversion: int = Field(ge=1)
    recordedtime: AwareDatetime
    correlationid: str
    causationid: str
    actor: str | None = None  # then the trace context: ``shared.store.wire.envelope_json`` writes the same bytes
    # CloudEvents distributed-tracing extension (W3C trace context), absent when the event was recorded untraced
    traceparent: str | None = None
    tracestate: str | None = None

    @classmethod
    def from_recorded(cls, event: RecordedEvent, service: str, schema_base: str = SCHEMA_ID_BASE) -> CloudEvent:
        """``schema_base``: where this deployment serves the schemas (``Settings.schema_base_for``)."""
        return cls(
            id=str(event.event_id),
            source=f"/pipelines/{service}",
            type=event.event_type,
            subject=event.stream_id,
            time=event.occurred_at,
            dataschema=schema_uri(event.event_type, event.schema_version, schema_base),
            data=event.data,
            streamid=event.stream_id,
            streamversion=event.version,
            position=event.position,
            schemaversion=event.schema_version,
            recordedtime=event.recorded_at,
            correlationid=event.correlation_id,
            causationid=event.causation_id,
            actor=event.metadata.get("actor"),
            traceparent=(traced := event.metadata.get("traceparent")),
            tracestate=event.metadata.get("tracestate") if traced is not None else None,
        )

    @property
    def event_id(self) -> uuid.UUID:
        return uuid.UUID(self.id)

    @property
    def occurred_at(self) -> datetime:
        return self.time

    def to_event(self) -> DomainEvent:
        """The typed event, upcast from its schema version, personal fields unopened (None)."""
        return parse_stored(self.type, self.schemaversion, self.data)

    def kafka_key(self) -> bytes:
        return self.streamid.encode()

    def kafka_value(self) -> bytes:
        absent = {name for name in OPTIONAL if getattr(self, name) is None}
        return self.model_dump_json(exclude=absent or None).encode()

    @classmethod
    def from_kafka(cls, value: bytes | None) -> CloudEvent:
        if value is None:
            raise ValueError("empty Kafka message (tombstone)")
        return cls.model_validate_json(value)


KAFKA_HEADERS = [("content-type", CONTENT_TYPE.encode())]
OPTIONAL = ("dataschema", "actor", "traceparent", "tracestate")  # left out of a message when None


def cloudevent_json_schema() -> dict[str, Any]:
    """The envelope's JSON Schema: every attribute the relay always sends is required (``dataschema`` is not: the
    messages published before it was added lack it; ``actor`` is absent when the store recorded none; ``traceparent``
    and ``tracestate`` when it was recorded without tracing)."""
    schema = {"$schema": JSON_SCHEMA_DIALECT, **CloudEvent.model_json_schema(mode="serialization")}
    schema["$id"] = f"{SCHEMA_ID_BASE}/events/envelope.v1.json"
    schema["required"] = [name for name in CloudEvent.model_fields if name not in OPTIONAL]
    schema["properties"]["dataschema"] = {
        "type": "string",
        "format": "uri",
        "minLength": 1,
        "title": "Dataschema",
        "description": "the URI of the JSON Schema `data` follows (GET it: the API serves it, docs/SUBSCRIBING.md)",
    }
    schema["properties"]["traceparent"] = {
        "type": "string",
        "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}",
        "title": "Traceparent",
        "description": "CloudEvents distributed tracing: the W3C trace context of the span that published the event "
        "(absent when tracing was off); a consumer's span continues the trace as its child",
    }
    schema["properties"]["tracestate"] = {
        "type": "string",
        "maxLength": 512,
        "title": "Tracestate",
        "description": "CloudEvents distributed tracing: the W3C tracestate beside `traceparent`, when there is one",
    }
    return schema
