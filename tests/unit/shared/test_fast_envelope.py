"""The fast envelope decode (msgspec) gives the CloudEvent pydantic gives, and refuses what pydantic refuses
(decision 0031): pydantic stays the contract's source."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from shared.core.events import UnknownEventTypeError, UnsupportedSchemaVersionError
from shared.messaging import fast_envelope
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact
from tools import asyncapi, contract  # noqa: F401 - contract registers every service's events

EXAMPLES = [json.loads(line)["value"] for line in asyncapi.EXAMPLES.read_text().splitlines()]
SAMPLE = next(e for e in EXAMPLES if e["type"] == "pipelines.deals.DealOpened")
REQUIRED = [n for n in CloudEvent.model_fields if n not in fast_envelope.OPTIONAL]


def both(value: bytes) -> tuple[CloudEvent, CloudEvent]:
    fast, slow = fast_envelope.decode(value), CloudEvent.from_kafka(value)
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    assert fast.kafka_value() == slow.kafka_value()  # the same bytes again: the relay's format round-trips
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_extra == slow.model_extra
    return fast, slow


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e['type']}.v{e['schemaversion']}")
def test_every_documented_example_decodes_to_the_same_cloudevent(example: dict[str, Any]) -> None:
    fast, slow = both(json.dumps(example, ensure_ascii=False).encode())
    assert fast.to_event() == slow.to_event()


def test_the_optional_attributes_absent_or_null_decode_alike() -> None:
    for name in fast_envelope.OPTIONAL:
        without = {k: v for k, v in SAMPLE.items() if k != name}
        both(json.dumps(without).encode())
        if name in ("dataschema", "actor", "traceparent", "tracestate"):
            both(json.dumps({**SAMPLE, name: None}).encode())
    traced = {**SAMPLE, "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "tracestate": "k=v"}
    both(json.dumps(traced).encode())


def test_what_only_pydantic_accepts_goes_to_pydantic() -> None:
    """An unknown attribute (kept as an extra), a version written 2.0, a time with a space: pydantic's answer."""
    fast, _ = both(json.dumps({**SAMPLE, "partitionkey": "x"}).encode())
    assert fast.model_extra == {"partitionkey": "x"}
    both(json.dumps({**SAMPLE, "streamversion": float(SAMPLE["streamversion"])}).encode())
    both(json.dumps({**SAMPLE, "time": SAMPLE["time"].replace("T", " ")}).encode())


def broken() -> list[tuple[str, dict[str, Any]]]:
    cases: list[tuple[str, dict[str, Any]]] = []
    for name in REQUIRED:
        cases.append((f"{name} missing", {k: v for k, v in SAMPLE.items() if k != name}))
        cases.append((f"{name} null", {**SAMPLE, name: None}))
        cases.append((f"{name} a list", {**SAMPLE, name: [1]}))
    for name, bad in [
        ("specversion", "0.3"),
        ("datacontenttype", "text/plain"),
        ("id", ""),
        ("source", ""),
        ("type", ""),
        ("streamid", ""),
        ("dataschema", ""),
        ("streamversion", 0),
        ("position", -1),
        ("schemaversion", 0),
        ("streamversion", "two"),
        ("streamversion", 1.5),
        ("time", "2026-12-07T00:32:32"),  # no offset: not an aware time
        ("recordedtime", "yesterday"),
        ("data", "text"),
        ("actor", 7),
    ]:
        cases.append((f"{name}={bad!r}", {**SAMPLE, name: bad}))
    return cases


def refused_alike(value: bytes) -> None:
    """pydantic refuses the message, and decode_fact refuses it with the same errors, its type taken or not."""
    with pytest.raises(ValidationError) as slow:
        CloudEvent.from_kafka(value)
    for accepts in (NOT_TAKEN, ("pipelines.",)):
        with pytest.raises(ValidationError) as fast:
            fast_envelope.decode_fact(value, accepts)
        assert fast.value.errors() == slow.value.errors()


@pytest.mark.parametrize(("case", "message"), broken(), ids=[c for c, _ in broken()])
def test_what_pydantic_refuses_the_fast_decode_refuses_the_same_way(case: str, message: dict[str, Any]) -> None:
    value = json.dumps(message).encode()
    with pytest.raises(ValidationError) as slow:
        CloudEvent.from_kafka(value)
    with pytest.raises(ValidationError) as fast:
        fast_envelope.decode(value)
    assert fast.value.errors() == slow.value.errors()


