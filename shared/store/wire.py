"""What a stored event becomes on Kafka, in bytes: the relay's envelope, and the record size an append must respect.

An event whose record would exceed the topic's ``max.message.bytes`` can never be published; the relay would stop
at it (it never skips an event). So the store refuses such an event when it is appended (``EventTooLargeError``,
answered 422 by the APIs), against ``PIPELINES_MAX_EVENT_BYTES``, and the relay checks at start that this limit fits
the topics and its producer (docs/OPERATIONS.md, "An event the relay cannot publish").
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from shared.core.events import SCHEMA_ID_BASE, schema_uri

if TYPE_CHECKING:
    from shared.store import RecordedEvent

DEFAULT_MAX_EVENT_BYTES = 1_000_000
# What a record batch of one record adds around its key and value: the batch header (61 bytes), the record's own
# varints and attributes, the content-type header (~60 bytes). Generous: the relay checks limit + this fits.
RECORD_OVERHEAD_BYTES = 512
CONTENT_TYPE_HEADER = ("content-type", b"application/cloudevents+json; charset=utf-8")


# The longest schema base a deployment may set (PIPELINES_SCHEMA_BASE_URL): the size check counts the widest.
MAX_SCHEMA_BASE_LENGTH = 200


def envelope_json(event: RecordedEvent, service: str, schema_base: str = SCHEMA_ID_BASE) -> bytes:
    """``CloudEvent.from_recorded(event, service, schema_base).kafka_value()``, byte for byte, without building the
    model: the same fields in the same order through pydantic-core's serialiser (bench/relay.py checks every byte)."""
    envelope = {
        "specversion": "1.0",
        "id": str(event.event_id),
        "source": f"/pipelines/{service}",
        "type": event.event_type,
        "subject": event.stream_id,
        "time": event.occurred_at,
        "datacontenttype": "application/json",
        "dataschema": schema_uri(event.event_type, event.schema_version, schema_base),
        "data": event.data,
        "streamid": event.stream_id,
        "streamversion": event.version,
        "position": event.position,
        "schemaversion": event.schema_version,
        "recordedtime": event.recorded_at,
        "correlationid": event.correlation_id,
        "causationid": event.causation_id,
    }
    if (actor := event.metadata.get("actor")) is not None:
        envelope["actor"] = actor
    if (traceparent := event.metadata.get("traceparent")) is not None:  # recorded with tracing on (decision 0027)
        envelope["traceparent"] = traceparent
        if (tracestate := event.metadata.get("tracestate")) is not None:
            envelope["tracestate"] = tracestate
    return to_json(envelope)


def record_bytes(value: bytes, key: bytes) -> int:
    """The size Kafka counts for a record batch holding this one record (an upper bound)."""
    return len(value) + len(key) + len(CONTENT_TYPE_HEADER[1]) + RECORD_OVERHEAD_BYTES


class EventTooLargeError(ValueError):
    """An event would become a Kafka record over the limit; nothing was written. ``field`` names what made it big:
    a field of the event's data, or the correlation or causation id."""

    def __init__(self, stream_id: str, event_type: str, size: int, limit: int, field: str) -> None:
        super().__init__(
            f"the event {event_type.rsplit('.', 1)[-1]} would be {size:,} bytes on Kafka, over the limit of "
            f"{limit:,} bytes (PIPELINES_MAX_EVENT_BYTES); {field} is the largest part of it"
        )
        self.stream_id = stream_id
        self.event_type = event_type
        self.size = size
        self.limit = limit
        self.field = field


# The widest values the store can give the parts an appended event does not have yet.
_WIDEST_TIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_WIDEST_INT = 2**63 - 1
_WIDEST_SCHEMA_BASE = "x" * MAX_SCHEMA_BASE_LENGTH


