"""What every service API shares: command answers (ETag, position), If-Match, Idempotency-Key, errors,
correlation ids, pagination, health.

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

import base64
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import asyncpg
import structlog
from fastapi import FastAPI, Header, HTTPException, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.core.decider import Context, RuleError
from shared.core.limits import (
    IDEMPOTENCY_KEY_PATTERN,
    LONE_SURROGATE,
    MAX_ETAG_CHARS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_OFFSET,
    MAX_POSITION,
    MAX_VERSION,
    bounded_errors,
    check_trace_header,
    shown,
)
from shared.messaging.projections import ReadModelBehindError
from shared.ops.metrics import HTTP_SECONDS, exposition
from shared.privacy.pii import PersonalData, without_personal_data
from shared.store import (
    AppendResult,
    ConcurrencyError,
    EventStore,
    EventTooLargeError,
    Idempotency,
    IdempotencyKeyReusedError,
    RecordedEvent,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")
_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,10})"\s*$')


class CommandAnswer(BaseModel):
    id: str = Field(description="the aggregate the command changed")
    stream_id: str
    version: int = Field(description="the stream's version after the command (also the ETag)")
    position: int = Field(description="global position of the last event; queries can wait for it")
    replayed: bool = Field(False, description="true when an Idempotency-Key returned an earlier answer")


class Problem(BaseModel):
    """An error answer: what went wrong, and for broken business rules, which rule."""

    detail: str
    rule: str | None = None


class InvalidInput(BaseModel):
    """A 422: a sentence, or (when the request did not match the API's types) each field at fault."""

    detail: str | list[dict[str, Any]] = Field(description="what is wrong; for invalid fields a list of loc, msg, type")
    rule: str | None = None


# The error answers every route may give; a service names its own 404 on top (``ERRORS | {404: ...}``).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Problem,
        "description": "the body is not well-formed JSON, or X-Correlation-ID or X-Causation-ID is not 1 to 128 "
        "characters of A-Z a-z 0-9 . _ : -",
    },
    401: {"model": Problem, "description": "no valid credential: a bearer token, or a webhook's signature or token"},
    403: {"model": Problem, "description": "the caller's roles do not allow this"},
    404: {"model": Problem, "description": "no such resource (or not one the caller may see)"},
    409: {"model": Problem, "description": "a business rule refused the command; `rule` names it"},
    412: {"model": Problem, "description": "If-Match named another version than the stream's"},
    413: {"model": Problem, "description": "the body is larger than this API takes (PIPELINES_MAX_BODY_BYTES)"},
    422: {"model": InvalidInput, "description": "the input is invalid; `detail` says what"},
    503: {"model": Problem, "description": "not available now (read model behind, source not configured); retry"},
}


def if_match_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    m = _ETAG.match(if_match)
    if not m or int(m.group(1)) > MAX_VERSION:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f'If-Match must be a version ETag such as "3", not {shown(if_match)}',
        )
    return int(m.group(1))


IfMatch = Annotated[
    str | None, Header(max_length=MAX_ETAG_CHARS, description='the version the command expects, as an ETag: "3"')
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_CHARS,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="a retry with the same key returns the first answer (printable ASCII)",
    ),
]


def idempotency(scope: str, key: str | None, body: Any) -> Idempotency | None:
    return Idempotency.of(scope, key, body) if key else None


async def command_context(
    request: Request,
    actor: str,
    if_match: str | None = None,
    key: str | None = None,
    occurred_at: datetime | None = None,
) -> Context:
    """The context of a command from its request: actor, correlation, If-Match, Idempotency-Key.

    The idempotency fingerprint is of the body as sent, so ids the API fills in do not make a retry look new.
    """
    body = await request.json() if key and await request.body() else None
    return Context(
        actor=actor,
        correlation_id=request.state.correlation_id,
        causation_id=request.headers.get("x-causation-id"),
        expected_version=if_match_version(if_match),
        idempotency=idempotency(f"{actor}:{request.method} {request.url.path}", key, body),
        occurred_at=occurred_at,
    )


