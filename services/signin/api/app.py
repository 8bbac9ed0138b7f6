"""The sign-in service's HTTP API (decision 0022): passwords, sessions, API tokens signed with the keys only this
process holds, and the public keys every API verifies them with.

No route takes a browser's bearer token: the board is the client (it keeps the session secret in an HttpOnly
cookie). Admin routes take an admin's bearer token. Refusals are problem+json with their ``rule``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, JsonValue

from services.signin.api import oidc, passwords, sessions
from services.signin.api.common import invalid_without_input, networks, refused
from services.signin.domain.errors import SignInError
from services.signin.handlers import Signin
from shared.edge.auth import TokenVerifier
from shared.edge.http import install_common
from shared.ops.version import VERSION

JWKS_MAX_AGE_S = 60  # how long a client may cache the public keys (a new key is read on the first token naming it)


class Jwks(BaseModel):
    """A JSON Web Key Set (RFC 7517): the public keys, each named by its `kid`."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "keys": [
                        {
                            "kty": "OKP",
                            "crv": "Ed25519",
                            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                            "kid": "2026-11",
                            "alg": "EdDSA",
                            "use": "sig",
                        }
                    ]
                }
            ]
        },
    )
    keys: list[dict[str, JsonValue]]


def create_app(
    svc: Signin,
    verifier: TokenVerifier,
    readiness: Callable[[], Awaitable[dict[str, str]]],
    *,
    trusted_proxies: str = "127.0.0.1,::1",
) -> FastAPI:
    app = FastAPI(
        title="Pipelines — sign-in",
        version=VERSION,
        description="Passwords, sessions and the API tokens of people. " + (__doc__ or ""),
    )
    app.state.token_verifier = verifier
    app.state.signin = svc
    app.state.trusted_proxies = networks(trusted_proxies)  # whose X-Forwarded-For names the client
    install_common(app, readiness, "signin")
    app.add_exception_handler(SignInError, refused)
    app.add_exception_handler(RequestValidationError, invalid_without_input)  # no password echoed in a 422

    @app.get(
        "/.well-known/jwks.json",
        tags=["keys"],
        summary="the public keys API tokens are verified with",
        response_model=Jwks,
    )
    async def jwks(response: Response) -> dict[str, object]:
        response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE_S}"
        return svc.keys.jwks()

    app.include_router(sessions.router)
    app.include_router(passwords.router)
    app.include_router(oidc.router)  # answers 404 oidc_not_configured until app.state.oidc is set (main.py)
    return app
