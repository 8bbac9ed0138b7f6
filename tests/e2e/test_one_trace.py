"""One trace across the services (issue 30, decision 0027): the leads, deals and production services as separate
api, relay and projector processes with tracing switched on by the standard OTEL_* variables, exporting to a real
Jaeger (built from its Go module, testkit/jaeger). A client starts one trace and drives a lead from capture to the
deal's follow-up through the HTTP APIs, sending its ``traceparent``; Jaeger's query API then holds ONE trace in which
the lead is captured, the deal opened (a reaction in the deals projector to the lead converted), the order created
(production's reaction to the deal won) and the follow-up started (deals' reaction to the order shipped), each
reaction's span a child of the consumer span of the event that caused it, itself the child of the relay's producer
span of that event, itself the child of the command's server span in the service that recorded it; and a read
model's batch span in the deals projector links to that trace."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.deals.events import deal_id_for_lead
from services.production.handlers import order_id_for_deal
from shared.ops.settings import Settings
from shared.ops.stack import free_ports
from testkit.jaeger import Jaeger
from testkit.services import bearer, drop_everything, isolated_settings, process_env, spawn, stop_processes, wait_ready
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]
ADMIN = bearer("u-admin", "admin", team=None)
SERVICES = ("leads", "deals", "production")
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    server = Jaeger(tmp_path_factory.mktemp("jaeger")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def traced(endpoints: Any, jaeger: Jaeger, tmp_path: Path) -> AsyncIterator[tuple[Settings, dict[str, str]]]:
    settings = isolated_settings(endpoints)
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    settings = settings.model_copy(update={f"{s}_port": p for s, p in ports.items()})
    env = process_env(settings, **{f"PIPELINES_{s.upper()}_PORT": str(p) for s, p in ports.items()})
    env |= {
        "PIPELINES_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export within a fraction of a second (the default waits 5 s)
    }
    processes = [
        spawn(("-m", f"services.{service}", mode), env, tmp_path / f"{service}-{mode}.log")
        for service in SERVICES
        for mode in ("api", "relay", "projector")
    ]
    urls = {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
    try:
        await wait_ready(urls, processes)
        yield settings, urls
    finally:
        stop_processes(processes)
        await drop_everything(settings)


class Client:
    """The test as a client that starts the trace: its one root span, every request sent as its child."""

    def __init__(self, http: httpx.AsyncClient, jaeger: Jaeger) -> None:
        self.http = http
        resource = Resource.create({"service.name": "e2e-client"})
        self.provider = TracerProvider(resource=resource)  # this test's own, not the process's global one
        self.provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{jaeger.otlp_url}/v1/traces")))
        self.root_name = "a lead to the deal's follow-up"
        self.root = self.provider.get_tracer("e2e").start_span(self.root_name)
        self.headers = dict(ADMIN)
        TraceContextTextMapPropagator().inject(self.headers, context=set_span_in_context(self.root))
        self.trace_id = format(self.root.get_span_context().trace_id, "032x")

    async def post(self, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await self.http.post(url, json=body or {}, headers=self.headers)
        assert r.status_code in (200, 201), (url, r.status_code, r.text)
        result: dict[str, Any] = r.json()
        return result

    async def exists(self, url: str) -> bool:
        return (await self.http.get(url, headers=ADMIN)).status_code == 200

    def end(self) -> None:
        self.root.end()
        self.provider.shutdown()


async def drive(client: Client, url: dict[str, str]) -> None:
    """The flow of tests/e2e/test_lead_to_follow_up.py, shortened to what the trace needs."""
    budget = {"amount": "50000000", "currency": "VND"}
    campaign = {"name": "Tết 2027", "channel": "facebook", "code": "tet-2027", "budget": budget}
    campaign_id = (await client.post(f"{url['leads']}/campaigns", campaign))["id"]
    await client.post(f"{url['leads']}/campaigns/{campaign_id}/status", {"status": "active"})
    lead = {
        "source": "facebook_lead_ads",
        "external_id": "fb-1",
        "contact": {"name": "Hoàng Thị Yến", "phone": "0905123456"},
        "attribution": {"source": "facebook_lead_ads", "campaign_id": "tet-2027"},
    }
    lead_id = (await client.post(f"{url['leads']}/leads", lead))["id"]
    for path, body in [
        ("assign", {"owner_id": "u-lan", "team_id": "north"}),
        ("contact", {"channel": "phone"}),
        ("qualify", {"level": "sql"}),
        ("convert", {"customer": "Quán Yến", "title": "Tủ mát"}),
    ]:
        await client.post(f"{url['leads']}/leads/{lead_id}/{path}", body)
    deal = f"{url['deals']}/deals/{deal_id_for_lead(uuid.UUID(lead_id))}"
    await wait_until(lambda: client.exists(deal), timeout=60, interval=0.3)
    line = {"product": "Tủ mát 2 cánh", "quantity": "2", "unit_price": {"amount": "14500000", "currency": "VND"}}
    await client.post(f"{deal}/change-lines", {"lines": [line]})
    tomorrow = (datetime.now(TZ) + timedelta(days=1)).date().isoformat()
    await client.post(f"{deal}/win", {"requested_delivery_date": tomorrow})
    order = f"{url['production']}/orders/{order_id_for_deal(uuid.UUID(deal.rsplit('/', 1)[1]))}"
    await wait_until(lambda: client.exists(order), timeout=60, interval=0.3)
    for path, body in [
        ("plan", {"planned_start": "2026-11-25", "planned_end": "2026-12-10"}),
        ("start-design", {}),
        ("approve-design", {}),
        ("request-materials", {"materials": [{"component": "máy nén", "quantity": "2"}]}),
        ("receive-materials", {"materials": [{"component": "máy nén", "quantity": "2"}]}),
        ("start-assembly", {}),
        ("record-output", {"product": "Tủ mát 2 cánh", "quantity": "2"}),
        ("complete-assembly", {}),
        ("record-inspection", {"passed": True, "inspected_quantity": "2"}),
        ("pack", {"packages": 1}),
        ("ship", {"carrier": "GHN", "quantity": "2"}),
    ]:
        await client.post(f"{order}/{path}", body)

    async def followed_up() -> bool:
        return bool((await client.http.get(deal, headers=ADMIN)).json()["follow_ups"])

    await wait_until(followed_up, timeout=60, interval=0.3)


def tag(span: dict[str, Any], key: str) -> Any:
    return next((t["value"] for t in span["tags"] if t["key"] == key), None)


def chain(found: dict[str, Any], event_type: str) -> list[str]:
    """From the producer span of the event of ``event_type``, up through its parents: "<service> <span name>" each."""
    spans = {s["spanID"]: s for s in found["spans"]}
    span = next(
        s
        for s in found["spans"]
        if tag(s, "messaging.operation.type") == "create"
        and str(tag(s, "cloudevents.event_type")).endswith(f".{event_type}")
    )
    walked = []
    while span is not None:
        service = found["processes"][span["processID"]]["serviceName"]
        walked.append(f"{service} {span['operationName']}")
        parent = next((r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"), None)
        span = spans.get(parent) if parent else None
    return walked


async def test_one_trace_from_the_lead_captured_to_the_follow_up_started(
    traced: tuple[Settings, dict[str, str]], jaeger: Jaeger
) -> None:
    _, url = traced
    async with httpx.AsyncClient(timeout=30) as http:
        client = Client(http, jaeger)
        try:
            await drive(client, url)
        finally:
            client.end()
    wanted = ("LeadCaptured", "DealOpened", "ProductionOrderCreated", "FollowUpStarted")
    found: dict[str, Any] = {}

    async def all_there() -> bool:
        found.update(jaeger.trace(client.trace_id) or {})
        spans = found.get("spans", [])
        types = {str(tag(s, "cloudevents.event_type") or "").rsplit(".", 1)[-1] for s in spans}
        return set(wanted) <= types and any(s["operationName"] == client.root_name for s in spans)

    await wait_until(all_there, timeout=30, interval=0.5)
    settings, _ = traced
    leads, deals, production = (f"create {re.escape(settings.events_topic(s))}" for s in SERVICES)
    root = "e2e-client a lead to the deal's follow-up"
    expected = {  # each event's producer span up to the client's root, one "<service> <span>" a parent
        "LeadCaptured": [f"pipelines-leads {leads}", "pipelines-leads POST /leads", root],
        "DealOpened": [
            f"pipelines-deals {deals}",
            "pipelines-deals process LeadConverted",
            f"pipelines-leads {leads}",
            r"pipelines-leads POST /leads/\{\w+\}/convert",
            root,
        ],
        "ProductionOrderCreated": [
            f"pipelines-production {production}",
            "pipelines-production process DealWon",
            f"pipelines-deals {deals}",
            r"pipelines-deals POST /deals/\{\w+\}/win",
            root,
        ],
        "FollowUpStarted": [
            f"pipelines-deals {deals}",
            "pipelines-deals process OrderShipped",
            f"pipelines-production {production}",
            r"pipelines-production POST /orders/\{\w+\}/ship",
            root,
        ],
    }
    for event_type, patterns in expected.items():
        walked = chain(found, event_type)
        assert len(walked) == len(patterns), (event_type, walked)
        assert all(re.fullmatch(p, w) for p, w in zip(patterns, walked, strict=True)), (event_type, walked)
    # the store's queries are in it too (asyncpg's instrumentation), under the commands and reactions
    assert any(tag(s, "db.system") == "postgresql" or tag(s, "db.system.name") == "postgresql" for s in found["spans"])
    # a read model's batch (the deals board applying the deal's events) is a span of the deals projector in a trace
    # of its own, linked to this one (a batch holds many traces); named by the read model's schema and name
    linked: list[dict[str, Any]] = []
    board = f"process {settings.schema_name('deals')}.board"  # "process deals.board" where no prefix is set

    async def board_linked() -> bool:
        linked[:] = linked_spans(jaeger, "pipelines-deals", board, client.trace_id)
        return bool(linked)

    await wait_until(board_linked, timeout=30, interval=0.5)
    assert all(tag(s, "messaging.operation.type") == "process" for s in linked)


def linked_spans(jaeger: Jaeger, service: str, operation: str, trace_id: str) -> list[dict[str, Any]]:
    """The spans of ``service`` named ``operation`` in the last ten minutes that link to ``trace_id``."""
    now = int(time.time() * 1_000_000)
    query = {"service": service, "operation": operation, "start": now - 600_000_000, "end": now, "limit": 100}
    answer = httpx.get(f"{jaeger.query_url}/api/traces", params=query, timeout=10)
    answer.raise_for_status()
    spans = [s for t in answer.json().get("data") or [] for s in t["spans"] if s["operationName"] == operation]
    return [s for s in spans if any(r["traceID"] == trace_id for r in s.get("references", []))]
