"""Every error answer of every API, in one place: ``application/problem+json`` (RFC 9457).

A problem has a stable ``type`` per rule (``urn:pipelines:problem:<rule>``; a URN, since nothing is served at it),
a ``title``, the ``status``, a ``detail`` sentence and the ``instance`` (the request's correlation id, so a support
ticket finds its log lines). ``rule`` stays a member, as before the format: the board, the CLI and clients that
match on it keep working. An invalid request lists each field at fault in ``errors`` (loc, msg, type, ctx).

Which refusal answers which status is decided here and nowhere else: the domains raise ``RuleError`` (409),
``InvalidError`` (422), ``AbsentError`` (404); the rights checks ``ForbiddenError`` (403) and ``NotVisibleError``
(404, as if it did not exist); the store ``ConcurrencyError`` (412 with If-Match, else 409).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.core.decider import AbsentError, ForbiddenError, InvalidError, NotVisibleError, RefusedError
from shared.core.limits import LONE_SURROGATE, bounded_errors
from shared.messaging.projections import ReadModelBehindError
from shared.store import ConcurrencyError, EventTooLargeError, IdempotencyKeyReusedError, StaleTransactionError

log = structlog.get_logger(__name__)
MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:pipelines:problem:"

# The rule of an answer raised without one (FastAPI's HTTPException, the server's own answers), by status.
RULE_OF_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "stale_version",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
}
TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Refused by a rule",
    412: "Precondition failed",
    413: "Body too large",
    422: "Invalid input",
    431: "Headers too large",
    500: "Internal error",
    503: "Unavailable",
}


class Problem(BaseModel):
    """An error answer (RFC 9457 problem details); ``rule`` names the rule, for clients to match."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="urn:pipelines:problem:<rule>, stable per rule")
    title: str
    status: int
    detail: str
    rule: str
    instance: str | None = Field(None, description="urn:pipelines:request:<correlation id>")


class InvalidInput(Problem):
    """A 422: a sentence, and (when the request did not match the API's types) each field at fault."""

    errors: list[dict[str, Any]] | None = Field(None, description="each field at fault: loc, msg, type, ctx")


def _content(model: type[BaseModel]) -> dict[str, Any]:
    return {"model": model, "content": {MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}


# The error answers every route may give; a service names its own 404 on top (``ERRORS | not_found("...")``).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _content(Problem)
    | {
        "description": "the body is not well-formed JSON, or X-Correlation-ID or X-Causation-ID is not 1 to 128 "
        "characters of A-Z a-z 0-9 . _ : -"
    },
    401: _content(Problem) | {"description": "no valid credential: a bearer token, or a webhook's signature or token"},
    403: _content(Problem) | {"description": "the caller's roles do not allow this"},
    404: _content(Problem) | {"description": "no such resource (or not one the caller may see)"},
    409: _content(Problem) | {"description": "a business rule refused the command; `rule` names it"},
    412: _content(Problem) | {"description": "If-Match named another version than the stream's"},
    413: _content(Problem) | {"description": "the body is larger than this API takes (PIPELINES_MAX_BODY_BYTES)"},
    422: _content(InvalidInput) | {"description": "the input is invalid; `detail` says what, `errors` which fields"},
    503: _content(Problem) | {"description": "not available now (read model behind, source not configured); retry"},
}


def not_found(description: str) -> dict[int | str, dict[str, Any]]:
    return {404: _content(Problem) | {"description": description}}


def problem(
    status: int,
    detail: str,
    rule: str | None = None,
    *,
    correlation_id: str | None = None,
    headers: dict[str, str] | None = None,
    **members: Any,
) -> JSONResponse:
    """A problem+json answer."""
    rule = rule or RULE_OF_STATUS.get(status, "error")
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + rule,
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "rule": rule,
    }
    if correlation_id:
        body["instance"] = f"urn:pipelines:request:{correlation_id}"
    body |= {k: v for k, v in members.items() if v is not None}
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=headers, media_type=MEDIA_TYPE)


def problem_bytes(status: int, detail: str, rule: str | None = None) -> bytes:
    """The body of a problem answered below the app (the server's own 431)."""
    return bytes(problem(status, detail, rule).body)


def status_of(refusal: RefusedError) -> int:
    """The one mapping of a domain's refusal to an HTTP status."""
    if isinstance(refusal, AbsentError | NotVisibleError):
        return 404
    if isinstance(refusal, ForbiddenError):
        return 403
    if isinstance(refusal, InvalidError):
        return 422
    return 409


def _route(request: Request) -> str:
    """The route's template, never the path's ids (logs hold no personal data)."""
    return getattr(request.scope.get("route"), "path", "unmatched")


def _cid(request: Request) -> str | None:
    return getattr(request.state, "correlation_id", None)


async def http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """An ``HTTPException`` as a problem: its detail a sentence, or each field at fault (a route's own checks)."""
    if isinstance(exc.detail, list):
        return invalid(request, exc.detail)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, detail, correlation_id=_cid(request), headers=headers)


def invalid(request: Request, errors: list[dict[str, Any]]) -> JSONResponse:
    where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in errors[:5])
    detail = f"the request does not match this API: {where}" if where else "the request does not match this API"
    return problem(422, detail, "invalid_input", correlation_id=_cid(request), errors=errors)


async def invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
    return invalid(request, bounded_errors(exc.errors()))