@pytest.mark.parametrize("value", [None, b"", b"{", b"[]", b"null", b'"text"'])
def test_not_a_cloudevent_at_all_is_refused_as_pydantic_refuses_it(value: bytes | None) -> None:
    with pytest.raises((ValidationError, ValueError)) as slow:
        CloudEvent.from_kafka(value)
    with pytest.raises(slow.type):
        fast_envelope.decode(value)


# decode_fact: what the runner reads per record (decision 0031, as built in session 40)
NOT_TAKEN = ("pipelines.none.",)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e['type']}.v{e['schemaversion']}")
def test_a_type_taken_gives_the_cloudevent_and_its_typed_event(example: dict[str, Any]) -> None:
    value = CloudEvent.model_validate(example).kafka_value()  # as the relay writes it
    slow = CloudEvent.from_kafka(value)
    envelope, fact = fast_envelope.decode_fact(value, (example["type"],))
    assert isinstance(fact, Fact)
    assert envelope is fact.envelope
    assert envelope == slow and envelope.model_fields_set == slow.model_fields_set
    assert fact.event == slow.to_event()
    assert fact.event.model_fields_set == slow.to_event().model_fields_set


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e['type']}.v{e['schemaversion']}")
def test_a_type_not_taken_gives_only_the_head_with_the_same_attributes(example: dict[str, Any]) -> None:
    value = CloudEvent.model_validate(example).kafka_value()
    slow = CloudEvent.from_kafka(value)
    head, fact = fast_envelope.decode_fact(value, NOT_TAKEN)
    assert fact is None
    assert isinstance(head, fast_envelope.Head)
    for name in ("id", "type", "subject", "time", "streamid", "streamversion", "position", "schemaversion"):
        assert getattr(head, name) == getattr(slow, name)
    assert json.loads(bytes(head.data)) == slow.data


@pytest.mark.parametrize(("case", "message"), broken(), ids=[c for c, _ in broken()])
def test_a_broken_message_of_a_type_not_taken_is_refused_as_pydantic_refuses_it(
    case: str, message: dict[str, Any]
) -> None:
    value = json.dumps(message).encode()
    refused_alike(value)


@pytest.mark.parametrize(
    "data",
    [b"[1]", b'"text"', b"null", b"7", b'{"deal_id": "caf\xc3"}', b'{"a": "\xff\xfe"}'],
    ids=["a list", "a string", "null", "a number", "cut UTF-8", "not UTF-8"],
)
def test_data_not_an_object_or_not_utf8_is_refused_whether_its_type_is_taken_or_not(data: bytes) -> None:
    """msgspec skips a head's data checking its JSON syntax only: the rest is checked as pydantic checks it."""
    value = json.dumps({**SAMPLE, "data": "HERE"}).encode().replace(b'"HERE"', data)
    refused_alike(value)


def test_data_msgspec_cannot_read_goes_to_pydantic_whose_cloudevent_it_is() -> None:
    value = json.dumps({**SAMPLE, "data": "HERE"}).encode().replace(b'"HERE"', b'{"x": 1e400}')
    envelope, fact = fast_envelope.decode_fact(value, ("pipelines.",))
    assert envelope == CloudEvent.from_kafka(value)
    assert isinstance(fact, ValidationError)  # DealOpened has no x: typing fails as to_event() fails
    head, fact = fast_envelope.decode_fact(value, NOT_TAKEN)
    assert isinstance(head, fast_envelope.Head) and fact is None


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"data": {"deal_id": "not a uuid"}}, ValidationError),
        ({"type": "pipelines.deals.NoSuchEvent"}, UnknownEventTypeError),
        ({"schemaversion": 99}, UnsupportedSchemaVersionError),
    ],
    ids=["invalid data", "unknown type", "newer schema"],
)
def test_an_event_that_cannot_be_typed_gives_the_error_to_event_raises(change: dict[str, Any], error: type) -> None:
    """The runner dead-letters it with this error's name and text, as when it called to_event() itself."""
    value = json.dumps({**SAMPLE, **change}).encode()
    with pytest.raises(error) as slow:
        CloudEvent.from_kafka(value).to_event()
    envelope, fact = fast_envelope.decode_fact(value, ("pipelines.",))
    assert envelope == CloudEvent.from_kafka(value)
    assert type(fact) is type(slow.value) and str(fact) == str(slow.value)
