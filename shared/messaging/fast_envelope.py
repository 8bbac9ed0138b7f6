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
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from shared.messaging.envelope import CloudEvent

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Aware = Annotated[datetime, msgspec.Meta(tz=True)]


class _Envelope(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The envelope's attributes as the relay writes them: ``CloudEvent``'s fields, in its order (so the model's
    ``__dict__``, which pydantic serialises in order, is the one validation makes), with the same constraints.
    An attribute a message may leave out is UNSET when absent, as pydantic's ``model_fields_set`` tells them apart."""

    specversion: Literal["1.0"] | UnsetType = UNSET
    id: NonEmpty
    source: NonEmpty
    type: NonEmpty
    subject: str
    time: Aware
    datacontenttype: Literal["application/json"] | UnsetType = UNSET
    dataschema: NonEmpty | UnsetType | None = UNSET
    data: dict[str, Any]
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


FIELDS = _Envelope.__struct_fields__
assert list(FIELDS) == list(CloudEvent.model_fields), "the fast envelope must have CloudEvent's attributes, in order"
_decoder = msgspec.json.Decoder(_Envelope)
# the attributes a message may leave out, and what pydantic then puts in the model
OPTIONAL = tuple(f.name for f in msgspec.structs.fields(_Envelope) if f.default is UNSET)
_ALL = frozenset(FIELDS)
_asdict = msgspec.structs.asdict
DEFAULTS = {name: CloudEvent.model_fields[name].default for name in OPTIONAL}
_new = CloudEvent.__new__
_set = object.__setattr__


def decode(value: bytes | None) -> CloudEvent:
    """``CloudEvent.from_kafka(value)``, faster for a message the relay wrote; pydantic's answer for any other."""
    if value is None:
        return CloudEvent.from_kafka(value)
    try:
        envelope = _decoder.decode(value)
    except msgspec.DecodeError:
        return CloudEvent.from_kafka(value)  # pydantic decides: the same model, or its ValidationError
    values = _asdict(envelope)
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
