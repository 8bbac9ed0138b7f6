"""A cheaper decode of the CloudEvent envelope for the hot path of consumers (decision 0031).

``decode(value)`` gives the same ``CloudEvent`` that ``CloudEvent.from_kafka(value)`` (pydantic) gives, faster: the
message is read by msgspec into a ``Struct`` of exactly the envelope's attributes, with the constraints the pydantic
model states (``specversion`` "1.0", non-empty ids, ``streamversion``/``position``/``schemaversion`` >= 1, both
times with a UTC offset, ``data`` an object), then put into a ``CloudEvent`` without validating it a second time.

Anything msgspec does not accept as is — a missing or mistyped attribute, an attribute the envelope does not know
(pydantic keeps those as extras), a number written as ``1.0``, a time pydantic reads and RFC 3339 does not — goes to
pydantic, which gives the same model or raises its own ``ValidationError`` (so a bad message reaches the dead-letter
topic with pydantic's reason, as before). pydantic stays the contract's source (``cloudevent_json_schema``);
tests/unit/shared/test_fast_envelope.py checks both decoders agree on every documented example and on broken ones.

``decode_fact(value, accepts)`` is what the projection runner reads per record. A read model types only the events
whose type starts with one of ``accepts`` (``Projection.accepts``); for any other it needs only the stream, the
version and the type. Such a message is read whole and every attribute checked as above, but its ``data`` is only
checked to be a JSON object in UTF-8 (msgspec skipped over it checking its syntax), not built into a dict, and the
answer is the envelope's ``Head`` (the msgspec ``Struct``), not a ``CloudEvent``: about 40 % of the full decode's CPU,
for half the messages a directory projector reads. A type taken gives the ``CloudEvent`` and its ``Fact``, typed by
``to_event()`` (or the error typing raised, which the runner dead-letters as before). What the ``Struct`` refuses
still goes to pydantic, whose ``CloudEvent`` or ``ValidationError`` is the answer, whatever the type (decision 0031,
"as built, session 40").
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType
from pydantic import ValidationError

from shared.core.events import UnknownEventTypeError, UnsupportedSchemaVersionError
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Aware = Annotated[datetime, msgspec.Meta(tz=True)]


class Head(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, gc=False):
    """The envelope's attributes as the relay writes them: ``CloudEvent``'s fields, in its order (so the model's
    ``__dict__``, which pydantic serialises in order, is the one validation makes), with the same constraints, but
    ``data`` as its JSON text (decoded only for a type the reader takes). An attribute a message may leave out is
    UNSET when absent, as pydantic's ``model_fields_set`` tells them apart. Nothing in it refers to a container:
    the cyclic collector need not track it (``gc=False``)."""

    specversion: Literal["1.0"] | UnsetType = UNSET
    id: NonEmpty
    source: NonEmpty
    type: NonEmpty
    subject: str
    time: Aware
    datacontenttype: Literal["application/json"] | UnsetType = UNSET
    dataschema: NonEmpty | UnsetType | None = UNSET
    data: msgspec.Raw
    streamid: NonEmpty
    streamversion: Positive
    position: Positive
    schemaversion: Positive
    recordedtime: Aware
    correlationid: str
    causationid: str
    actor: str | UnsetType | None = UNSET
    traceparent: str | UnsetType | None = UNSET
    tracestate: str | UnsetType | None = UNSET


FIELDS = Head.__struct_fields__
assert list(FIELDS) == list(CloudEvent.model_fields), "the fast envelope must have CloudEvent's attributes, in order"
_decoder = msgspec.json.Decoder(Head)
_data_decoder = msgspec.json.Decoder(dict[str, Any])
# the attributes a message may leave out, and what pydantic then puts in the model
OPTIONAL = tuple(f.name for f in msgspec.structs.fields(Head) if f.default is UNSET)
_ALL = frozenset(FIELDS)
_asdict = msgspec.structs.asdict
DEFAULTS = {name: CloudEvent.model_fields[name].default for name in OPTIONAL}
_new = CloudEvent.__new__
_set = object.__setattr__
# what typing an event can raise: the event cannot be applied, and goes to the dead-letter topic with its reason
TYPING_ERRORS = (UnknownEventTypeError, UnsupportedSchemaVersionError, ValidationError, ValueError)
_EVERY_TYPE = ("",)  # every type starts with the empty prefix
_OPEN_BRACE = ord("{")


def decode(value: bytes | None) -> CloudEvent:
    """``CloudEvent.from_kafka(value)``, faster for a message the relay wrote; pydantic's answer for any other."""
    envelope = _decode(value, _EVERY_TYPE)
    assert isinstance(envelope, CloudEvent)  # every type is taken: never a head
    return envelope


def decode_fact(value: bytes | None, accepts: tuple[str, ...]) -> tuple[CloudEvent | Head, Fact | Exception | None]:
    """A message as a read model taking the types that start with one of ``accepts`` needs it: its envelope and
    the ``Fact`` (typed as ``CloudEvent.to_event()`` types it), or the error typing it raised (its reason goes to the
    dead-letter topic), or None for a type not taken — whose envelope is then, for a message the relay wrote, only
    its ``Head``. Raises pydantic's ``ValidationError`` (or ``ValueError``) for a message that is not a CloudEvent."""
    envelope = _decode(value, accepts)
    if isinstance(envelope, Head) or not envelope.type.startswith(accepts):
        return envelope, None
    try:
        return envelope, Fact(envelope, envelope.to_event())
    except TYPING_ERRORS as exc:
        return envelope, exc


def _decode(value: bytes | None, accepts: tuple[str, ...]) -> CloudEvent | Head:
    """The envelope: a ``Head`` for a message the relay wrote of a type none of ``accepts`` starts."""
    if value is None:
        return CloudEvent.from_kafka(value)
    try:
        head = _decoder.decode(value)
    except msgspec.DecodeError:
        return CloudEvent.from_kafka(value)  # pydantic decides: the same model, or its ValidationError
    data = head.data
    if not head.type.startswith(accepts):
        # msgspec skipped over data checking only its JSON syntax: an object? its text UTF-8, as pydantic wants? (the
        # other attributes msgspec decoded, so checked)
        if memoryview(data)[0] == _OPEN_BRACE and (value.isascii() or _utf8(data)):
            return head
        return CloudEvent.from_kafka(value)
    try:
        parsed = _data_decoder.decode(data)  # not an object: a DecodeError
    except (msgspec.DecodeError, UnicodeDecodeError):  # e.g. a number beyond a float's range, which pydantic reads
        return CloudEvent.from_kafka(value)
    values = _asdict(head)
    values["data"] = parsed
    present = set(_ALL)
    for name in OPTIONAL:
        if values[name] is UNSET:
            values[name] = DEFAULTS[name]
            present.discard(name)
    event = _new(CloudEvent)
    _set(event, "__dict__", values)
    _set(event, "__pydantic_fields_set__", present)
    _set(event, "__pydantic_extra__", {})
    _set(event, "__pydantic_private__", None)
    return event


def _utf8(data: msgspec.Raw) -> bool:
    try:
        str(data, "utf-8")
    except UnicodeDecodeError:
        return False
    return True
