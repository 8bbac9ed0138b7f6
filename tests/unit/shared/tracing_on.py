"""Run by tests/unit/shared/test_tracing.py in a fresh interpreter with tracing switched on (the SDK's tracer provider
is global to a process, once set): the trace context from an HTTP request's server span into the events' metadata,
through the relay's producer span into the CloudEvent, to a reaction's consumer span and the command it runs, and a
read model's batch span linked to its events' contexts.
Spans are kept in memory; exits non-zero (an assertion) when something is not so."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
from fastapi import FastAPI, Request
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.edge.commands import command_context
from shared.edge.http import install_common
from shared.messaging.envelope import CloudEvent
from shared.ops import tracing
from shared.store import Checkpoint, RecordedEvent
from shared.store.commands import Context
from shared.store.wire import envelope_json

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def parts(traceparent: str) -> tuple[str, str]:
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


async def from_the_request_to_the_metadata(spans: InMemorySpanExporter) -> dict[str, str]:
    app = FastAPI()

    async def ready() -> dict[str, str]:
        return {}

    install_common(app, ready, "leads")

    @app.post("/leads")
    async def capture(request: Request) -> dict[str, str]:
        return (await command_context(request, "u-lan")).metadata()

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://leads") as http:
        headers = {"traceparent": CALLER, "tracestate": "rojo=00f067aa0ba902b7"}
        answer = await http.post("/leads?phone=0905123456", headers=headers)
        assert answer.status_code == 200, answer.text
        untraced = await http.get("/healthz")
        assert untraced.status_code == 200
    metadata: dict[str, str] = answer.json()
    (server,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]  # /healthz is not traced
    assert server.name == "POST /leads", server.name
    kept = {str(v) for v in (server.attributes or {}).values()}
    assert not [v for v in kept if "0905123456" in v or "127.0.0.1" in v], kept  # no query value, no address
    assert format(server.context.trace_id, "032x") == TRACE_ID  # the caller's trace, continued
    assert parts(metadata["traceparent"]) == (TRACE_ID, format(server.context.span_id, "016x"))
    assert metadata["tracestate"] == "rojo=00f067aa0ba902b7"
    assert metadata["actor"] == "u-lan" and metadata["correlation_id"]
    return metadata


def recorded(metadata: dict[str, str]) -> RecordedEvent:
    now = datetime.now(UTC)
    return RecordedEvent(
        "lead-1", 1, 1, uuid.uuid4(), "pipelines.leads.LeadCaptured", 1, {"lead_id": "lead-1"},
        metadata, now, now, Checkpoint(1, 1),
    )  # fmt: skip


def through_the_relay_to_a_reaction(spans: InMemorySpanExporter, metadata: dict[str, str]) -> None:
    stored = recorded(metadata)
    published = tracing.publishing(stored, "pipelines.leads.events")
    (producer,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    assert producer.parent is not None and format(producer.parent.span_id, "016x") == parts(metadata["traceparent"])[1]
    assert producer.attributes is not None and producer.attributes["cloudevents.event_type"].endswith("LeadCaptured")
    value = envelope_json(published, "leads")
    assert value == CloudEvent.from_recorded(published, "leads").kafka_value()
    envelope = CloudEvent.from_kafka(value)
    assert envelope.traceparent is not None
    assert parts(envelope.traceparent) == (TRACE_ID, format(producer.context.span_id, "016x"))
    assert envelope.tracestate == "rojo=00f067aa0ba902b7"
    untraced = recorded({"actor": "u-lan"})  # recorded with tracing off: no span, the bytes of an untraced build
    assert tracing.publishing(untraced, "pipelines.leads.events") is untraced
    assert b"trace" not in envelope_json(untraced, "leads")

    with tracing.consuming(envelope, "deals.reactions"):
        reaction = Context.reacting_to(envelope, "system:reactions").metadata()
    (consumer,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
    assert parts(reaction["traceparent"]) == (TRACE_ID, format(consumer.context.span_id, "016x"))
    assert reaction["causation_id"] == envelope.id
    # a reaction run outside a consumer span (a projection of its own, as the directory's) carries the event's
    bare = Context.reacting_to(envelope, "system:reactions").metadata()
    assert (bare["traceparent"], bare["tracestate"]) == (envelope.traceparent, envelope.tracestate)
    a_read_models_batch(spans, envelope)


OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def a_read_models_batch(spans: InMemorySpanExporter, envelope: CloudEvent) -> None:
    """A batch a read model applies (shared/messaging/runner.py): one consumer span of its own, current while the
    read model's queries run, linked to each traced event's context; an untraced batch gets none."""
    other = envelope.model_copy(update={"id": str(uuid.uuid4()), "traceparent": OTHER, "tracestate": None})
    untraced = envelope.model_copy(update={"id": str(uuid.uuid4()), "traceparent": None, "tracestate": None})
    facts = [SimpleNamespace(envelope=e) for e in (envelope, other, untraced, envelope)]
    with tracing.applying(facts, "deals.board"):
        inside = trace.get_current_span().get_span_context()
    (batch,) = [s for s in spans.get_finished_spans() if s.name == "process deals.board"]
    assert batch.kind == SpanKind.CONSUMER and batch.parent is None  # a trace of its own: the batch holds many
    assert inside.span_id == batch.context.span_id  # current meanwhile: the read model's queries are its children
    linked = {(format(link.context.trace_id, "032x"), format(link.context.span_id, "016x")) for link in batch.links}
    assert linked == {parts(envelope.traceparent or ""), parts(OTHER)}, linked  # each distinct context once
    assert batch.attributes is not None and batch.attributes["messaging.batch.message_count"] == 4
    assert batch.attributes["messaging.consumer.group.name"] == "deals.board"
    before = len(spans.get_finished_spans())
    with tracing.applying([SimpleNamespace(envelope=untraced)], "deals.board"):
        assert not trace.get_current_span().get_span_context().is_valid
    assert len(spans.get_finished_spans()) == before  # no traced event: no span


def main() -> None:
    assert tracing.setup("leads", "api"), "OTEL_TRACES_EXPORTER=console should switch tracing on"
    assert "opentelemetry.sdk" in sys.modules
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    assert not Context(actor="a").metadata().get("traceparent")  # outside any span: nothing to carry
    metadata = asyncio.run(from_the_request_to_the_metadata(spans))
    through_the_relay_to_a_reaction(spans, metadata)
    print(json.dumps({"spans": [s.name for s in spans.get_finished_spans()]}))


if __name__ == "__main__":
    main()
