"""The fast envelope decode (msgspec) gives the CloudEvent pydantic gives, and refuses what pydantic refuses
(decision 0031): pydantic stays the contract's source."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from shared.messaging import fast_envelope
from shared.messaging.envelope import CloudEvent
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
