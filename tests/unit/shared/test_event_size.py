"""An event too large for Kafka is refused when it is appended, naming what made it large (issue 19)."""

from __future__ import annotations

import secrets
import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic_core import to_json

from shared.edge.http import install_common
from shared.messaging.envelope import CloudEvent
from shared.store import Checkpoint, EventTooLargeError, NewEvent, RecordedEvent
from shared.store.memory import InMemoryEventStore
from shared.store.wire import (
    _WIDEST_INT,
    _WIDEST_SCHEMA_BASE,
    _WIDEST_TIME,
    check_event_size,
    envelope_json,
    record_bytes,
)
from testkit.events import ContactRecorded, ThingCreated


async def test_the_memory_store_refuses_an_event_over_its_limit_and_keeps_nothing() -> None:
    store = InMemoryEventStore(max_event_bytes=20_000)
    await store.append("t", [NewEvent(ThingCreated(thing_id="t", name="a" * 15_000))], expected_version=0)
    with pytest.raises(EventTooLargeError) as refused:
        await store.append("t", [NewEvent(ThingCreated(thing_id="t", name="b" * 20_000))], expected_version=1)
    assert refused.value.field == "data.name"
    assert await store.stream_version("t") == 1


async def test_personal_fields_count_as_sealed_which_is_larger_than_they_were_typed() -> None:
    """Sealing grows a personal field by about a third: the limit is checked on what is published."""
    store = InMemoryEventStore(max_event_bytes=20_000)
    name = secrets.token_urlsafe(12_000)  # 16,000 characters: fits as typed, not once sealed
    with pytest.raises(EventTooLargeError) as refused:
        await store.append(
            "p",
            [NewEvent(ContactRecorded(person_id="p", email=None, full_name=name, source="web"))],
            expected_version=0,
        )
    assert refused.value.field == "data.full_name" and refused.value.size > 20_000


async def test_the_size_checked_is_never_below_the_record_the_relay_publishes() -> None:
    store = InMemoryEventStore()
    await store.append(
        "s-1",
        [NewEvent(ThingCreated(thing_id="s-1", name="é" * 3000), metadata={"correlation_id": "c" * 100})],
        expected_version=0,
    )
    (recorded,) = await store.read_stream("s-1")
    published = record_bytes(envelope_json(recorded, "deals"), b"s-1")
    assert envelope_json(recorded, "deals") == CloudEvent.from_recorded(recorded, "deals").kafka_value()
    with pytest.raises(EventTooLargeError) as checked:
        check_event_size("s-1", recorded.event_type, 1, recorded.data, recorded.metadata, source="deals", limit=0)
    # at least what is published (the version, position, times and schema base it gets later at their widest)
    assert published <= checked.value.size <= published + 64 + len(_WIDEST_SCHEMA_BASE)


def test_the_apis_answer_422_naming_the_field_and_the_limit() -> None:
    app = FastAPI()

    async def ready() -> dict[str, str]:
        return {}

    install_common(app, ready, "test")

    @app.post("/things")
    async def create() -> None:
        raise EventTooLargeError("t", "pipelines.test.ThingCreated", 1_200_000, 1_000_000, "data.raw_payload")

    answer = TestClient(app).post("/things")
    assert answer.status_code == 422
    body = answer.json()
    assert body["rule"] == "event_too_large" and body["field"] == "data.raw_payload" and body["limit"] == 1_000_000
    assert "1,000,000 bytes" in body["detail"]


@pytest.mark.parametrize(
    ("stream_id", "metadata"),
    [
        ("deal-1", {"correlation_id": "c-1", "actor": "u-import", "imported_from": "x/deal/1"}),
        ('thing-"é\\\u2028', {"causation_id": "e-9"}),  # escaped and multi-byte characters in the stream id
        ("t", {"actor": {"user": "u-1", "roles": ["admin"]}}),  # an actor that is no cache key
        # ids counted by the length of their JSON (the frame is cached per type, not per id): escaped and multi-byte
        ("t", {"correlation_id": 'c-"\\é\u2028\u0001', "causation_id": "e-\U0001f600", "actor": "u-1"}),
        ("t", {"correlation_id": 12345678901234567890, "causation_id": None}),  # not a string: as it is
        ("t", {}),
        ("t", {"actor": "u-1", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}),
        ("t", {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "a=b,c=é"}),
    ],
)
def test_the_size_is_the_widest_envelope_byte_for_byte(stream_id: str, metadata: dict[str, object]) -> None:
    """The check adds the stream id and the data to a frame serialised once per type and trace (decision 0021, "As
    built: speed"): the same bytes as the widest envelope serialised whole, given the data or its JSON."""
    data = {"thing_id": stream_id, "name": 'Nguyễn "Văn" \u0001', "n": [1, 2.5, None, {"x": True}]}
    widest = RecordedEvent(
        stream_id, _WIDEST_INT, _WIDEST_INT, uuid.UUID(int=0), "pipelines.test.ThingCreated", 3,
        data, dict(metadata), _WIDEST_TIME, _WIDEST_TIME, Checkpoint(0, 0),
    )  # fmt: skip
    whole = record_bytes(envelope_json(widest, "deals", _WIDEST_SCHEMA_BASE), stream_id.encode())
    for given in (None, to_json(data)):
        with pytest.raises(EventTooLargeError) as checked:
            check_event_size(stream_id, widest.event_type, 3, data, metadata, source="deals", limit=0, data_json=given)
        assert checked.value.size == whole
