"""Sign-in with OpenID Connect (services/signin/oidc.py): the board asks ``GET /oidc/start`` for the provider's
authorization URL and a browser binding (kept in a cookie of the browser that starts), sends the browser there, and
on its return posts the code, the state and that cookie's binding to ``POST /oidc/callback``, which answers as
``POST /sessions/password`` does (plus ``next``: the path given at the start).

No bearer token: a person is not signed in yet. Each call counts as a sign-in attempt from the client's address
(``PIPELINES_SIGNIN_RATE`` a minute, as passwords). Answers are ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.signin.api.common import ERRORS, ClientAddress, Service
from services.signin.api.sessions import NO_STORE
from services.signin.domain.errors import SignInError, TooManyAttemptsError
from services.signin.handlers import Signin
from services.signin.oidc import OidcClient, OidcNotConfiguredError, match_user
from shared.core.limits import MAX_URL_CHARS
from shared.edge.problems import Problem
from shared.ops.metrics import OIDC_SIGNINS

log = structlog.get_logger(__name__)
MAX_STATE_CHARS = 128  # ours are 43 characters; the binding too
MAX_CODE_CHARS = 2048  # a provider's code is opaque: Azure AD's run to about a thousand characters
NEXT_PATTERN = r"^/([^/\\\s][^\s\\]*)?$"  # a path on the board: never another site (no //host, no scheme)


def _content(description: str) -> dict[str, Any]:
    return {"model": Problem, "content": {"application/problem+json": {}}, "description": description}


router = APIRouter(
    responses=ERRORS
    | {
        403: _content(
            "the callback's binding is not the starting browser's (oidc_binding_mismatch), the provider does not say "
            "the email is verified (email_unverified), or no active directory user is this person (no_such_user)"
        ),
        404: _content("OpenID Connect is not configured here (PIPELINES_OIDC_ISSUER unset): oidc_not_configured"),
    },
    tags=["oidc"],
)


def oidc_client(request: Request) -> OidcClient:
    client: OidcClient | None = getattr(request.app.state, "oidc", None)
    if client is None:
        raise OidcNotConfiguredError("OpenID Connect sign-in is not configured here")
    return client


Oidc = Annotated[OidcClient, Depends(oidc_client)]


def _throttle(svc: Signin, client: str) -> None:
    if (wait := svc.throttle.check(client, svc.clock())) is not None:
        OIDC_SIGNINS.labels("too_many_requests").inc()
        raise TooManyAttemptsError("too many sign-in attempts from this address", retry_after=wait)


class Started(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "authorize_url": "https://idp.example.vn/authorize?response_type=code&client_id=pipelines"
                    "&redirect_uri=https%3A%2F%2Fboard.example.vn%2Flogin%2Foidc%2Fcallback&scope=openid+email"
                    "&state=…&nonce=…&code_challenge=…&code_challenge_method=S256",
                    "binding": "b1nd-9f2c…",
                }
            ]
        }
    )
    authorize_url: str = Field(description="where to send the browser: the provider's sign-in page")
    binding: str = Field(
        description="keep it in a cookie of this browser (HttpOnly) and send it back with the callback: a callback "
        "without it is refused (login CSRF)"
    )


class Callback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=MAX_CODE_CHARS, description="the provider's `code` query parameter")
    state: str = Field(min_length=1, max_length=MAX_STATE_CHARS, description="the provider's `state` parameter")
    binding: str = Field(min_length=1, max_length=MAX_STATE_CHARS, description="the binding /oidc/start gave")
    iss: str | None = Field(
        None, min_length=1, max_length=MAX_URL_CHARS, description="the provider's `iss` parameter, when it sends one"
    )


@router.get("/oidc/start", response_model=Started, summary="start a sign-in at the OpenID Provider")
async def start(
    svc: Service,
    oidc: Oidc,
    client: ClientAddress,
    response: Response,
    next_path: Annotated[
        str | None,
        Query(alias="next", max_length=500, pattern=NEXT_PATTERN, description="the board's path once signed in"),
    ] = None,
) -> Started:
    _throttle(svc, client)
    url, binding = await oidc.start(next_path)
    response.headers.update(NO_STORE)
    return Started(authorize_url=url, binding=binding)


@router.post(
    "/oidc/callback",
    status_code=201,
    summary="finish a sign-in at the OpenID Provider: a session, as /sessions/password answers, and `next`",
)
async def callback(
    body: Callback, svc: Service, oidc: Oidc, client: ClientAddress, response: Response
) -> dict[str, Any]:
    _throttle(svc, client)
    try:
        identity, next_path = await oidc.finish(body.code, body.state, body.binding, body.iss)
        user = await match_user(identity, svc.directory, oidc.config.match)
    except SignInError as refused:
        OIDC_SIGNINS.labels(refused.rule).inc()
        log.warning("signin.oidc_refused", rule=refused.rule, reason=refused.message)
        raise
    issued = await svc.start_session(user.user_id, method="oidc")
    OIDC_SIGNINS.labels("ok").inc()
    response.headers.update(NO_STORE)
    return issued.body() | {"next": next_path}