@functools.lru_cache(maxsize=1024)
def _frame_bytes(source: str, event_type: str, schema_version: int, trace: tuple[Any, Any, Any]) -> int:
    """The envelope's bytes at its widest with an empty stream id and null data: what ``check_event_size`` adds the
    stream id and the data to. ``trace``: the metadata's correlation id, causation id and actor (all it reads)."""
    from shared.store import Checkpoint, RecordedEvent  # the store module imports this one

    correlation, causation, actor = trace
    metadata = {"correlation_id": correlation, "causation_id": causation}
    if actor is not None:
        metadata["actor"] = actor
    widest = RecordedEvent(
        stream_id="",
        version=_WIDEST_INT,
        position=_WIDEST_INT,
        event_id=uuid.UUID(int=0),
        event_type=event_type,
        schema_version=schema_version,
        data=None,  # type: ignore[arg-type]  # serialised as null: the data's size is added to it
        metadata=metadata,
        occurred_at=_WIDEST_TIME,
        recorded_at=_WIDEST_TIME,
        checkpoint=Checkpoint(0, 0),
    )
    return len(envelope_json(widest, source, _WIDEST_SCHEMA_BASE))


def _same_size(value: Any) -> Any:
    """A string as a stand-in its JSON is as long as its own (``"x"`` repeated); anything else as it is."""
    return "x" * (len(to_json(value)) - 2) if isinstance(value, str) else value


def _trace_bytes(metadata: Mapping[str, Any]) -> int:
    """What the trace context adds to the envelope: ``,"traceparent":"…"`` and ``,"tracestate":"…"``."""
    if metadata.get("traceparent") is None:
        return 0
    found = len(b',"traceparent":') + len(to_json(metadata["traceparent"]))
    if metadata.get("tracestate") is not None:
        found += len(b',"tracestate":') + len(to_json(metadata["tracestate"]))
    return found


def check_event_sizes(
    stream_id: str,
    events: Sequence[Any],
    sealed: Sequence[Mapping[str, Any]],
    *,
    source: str,
    limit: int,
    sealed_json: Sequence[bytes] | None = None,
) -> None:
    """``check_event_size`` for each ``NewEvent`` of an append beside its data as stored (what both stores call);
    ``sealed_json``: that data as compact JSON (``to_json``) when the caller made it, so it is not made again."""
    for i, (e, data) in enumerate(zip(events, sealed, strict=True)):
        check_event_size(
            stream_id,
            e.event.event_type,
            e.event.schema_version,
            data,
            e.metadata,
            source=source,
            limit=limit,
            data_json=sealed_json[i] if sealed_json is not None else None,
        )


def check_event_size(
    stream_id: str,
    event_type: str,
    schema_version: int,
    data: Mapping[str, Any],
    metadata: Mapping[str, Any],
    *,
    source: str,
    limit: int,
    data_json: bytes | None = None,
) -> None:
    """Raise ``EventTooLargeError`` if this event (``data`` as stored: personal fields sealed) would be published as a
    record over ``limit`` bytes. ``data_json``: ``data`` as ``to_json`` makes it, when the caller made it already.

    The envelope is serialised by a compact serialiser, so its size is the sum of its parts: the frame every event of
    this source, type and trace shares (serialised once, around an empty stream id and null data), the stream id twice
    (``subject`` and ``streamid``) and the data; exactly ``len(envelope_json(...))`` of the event at its widest."""
    # the correlation and causation ids (one per request) by stand-ins of the same JSON length: the frame's size is
    # all that is asked of them, so a type's frame is made once, not once per command
    trace = (
        _same_size(metadata.get("correlation_id")),
        _same_size(metadata.get("causation_id")),
        metadata.get("actor"),
    )
    try:
        frame = _frame_bytes(source, event_type, schema_version, trace)
    except TypeError:  # a value that cannot be a cache key: serialised here
        frame = _frame_bytes.__wrapped__(source, event_type, schema_version, trace)
    body = len(data_json) if data_json is not None else len(to_json(dict(data)))
    envelope = frame + 2 * (len(to_json(stream_id)) - len(b'""')) + body - len(b"null") + _trace_bytes(metadata)
    size = envelope + len(stream_id.encode()) + len(CONTENT_TYPE_HEADER[1]) + RECORD_OVERHEAD_BYTES
    if size <= limit:
        return
    parts = {f"data.{k}": len(to_json(v)) for k, v in data.items()}
    parts["X-Correlation-ID"] = len(str(metadata.get("correlation_id") or ""))
    parts["causation id"] = len(str(metadata.get("causation_id") or ""))
    parts["stream id"] = 3 * len(stream_id.encode())
    raise EventTooLargeError(stream_id, event_type, size, limit, max(parts, key=lambda p: parts[p]))
