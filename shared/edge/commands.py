"""Commands over HTTP: the answer (ETag, position, Location), If-Match, Idempotency-Key, X-Occurred-At, and the one
helper every command route uses: parse → build the command → execute → answer.

- A command answers ``{"id", "stream_id", "version", "position"}`` with ``ETag: "<version>"``.
- ``If-Match: "<version>"`` makes the command conditional: a stream at another version → 412.
- ``Idempotency-Key``: the same key with the same body returns the first answer (``Idempotent-Replayed: true``);
  with another body → 422.
- ``X-Occurred-At`` back-dates the fact (decision 0021): the context carries it and, unless the caller is an admin
  or an importer, the back-dating limit (``app.state.backdate_limit_days``: PIPELINES_BACKDATE_LIMIT_DAYS). The
  service checks both on its own clock when it decides (``Context.check_time``): a time in the future 422
  ``occurred_in_future``, further back than the limit 403 ``backdate_limit``, before the stream's last event 422
  ``before_previous_event``.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shared.core.limits import (
    IDEMPOTENCY_KEY_PATTERN,
    MAX_ETAG_CHARS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_TIME_HEADER_CHARS,
    MAX_VERSION,
    moment_problem,
    shown,
)
from shared.edge.auth import Principal, required_roles
from shared.edge.fastpath import FastCommand, RouteName, registered
from shared.store import AppendResult, Idempotency
from shared.store.commands import CommandResult, Context

_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,10})"\s*$')


class CommandAnswer(BaseModel):
    id: str = Field(description="the aggregate the command changed")
    stream_id: str
    version: int = Field(description="the stream's version after the command (also the ETag)")
    position: int = Field(description="global position of the last event; queries can wait for it")
    replayed: bool = Field(False, description="true when an Idempotency-Key returned an earlier answer")


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
    """The context of a command from its request: actor, correlation, If-Match, Idempotency-Key, X-Occurred-At and
    the caller's back-dating limit.

    The idempotency fingerprint is of the body as sent, so ids the API fills in do not make a retry look new.
    """
    body = await request.json() if key and await request.body() else None
    principal: Principal | None = getattr(request.state, "principal", None)
    unlimited = principal is not None and bool(principal.roles & BACKDATE_ANY_ROLES)
    return Context(
        actor=actor,
        correlation_id=request.state.correlation_id,
        causation_id=request.headers.get("x-causation-id"),
        expected_version=if_match_version(if_match),
        idempotency=idempotency(f"{actor}:{request.method} {request.url.path}", key, body) if key else None,
        occurred_at=occurred_at,
        backdate_limit_days=None if unlimited else backdate_limit_days(request),
    )


BACKDATE_ANY_ROLES = frozenset({"admin", "importer"})  # may back-date further than the limit
DEFAULT_BACKDATE_LIMIT_DAYS = 7  # PIPELINES_BACKDATE_LIMIT_DAYS' default, for an app built without settings


def backdate_limit_days(request: Request) -> int:
    """How far back a caller neither admin nor importer may date a fact: the app's setting."""
    return int(getattr(request.app.state, "backdate_limit_days", DEFAULT_BACKDATE_LIMIT_DAYS))


def answer(aggregate_id: str, result: AppendResult, *, created: bool = False, location: str | None = None) -> Response:
    body = {  # CommandAnswer's fields, as its model_dump() gives them (without building the model)
        "id": aggregate_id,
        "stream_id": result.stream_id,
        "version": result.version,
        "position": result.position,
        "replayed": result.replayed,
    }
    headers = {"ETag": f'"{result.version}"'}
    if location:
        headers["Location"] = location
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    code = status.HTTP_201_CREATED if created and not result.replayed else status.HTTP_200_OK
    return JSONResponse(body, status_code=code, headers=headers)


OccurredAt = Annotated[
    str | None,
    Header(
        max_length=MAX_TIME_HEADER_CHARS,
        description="back-dates the fact to when it happened (ISO 8601 with offset); its recorded time stays",
    ),
]


