"""One trace across the services (decision 0027): W3C trace context from the HTTP command to the events it records,
through the relay and Kafka (the CloudEvents distributed-tracing extension: ``traceparent``, ``tracestate``) to the
projector's reactions and the commands they run in the next service, and to the read models' batches (linked).

Off by default. A process traces when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``: OTLP over HTTP to
``OTEL_EXPORTER_OTLP_ENDPOINT``, or ``console``) and ``OTEL_SDK_DISABLED`` is not ``true``; ``setup`` (called once
at a process's start) switches it on, and only then is the OpenTelemetry SDK imported (``shared.ops.tracing_sdk``).
The SDK's other standard variables apply as documented by OpenTelemetry: ``OTEL_SERVICE_NAME`` (default
``pipelines-<service>``), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``
(default ``parentbased_always_on``), ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_*``. Off, nothing here is sampled, no
event's metadata gets a trace context and the relay's bytes are exactly those of a build without tracing.

``PIPELINES_TRACING_COMPILED_OUT=1`` makes this module a no-op at import (every hook below a constant function):
the baseline ``python -m bench tracing`` compares "tracing off" with.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.store import RecordedEvent

NOTHING: Mapping[str, str] = MappingProxyType({})
# the trace context a stored event and a CloudEvent carry (CloudEvents distributed-tracing extension)
ATTRIBUTES = ("traceparent", "tracestate")
MAX_TRACESTATE = 512  # W3C trace context: a longer tracestate may be dropped; it is, whole
COMPILED_OUT = os.environ.get("PIPELINES_TRACING_COMPILED_OUT", "") not in ("", "0", "false")

ENABLED = False  # set by ``setup``; read it as ``tracing.ENABLED`` (never copy it at import)


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """Does the environment switch tracing on: an exporter named, the SDK not disabled?"""
    env = os.environ if env is None else env
    exporters = {e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")} - {"", "none"}
    return bool(exporters) and env.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def setup(service: str, process: str) -> bool:
    """Start tracing in this process if the environment asks for it (``wanted``); True when it is on."""
    global ENABLED
    if ENABLED:
        return True
    if COMPILED_OUT or not wanted():
        return False
    from shared.ops import tracing_sdk

    tracing_sdk.start(service, process)
    ENABLED = True
    return True


def instrument_app(app: Any) -> None:
    """A FastAPI app's requests as server spans (W3C ``traceparent`` taken from the request), when on."""
    if ENABLED:
        from shared.ops import tracing_sdk

        tracing_sdk.instrument_app(app)


def carrier(otherwise: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The current span's ``traceparent`` (and ``tracestate``) for an event's metadata; outside a span ``otherwise``
    (a reaction's: the trace context of the event it handles); empty when off."""
    if not ENABLED:
        return NOTHING
    from shared.ops import tracing_sdk

    return tracing_sdk.current_carrier() or otherwise or NOTHING


def publishing(event: RecordedEvent, topic: str) -> RecordedEvent:
    """The relay's producer span for one event it publishes, a child of the trace context the event was stored
    with; the event is returned carrying that span's context, which the CloudEvent will carry. An event stored
    without a trace context (tracing was off, or an older event) is returned as it is: no span, no attribute."""
    if not ENABLED or "traceparent" not in event.metadata:
        return event
    from shared.ops import tracing_sdk

    return tracing_sdk.publishing(event, topic)


@contextlib.contextmanager
def consuming(envelope: Any, consumer: str) -> Iterator[None]:
    """A consumer span around a projector's handling of one CloudEvent (``consumer``: the projection), a child of
    the event's trace context and current meanwhile, so the commands a reaction runs record it."""
    if not ENABLED or getattr(envelope, "traceparent", None) is None:
        yield
        return
    from shared.ops import tracing_sdk

    with tracing_sdk.consuming(envelope, consumer):
        yield


@contextlib.contextmanager
def applying(facts: Sequence[Any], consumer: str) -> Iterator[None]:
    """A consumer span around a projector's applying one batch to a read model (``consumer``: the service's schema and
    the projection, ``deals.board``), current meanwhile (the read model's queries are its children). A batch holds many traces: the span
    starts its own and links each traced event's context (OpenTelemetry's batch processing); a batch without one gets
    no span. ``facts`` are the batch's ``Fact``s (each with its ``envelope``)."""
    if not ENABLED:
        yield
        return
    from shared.ops import tracing_sdk

    with tracing_sdk.applying([f.envelope for f in facts], consumer):
        yield


if COMPILED_OUT:  # the baseline: what a build without tracing would call

    def setup(service: str, process: str) -> bool:
        return False

    def instrument_app(app: Any) -> None:
        return None

    def carrier(otherwise: Mapping[str, str] | None = None) -> Mapping[str, str]:
        return NOTHING

    def publishing(event: RecordedEvent, topic: str) -> RecordedEvent:
        return event

    @contextlib.contextmanager
    def consuming(envelope: Any, consumer: str) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def applying(facts: Sequence[Any], consumer: str) -> Iterator[None]:
        yield
