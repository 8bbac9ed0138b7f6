"""What the sign-in routes share: the ``Signin`` they reach (on ``app.state.signin``), the client's address, and the
refusals answered as problem+json (with ``Retry-After`` for 423 and 429; 422 naming the field)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.signin.domain.errors import PasswordRejectedError, SignInError
from services.signin.handlers import Signin
from shared.core.limits import bounded_errors
from shared.edge.problems import ERRORS as COMMON_ERRORS
from shared.edge.problems import Problem, invalid, problem

MAX_ADDRESS_CHARS = 64


def _content(description: str) -> dict[str, Any]:
    return {"model": Problem, "content": {"application/problem+json": {}}, "description": description}


ERRORS = COMMON_ERRORS | {
    423: _content("too many failed sign-ins for this email: locked (Retry-After)"),
    429: _content("too many sign-in attempts from this address (Retry-After)"),
    503: _content("the directory or Kafka did not answer: nothing was done; try again"),
}


def service(request: Request) -> Signin:
    svc: Signin = request.app.state.signin
    return svc


Service = Annotated[Signin, Depends(service)]


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def networks(setting: str) -> Networks:
    """``PIPELINES_SIGNIN_TRUSTED_PROXIES``: addresses or networks (CIDR), comma-separated."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in setting.split(",") if part.strip())


def _within(address: str, trusted: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in trusted)


def client_address(request: Request) -> str:
    """The caller's address; the first ``X-Forwarded-For`` value when the caller is a trusted proxy (the board)."""
    direct = request.client.host if request.client else "unknown"
    trusted: Networks = getattr(request.app.state, "trusted_proxies", ())
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and _within(direct, trusted):
        first = forwarded.split(",")[0].strip()[:MAX_ADDRESS_CHARS]
        try:
            return str(ipaddress.ip_address(first))
        except ValueError:
            return direct
    return direct


ClientAddress = Annotated[str, Depends(client_address)]


async def refused(request: Request, exc: Any) -> JSONResponse:
    assert isinstance(exc, SignInError)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    members: dict[str, Any] = {}
    if isinstance(exc, PasswordRejectedError):
        members["errors"] = [{"loc": ["body", "password"], "msg": exc.message, "type": exc.rule}]
    if exc.status == 401:
        headers = (headers or {}) | {"Cache-Control": "no-store"}
    return problem(
        exc.status,
        exc.message,
        exc.rule,
        correlation_id=getattr(request.state, "correlation_id", None),
        headers=headers,
        **members,
    )


async def invalid_without_input(request: Request, exc: Any) -> JSONResponse:
    """422 naming each field at fault, without echoing any input: here it may be a password, a session secret or a
    reset link (a missing field's input is the whole body, the password with it)."""
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
    return invalid(request, bounded_errors(errors))