async def history_page(
    events: Sequence[RecordedEvent], personal_data: PersonalData, *, personal: bool, offset: int, limit: int
) -> Page[dict[str, Any]]:
    """An aggregate's events for its audit trail: what, when (happened and recorded), who, why, the chain.
    Personal fields are opened only for callers allowed to see them."""
    chunk = list(events[offset : offset + limit + 1])
    opened = (
        await personal_data.open([e.data for e in chunk])
        if personal
        else [without_personal_data(e.data) for e in chunk]
    )
    items = [
        {
            "version": e.version,
            "position": e.position,
            "event_id": str(e.event_id),
            "type": e.event_type,
            "schema_version": e.schema_version,
            "occurred_at": e.occurred_at.isoformat(),
            "recorded_at": e.recorded_at.isoformat(),
            "actor": e.metadata.get("actor"),
            "reason": e.metadata.get("reason") or data.get("reason"),
            "correlation_id": e.correlation_id,
            "causation_id": e.causation_id,
            "data": data,
        }
        for e, data in zip(chunk, opened, strict=True)
    ]
    return page(items, offset, limit)


def answer(aggregate_id: str, result: AppendResult, *, created: bool = False, location: str | None = None) -> Response:
    body = CommandAnswer(
        id=aggregate_id,
        stream_id=result.stream_id,
        version=result.version,
        position=result.position,
        replayed=result.replayed,
    )
    headers = {"ETag": f'"{result.version}"'}
    if location:
        headers["Location"] = location
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    code = status.HTTP_201_CREATED if created and not result.replayed else status.HTTP_200_OK
    return JSONResponse(body.model_dump(), status_code=code, headers=headers)


MAX_BODY_BYTES = 1024 * 1024  # the default of PIPELINES_MAX_BODY_BYTES