async def refused(request: Request, exc: RefusedError) -> JSONResponse:
    """A refusal; one naming the ``field`` at fault (a reference to nothing: a 422) lists it in ``errors`` too."""
    status, field = status_of(exc), getattr(exc, "field", None)
    errors = None
    if status == 422 and isinstance(field, str):
        errors = [{"loc": [getattr(exc, "where", "body"), field], "msg": exc.message, "type": exc.rule}]
    return problem(status, exc.message, exc.rule, correlation_id=_cid(request), errors=errors)


async def concurrency(request: Request, exc: ConcurrencyError) -> JSONResponse:
    if request.headers.get("if-match"):
        return problem(
            412,
            f"precondition failed: {exc}",
            "stale_version",
            correlation_id=_cid(request),
            headers={"ETag": f'"{exc.actual}"'} if exc.actual is not None else None,
        )
    return problem(409, f"too many concurrent changes: {exc}", "conflict", correlation_id=_cid(request))


async def stale_transaction(request: Request, exc: StaleTransactionError) -> JSONResponse:
    """A command whose transaction wrote something else first, raced on its stream by a younger one (rare: the
    store keeps each stream in commit order). Nothing was written; sent again, it goes through."""
    return problem(
        409, f"a concurrent change came first, nothing was written: {exc}", "conflict", correlation_id=_cid(request)
    )


async def key_reused(request: Request, exc: IdempotencyKeyReusedError) -> JSONResponse:
    return problem(422, str(exc), "idempotency_key_reused", correlation_id=_cid(request))


async def too_large(request: Request, exc: EventTooLargeError) -> JSONResponse:
    return problem(
        422,
        str(exc),
        "event_too_large",
        correlation_id=_cid(request),
        field=exc.field,
        limit=exc.limit,
        size=exc.size,
    )


async def behind(request: Request, exc: ReadModelBehindError) -> JSONResponse:
    return problem(
        503,
        f"the read model is not there yet: {exc}",
        "read_model_behind",
        correlation_id=_cid(request),
        headers={"Retry-After": "1"},
    )


# Text PostgreSQL cannot store (a NUL character, in a query parameter or a JSON string): the caller's input.
async def not_text(request: Request, exc: Exception) -> JSONResponse:
    return problem(422, "text may not contain NUL (\\u0000) characters", "invalid_text", correlation_id=_cid(request))


# A lone surrogate (JSON's "\ud800") that reached the database driver, the backstop of shared.core.limits' checks.
async def not_unicode(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
    return problem(422, f"text may not hold {LONE_SURROGATE}", "invalid_text", correlation_id=_cid(request))


# A number or a time the database cannot hold (a bigint past 2^63, a year before 1 once in UTC), the backstop of
# the bounds in shared.core.limits: the value is the request's (asyncpg names only the query's argument).
async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, asyncpg.DataError) and not str(exc).startswith("invalid input for query argument"):
        return await internal(request, exc)  # the database refused a value of ours: a fault here
    log.warning("http.value_out_of_range", error=type(exc).__name__, route=_route(request))
    return problem(
        422,
        "a number or a time in the request is out of the range this API holds",
        "out_of_range",
        correlation_id=_cid(request),
    )


# PostgreSQL gone (stopped, restarting, unreachable): the pool reconnects by itself, so a retry soon may work.
# A command whose connection broke may have committed: its Idempotency-Key makes the retry safe. A connection
# lost in the middle of a transaction surfaces as asyncpg's InterfaceError (ConnectionDoesNotExistError, or
# "the underlying connection is closed" when the transaction ends) or InternalClientError (a broken protocol
# state): the database went away, not the request's fault (issue 19's fault suite: 500s while it stopped).
async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return problem(
        503,
        f"the database is not available: {type(exc).__name__}",
        "unavailable",
        correlation_id=_cid(request),
        headers={"Retry-After": "2"},
    )


async def internal(request: Request, exc: Exception) -> JSONResponse:
    """A fault of ours: logged with its traceback, answered without it."""
    log.error("http.unhandled", route=_route(request), exc_info=exc)
    return problem(500, "an internal error; the correlation id finds it in the logs", correlation_id=_cid(request))


HANDLERS: tuple[tuple[type[Exception], Any], ...] = (
    (StarletteHTTPException, http_problem),
    (RequestValidationError, invalid_input),
    (RefusedError, refused),
    (ConcurrencyError, concurrency),
    (StaleTransactionError, stale_transaction),
    (IdempotencyKeyReusedError, key_reused),
    (EventTooLargeError, too_large),
    (ReadModelBehindError, behind),
    (asyncpg.CharacterNotInRepertoireError, not_text),
    (asyncpg.UntranslatableCharacterError, not_text),
    (UnicodeEncodeError, not_unicode),
    (OverflowError, out_of_range),
    (asyncpg.DataError, out_of_range),
    (OSError, database_unavailable),
    (asyncpg.PostgresConnectionError, database_unavailable),
    (asyncpg.exceptions.OperatorInterventionError, database_unavailable),
    (asyncpg.InterfaceError, database_unavailable),
    (asyncpg.InternalClientError, database_unavailable),
    (Exception, internal),
)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error of ``app`` answered as a problem, 500s included."""
    for kind, handler in HANDLERS:
        app.add_exception_handler(kind, handler)
