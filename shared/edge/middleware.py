"""The middleware every API runs: the correlation id and one access-log line per request, and the body limit."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from fastapi import HTTPException, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.core.limits import check_trace_header
from shared.edge.problems import problem as problem_answer
from shared.edge.workers import worker
from shared.ops.metrics import HTTP_SECONDS, HTTP_WORKER_REQUESTS

access = structlog.get_logger("pipelines.access")


class Correlation:
    """The correlation id (taken or made, bound to the logs, returned) and the request's metric.

    Plain ASGI rather than ``@app.middleware("http")``, whose per-request task and streams cost more CPU than the
    rest of a command's HTTP handling."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self.answered = HTTP_WORKER_REQUESTS.labels(service, worker() or "0")  # which worker process answered
        self.timers: dict[tuple[str, str, int], Any] = {}  # HTTP_SECONDS' children, looked up once (bounded labels)

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
                await problem_answer(400, problem, "invalid_header", correlation_id=cid)(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        took = time.perf_counter() - started
        path = getattr(scope.get("route"), "path", "unmatched")  # the route's template, never an id: bounded labels
        labels = (scope["method"], path, status_code)
        if (timer := self.timers.get(labels)) is None:
            timer = self.timers[labels] = HTTP_SECONDS.labels(self.service, labels[0], path, str(status_code))
        timer.observe(took)
        self.answered.inc()
        principal = scope["state"].get("principal")
        access.info(  # the route's template and the caller's id: never the path's ids, a token or personal data
            "http.request",
            method=scope["method"],
            route=path,
            status=status_code,
            duration_ms=round(took * 1000, 2),
            user_id=getattr(principal, "user_id", None),
            correlation_id=cid,
        )


class BodyLimit:
    """A request body over ``app.state.max_body_bytes`` answers 413 before it is parsed: at once when its
    Content-Length says so, else as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit: int = scope["app"].state.max_body_bytes
        # a route taking a streamed upload under a limit of its own (the directory's POST /imports) checks it itself
        limit = getattr(scope["app"].state, "body_limits", {}).get(scope.get("path"), limit)
        detail = f"the request body is larger than {limit} bytes"
        length = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if length.isdigit() and int(length) > limit:
            cid = scope.get("state", {}).get("correlation_id")
            await problem_answer(413, detail, correlation_id=cid)(scope, receive, send)
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