def install_common(
    app: FastAPI,
    readiness: Callable[[], Awaitable[dict[str, str]]],
    service: str,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> None:
    """Correlation ids, request metrics, a body size limit, error answers, /healthz, /readyz and /metrics (open,
    no token). The limit may be changed until the app serves: ``app.state.max_body_bytes``."""

    app.state.max_body_bytes = max_body_bytes
    app.add_middleware(_BodyLimit)
    app.add_middleware(_Correlation, service=service)  # outermost: a 413 has its correlation id and metric

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

    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": jsonable_encoder(bounded_errors(exc.errors()))}, status_code=422)

    @app.exception_handler(ConcurrencyError)
    async def concurrency(request: Request, exc: ConcurrencyError) -> JSONResponse:
        if request.headers.get("if-match"):
            return JSONResponse(
                {"detail": f"precondition failed: {exc}", "rule": "stale_version"},
                status_code=status.HTTP_412_PRECONDITION_FAILED,
                headers={"ETag": f'"{exc.actual}"'} if exc.actual is not None else {},
            )
        return JSONResponse({"detail": f"too many concurrent changes: {exc}", "rule": "conflict"}, status_code=409)

    @app.exception_handler(RuleError)
    async def refused(request: Request, exc: RuleError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "rule": exc.rule}, status_code=exc.status)

    @app.exception_handler(IdempotencyKeyReusedError)
    async def key_reused(request: Request, exc: IdempotencyKeyReusedError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "rule": "idempotency_key_reused"}, status_code=422)

    @app.exception_handler(EventTooLargeError)
    async def too_large(request: Request, exc: EventTooLargeError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "rule": "event_too_large", "field": exc.field, "limit": exc.limit, "size": exc.size},
            status_code=422,
        )

    @app.exception_handler(ReadModelBehindError)
    async def behind(request: Request, exc: ReadModelBehindError) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the read model is not there yet: {exc}", "rule": "read_model_behind"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    # Text PostgreSQL cannot store (a NUL character, in a query parameter or a JSON string): the caller's input.
    for untextual in (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):

        @app.exception_handler(untextual)
        async def not_text(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse(
                {"detail": "text may not contain NUL (\\u0000) characters", "rule": "invalid_text"}, status_code=422
            )

    # A lone surrogate (JSON's "\ud800") that reached the database driver, the backstop of shared.core.limits' checks.
    @app.exception_handler(UnicodeEncodeError)
    async def not_unicode(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        return JSONResponse({"detail": f"text may not hold {LONE_SURROGATE}", "rule": "invalid_text"}, status_code=422)

    # A number or a time the database cannot hold (a bigint past 2^63, a year before 1 once in UTC), the backstop of
    # the bounds in shared.core.limits: the value is the request's (asyncpg names only the query's argument).
    @app.exception_handler(OverflowError)
    @app.exception_handler(asyncpg.DataError)
    async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, asyncpg.DataError) and not str(exc).startswith("invalid input for query argument"):
            raise exc  # the database refused a value of ours: a fault here, answered 500
        log.warning("http.value_out_of_range", error=type(exc).__name__, path=request.url.path)
        return JSONResponse(
            {"detail": "a number or a time in the request is out of the range this API holds", "rule": "out_of_range"},
            status_code=422,
        )

    # PostgreSQL gone (stopped, restarting, unreachable): the pool reconnects by itself, so a retry soon may work.
    # A command whose connection broke may have committed: its Idempotency-Key makes the retry safe. A connection
    # lost in the middle of a transaction surfaces as asyncpg's InterfaceError (ConnectionDoesNotExistError, or
    # "the underlying connection is closed" when the transaction ends) or InternalClientError (a broken protocol
    # state): the database went away, not the request's fault (issue 19's fault suite: 500s while it stopped).
    for unavailable in (
        OSError,
        asyncpg.PostgresConnectionError,
        asyncpg.exceptions.OperatorInterventionError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
    ):

        @app.exception_handler(unavailable)
        async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse(
                {"detail": f"the database is not available: {type(exc).__name__}", "rule": "unavailable"},
                status_code=503,
                headers={"Retry-After": "2"},
            )

    @app.get("/healthz", tags=["health"], summary="the process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="PostgreSQL and Kafka answer",
        responses={503: {"description": "a dependency does not answer; `checks` says which"}},
    )
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


class _Correlation:
    """The correlation id (taken or made, bound to the logs, returned) and the request's metric.

    Plain ASGI rather than ``@app.middleware("http")``, whose per-request task and streams cost more CPU than the
    rest of a command's HTTP handling."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-correlation-id"), b"")
        causation = next((v for k, v in scope["headers"] if k == b"x-causation-id"), b"")
        problem = check_trace_header("X-Correlation-ID", given) or check_trace_header("X-Causation-ID", causation)
        cid = given.decode("latin-1") if given and not problem else str(uuid.uuid4())  # a bad one is not echoed
        scope.setdefault("state", {})["correlation_id"] = cid  # request.state.correlation_id
        started = time.perf_counter()
        status_code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-correlation-id", cid.encode("latin-1"))]
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=cid):
            if problem:
                refused = JSONResponse({"detail": problem, "rule": "invalid_header"}, status_code=400)
                await refused(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        path = getattr(scope.get("route"), "path", "unmatched")  # the route's template, never an id: bounded labels
        HTTP_SECONDS.labels(self.service, scope["method"], path, str(status_code)).observe(
            time.perf_counter() - started
        )


class _BodyLimit:
    """A request body over ``app.state.max_body_bytes`` answers 413 before it is parsed: at once when its
    Content-Length says so, else as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit: int = scope["app"].state.max_body_bytes
        detail = f"the request body is larger than {limit} bytes"
        length = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if length.isdigit() and int(length) > limit:
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        read = 0

        async def limited() -> Message:
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            if read > limit:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=detail)
            return message

        await self.app(scope, limited, send)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; absent on the last")


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = data["o"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="cursor is not one this API gave") from None
    # an offset this API gave: a whole number (not 1e400, Infinity or true), at most MAX_OFFSET
    if type(offset) is not int or not 0 <= offset <= MAX_OFFSET:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="cursor is not one this API gave")
    return offset


WaitFor = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_POSITION,
        description="wait (5 s at most) until the read model has applied the event at this position",
    ),
]


async def wait_target(store: EventStore, position: int | None) -> tuple[str, int] | None:
    """What a query's ``position`` asks a read model to have applied: the (stream, version) of that event."""
    if position is None:
        return None
    located = await store.locate(position)
    if located is None:
        raise HTTPException(422, detail=f"no event at position {position}")
    return located


Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Cursor = Annotated[str | None, Query(description="from the previous page's next_cursor")]


def page(items: Sequence[T], offset: int, limit: int) -> Page[T]:
    """``items`` fetched with LIMIT limit + 1 from ``offset``."""
    more = len(items) > limit
    return Page(items=list(items[:limit]), next_cursor=encode_cursor(offset + limit) if more else None)