def occurred_at_header(value: str | None) -> datetime | None:
    """``X-Occurred-At``: a time with its offset, within the range the store holds (else 422)."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, detail=f"X-Occurred-At must be an ISO 8601 time, not {shown(value)}") from None
    if at.tzinfo is None:
        raise HTTPException(422, detail="X-Occurred-At needs a time zone offset")
    if problem := moment_problem(at):
        raise HTTPException(422, detail=f"X-Occurred-At: {problem}")
    return at


async def run_command(
    request: Request,
    actor: str,
    execute: Callable[[Context], Awaitable[CommandResult[Any]]],
    *,
    aggregate_id: Callable[[AppendResult], str] | str,
    if_match: str | None = None,
    idempotency_key: str | None = None,
    occurred_at: str | None = None,
    created: bool = False,
    location: str | None = None,
) -> Response:
    """The one way a route runs a command: its context from the request (actor, correlation, If-Match,
    Idempotency-Key, X-Occurred-At), ``execute`` (the service's handler, with the rights check it runs on the
    state it decides on), and the answer: ETag, position, and for a created aggregate 201 with ``Location``
    (``{id}`` in it is the aggregate's id)."""
    ctx = await command_context(request, actor, if_match, idempotency_key, occurred_at_header(occurred_at))
    result = await execute(ctx)
    done = aggregate_id(result.append) if callable(aggregate_id) else aggregate_id
    return answer(done, result.append, created=created, location=location.format(id=done) if location else None)


Handle = Callable[[Request, uuid.UUID, Any, Principal, Context], Awaitable[CommandResult[Any]]]


def command_routes(
    router: APIRouter,
    commands: Iterable[type[BaseModel]],
    *,
    prefix: str,
    id_param: str,
    principal: Any,
    handle: Handle,
    tags: list[str],
    occurred_at: bool = False,
    describe: bool = False,
) -> None:
    """One ``POST {prefix}/{id}/{command-name}`` route per command class (its ``name``, dashed): the body is the
    command, ``handle(request, id, command, principal, context)`` runs it (the request gives it
    the service: ``request.app.state``), so a service's command routes are a module-level router. ``principal`` is the route's rights dependency
    (``Depends(require(...))``); ``occurred_at`` adds the X-Occurred-At header; ``describe`` uses the command's
    docstring as the route's description."""
    for cmd in commands:
        _command_route(router, cmd, prefix, id_param, principal, handle, tags, occurred_at, describe)


def _command_route(
    router: APIRouter,
    cmd: type[BaseModel],
    prefix: str,
    id_param: str,
    principal: Any,
    handle: Handle,
    tags: list[str],
    occurred_at: bool,
    describe: bool,
) -> None:
    name: str = cmd.name  # type: ignore[attr-defined]  # every command class names itself

    async def run(**params: Any) -> Response:
        aggregate_id: uuid.UUID = params[id_param]
        p: Principal = params["p"]
        return await run_command(
            params["request"],
            p.user_id,
            lambda ctx: handle(params["request"], aggregate_id, params["body"], p, ctx),
            aggregate_id=str(aggregate_id),
            if_match=params["if_match"],
            idempotency_key=params["idempotency_key"],
            occurred_at=params.get("x_occurred_at"),
        )

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter(id_param, keyword, annotation=uuid.UUID),
        inspect.Parameter("request", keyword, annotation=Request),
        inspect.Parameter("body", keyword, annotation=cmd),
        inspect.Parameter("p", keyword, annotation=Annotated[Principal, principal]),
        inspect.Parameter("if_match", keyword, annotation=IfMatch, default=None),
        inspect.Parameter("idempotency_key", keyword, annotation=IdempotencyKey, default=None),
    ]
    if occurred_at:
        parameters.append(inspect.Parameter("x_occurred_at", keyword, annotation=OccurredAt, default=None))
    run.__signature__ = inspect.Signature(parameters, return_annotation=Response)  # type: ignore[attr-defined]
    path = f"{prefix}/{name.replace('_', '-')}"
    router.add_api_route(
        path,
        run,
        methods=["POST"],
        response_model=CommandAnswer,
        tags=list(tags),
        summary=name.replace("_", " "),
        description=((cmd.__doc__ or "").strip() or None) if describe else None,
        name=name,
    )
    if (roles := required_roles(getattr(principal, "dependency", None))) is not None:  # decision 0033

        async def fast(request: Request, aggregate_id: uuid.UUID, body: Any, p: Principal) -> Response:
            return await run_command(
                request,
                p.user_id,
                lambda ctx: handle(request, aggregate_id, body, p, ctx),
                aggregate_id=str(aggregate_id),
            )

        fast_path = FastCommand(cmd, roles, fast, RouteName(path))
        registered(router).add(prefix, name.replace("_", "-"), fast_path)
