"""What every service API shares: the app's common parts. Commands: ``shared.edge.commands``; queries (pages,
waiting for a position, audit trails): ``shared.edge.queries``; error answers: ``shared.edge.problems``.

- A command answers ``{"id", "stream_id", "version", "position"}`` with ``ETag: "<version>"``.
- ``If-Match: "<version>"`` makes the command conditional: a stream at another version → 412.
- ``Idempotency-Key``: the same key with the same body returns the first answer (``Idempotent-Replayed: true``);
  with another body → 422.
- ``X-Correlation-ID`` is taken from the request (or made) and returned; logs carry it. It and ``X-Causation-ID``
  go into the events' metadata, so each must be 1 to 128 characters of ``A-Z a-z 0-9 . _ : -``: another value is
  answered 400 naming the header and its limit, and is never sent back (the answer carries a new correlation id).
- Every other header and body field that reaches an event is bounded (``shared.core.limits``); a field over its limit
  is answered 422 with each field at fault: ``loc``, ``msg`` and ``ctx`` name the field and the limit, and the
  input is shown back only when it is short.
- What no store can hold and got past those bounds is the request's fault too: a lone surrogate (``"\\ud800"``)
  answers 422 ``invalid_text``, a number or time beyond the database's range 422 ``out_of_range``; a page's cursor
  is one this API gave (a whole offset up to ``MAX_OFFSET``) or 422. Request heads are bounded by the server
  (``shared.edge.httpserver``: 431).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from shared.edge.busy_docs import document_busy
from shared.edge.docs import install_docs
from shared.edge.middleware import BodyLimit, Correlation
from shared.edge.overload import InFlightLimit
from shared.edge.problems import install_problem_handlers
from shared.edge.schemas import install_event_schemas
from shared.ops import tracing
from shared.ops.metrics import exposition
from shared.ops.version import VERSION

MAX_BODY_BYTES = 1024 * 1024  # the default of PIPELINES_MAX_BODY_BYTES


class Health(BaseModel):
    """The process is alive, and which version it runs."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok", "version": "1.0.0"}]})
    status: Literal["ok"]
    version: str


class Readiness(BaseModel):
    """Whether each dependency answers: ``ok`` (perhaps with a note after ``ok; ``, such as a read model still waiting
    for a topic another service makes: it serves meanwhile), or what went wrong."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ok", "checks": {"store": "ok", "kafka": "ok"}},
                {"status": "unavailable", "checks": {"store": "ok", "kafka": "KafkaConnectionError"}},
            ]
        }
    )
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]


def passes(check: str) -> bool:
    """A readiness check passes when it says ``ok``, alone or followed by a note (``ok; waiting for topics: …``)."""
    return check == "ok" or check.startswith("ok; ")


def install_common(
    app: FastAPI,
    readiness: Callable[[], Awaitable[dict[str, str]]],
    service: str,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    bounded: bool = True,
) -> None:
    """Correlation ids, request metrics, a body size limit, error answers, /healthz, /readyz, /metrics and the event
    schemas (open, no token). The limit may be changed until the app serves: ``app.state.max_body_bytes``.
    ``bounded``: an API process behind the in-flight bound (its process sets ``app.state.max_in_flight``), whose
    OpenAPI document lists the 503 ``busy`` answer on every route (``shared.edge.busy_docs``)."""

    app.state.max_body_bytes = max_body_bytes
    app.add_middleware(BodyLimit)
    app.add_middleware(Correlation, service=service)  # outermost: a 413 has its correlation id and metric
    tracing.instrument_app(app)  # server spans, when tracing is on (shared.ops.tracing)
    # outermost of all: past app.state.max_in_flight (set by an API process before it serves) 503 busy at once
    app.add_middleware(InFlightLimit, service=service, state=app.state)  # decision 0032
    if bounded:
        document_busy(app)

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics of this process",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    install_problem_handlers(app)
    install_docs(app)  # /docs from the installed Swagger UI, no CDN (shared.edge.docs)
    install_event_schemas(app)  # /schemas/events/…: where the events' dataschema points (shared.edge.schemas)

    @app.get("/healthz", tags=["health"], summary="the process is alive")
    async def healthz() -> Health:
        return Health(status="ok", version=VERSION)

    @app.get(
        "/readyz",
        tags=["health"],
        summary="PostgreSQL and Kafka answer",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "a dependency does not answer; `checks` says which"}},
    )
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ok = all(passes(v) for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)
