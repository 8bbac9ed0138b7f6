"""The OpenTelemetry SDK side of ``shared.ops.tracing``: imported only when tracing is switched on (decision 0027).

The tracer provider (resource, sampler, exporters from the standard ``OTEL_*`` variables), the instrumentation of
FastAPI (server spans), asyncpg (a span per query inside a trace) and httpx (client spans, ``traceparent`` sent),
and the spans this project makes itself: the relay's producer span per event and the projector's consumer span per
event a reaction handles, linked through the CloudEvents ``traceparent``/``tracestate`` attributes, and a consumer
span per batch a read model applies, linked to its events' traces.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult, _get_from_env_or_default
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from shared.ops.tracing import MAX_TRACESTATE
from shared.ops.version import VERSION

if TYPE_CHECKING:
    from shared.store import RecordedEvent

PROPAGATOR = TraceContextTextMapPropagator()
# health checks and scrapes are no part of any flow
EXCLUDED_URLS = "/healthz,/readyz,/metrics"
_tracer: trace.Tracer | None = None


class NoOrphanQueries(Sampler):
    """The configured sampler, except that a client span without a parent (a query the relay or a projector's
    loop makes on its own, a poll) starts no trace: every trace begins with a request or an event."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind == SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"NoOrphanQueries{{{self.inner.get_description()}}}"


def exporters(env: Mapping[str, str] | None = None) -> list[SpanExporter]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names: ``otlp`` (HTTP/protobuf), ``console``."""
    env = os.environ if env is None else env
    found: list[SpanExporter] = []
    for name in (e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")):
        if name in ("", "none"):
            continue
        if name == "otlp":
            protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            if protocol not in (None, "", "http/protobuf"):
                raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only http/protobuf is installed")
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            found.append(OTLPSpanExporter())
        elif name == "console":
            found.append(ConsoleSpanExporter())
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER={name}: this build exports with otlp or console")
    return found


def start(service: str, process: str) -> None:
    """The global tracer provider for this process, and the libraries' instrumentation."""
    global _tracer
    name = os.environ.get("OTEL_SERVICE_NAME") or f"pipelines-{service}"
    resource = Resource.create(
        {
            "service.name": name,
            "service.namespace": "pipelines",
            "service.version": VERSION,
            "pipelines.process": process,
        }
    )
    provider = TracerProvider(resource=resource, sampler=NoOrphanQueries(_get_from_env_or_default()))
    for exporter in exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _tracer = provider.get_tracer("pipelines", VERSION)
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor().instrument(
        tracer_provider=provider,
        request_hook=lambda span, request: _redact(span),
        async_request_hook=_redact_async,
    )


def tracer() -> trace.Tracer:
    assert _tracer is not None, "tracing not started"
    return _tracer


def instrument_app(app: Any) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
        server_request_hook=lambda span, scope: _redact(span),
    )


# Attributes that could carry personal data: a query string's values (a search by phone number) and the caller's
# address. Spans keep the route, the path's ids and the query's parameter names; the logs keep no more (decision 0027).
_URLS = ("http.url", "url.full")
_QUERIES = ("url.query",)
_ADDRESSES = ("net.peer.ip", "client.address", "net.sock.peer.addr")


def redact_query(url: str) -> str:
    """``…?phone=0905&q=x`` → ``…?phone=_&q=_``: the names stay, the values go."""
    base, sep, query = url.partition("?")
    if not sep:
        return url
    names = [part.partition("=")[0] for part in query.split("&") if part]
    return base + "?" + "&".join(f"{name}=_" for name in names)


def _redact(span: Any) -> None:
    if span is None or not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in _URLS:
        if isinstance(value := attributes.get(key), str) and "?" in value:
            span.set_attribute(key, redact_query(value))
    for key in _QUERIES:
        if isinstance(value := attributes.get(key), str):
            span.set_attribute(key, redact_query(f"?{value}")[1:])
    for key in _ADDRESSES:
        if key in attributes:
            span.set_attribute(key, "_")


async def _redact_async(span: Any, request: Any) -> None:
    _redact(span)


def current_carrier() -> dict[str, str]:
    found: dict[str, str] = {}
    PROPAGATOR.inject(found)
    if len(found.get("tracestate", "")) > MAX_TRACESTATE:
        del found["tracestate"]
    return found


def context_of(metadata: Mapping[str, Any]) -> Context:
    """The trace context ``traceparent``/``tracestate`` name (an invalid one gives an empty context: a new trace)."""
    given = {k: str(metadata[k]) for k in ("traceparent", "tracestate") if metadata.get(k)}
    return PROPAGATOR.extract(given)


def publishing(event: RecordedEvent, topic: str) -> RecordedEvent:
    """A producer span ("create", OpenTelemetry's messaging conventions), ended at once: the event's message is made
    in it, and carries its context instead of the command's, so a consumer's span is the child of this one."""
    span = tracer().start_span(
        f"create {topic}",
        context=context_of(event.metadata),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "create",
            "messaging.destination.name": topic,
            "messaging.message.id": str(event.event_id),
            "cloudevents.event_id": str(event.event_id),
            "cloudevents.event_type": event.event_type,
            "cloudevents.event_subject": event.stream_id,
        },
    )
    span.end()
    with trace.use_span(span, end_on_exit=False):
        carried = current_carrier()
    metadata = {k: v for k, v in event.metadata.items() if k not in ("traceparent", "tracestate")} | carried
    return dataclasses.replace(event, metadata=metadata)


@contextmanager
def consuming(envelope: Any, consumer: str) -> Iterator[None]:
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.consumer.group.name": consumer,
        "messaging.message.id": envelope.id,
        "cloudevents.event_id": envelope.id,
        "cloudevents.event_type": envelope.type,
        "cloudevents.event_source": envelope.source,
        "cloudevents.event_subject": envelope.subject,
    }
    parent = context_of({"traceparent": envelope.traceparent, "tracestate": envelope.tracestate})
    with tracer().start_as_current_span(
        f"process {envelope.type.rsplit('.', 1)[-1]}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ):
        yield


MAX_LINKS = 128  # OpenTelemetry's default span link limit (OTEL_SPAN_LINK_COUNT_LIMIT): more would be dropped anyway


@contextmanager
def applying(envelopes: Sequence[Any], consumer: str) -> Iterator[None]:
    """A read model's batch: its own trace, linked to each traced event's (at most ``MAX_LINKS`` distinct ones)."""
    links: dict[str, Link] = {}
    for e in envelopes:
        if e.traceparent is None or e.traceparent in links:
            continue
        parent = trace.get_current_span(context_of({"traceparent": e.traceparent, "tracestate": e.tracestate}))
        if parent.get_span_context().is_valid:
            links[e.traceparent] = Link(parent.get_span_context(), {"cloudevents.event_id": e.id})
        if len(links) >= MAX_LINKS:
            break
    if not links:
        yield
        return
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.consumer.group.name": consumer,
        "messaging.batch.message_count": len(envelopes),
    }
    with tracer().start_as_current_span(
        f"process {consumer}",
        context=Context(),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=list(links.values()),
    ):
        yield
