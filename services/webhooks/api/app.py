"""The webhooks' HTTP API (decision 0026): subscriptions and their deliveries.

Who: an **admin** manages subscriptions (creates, changes, rotates a secret, deletes; redrives or skips a
dead-lettered delivery): a subscription sends every matching event of every team out of the system, so choosing
where events go is an operator's act, like granting a Kafka reader its ACL. An **auditor** reads them, their
deliveries and attempts (where data goes, and whether it got there); a secret is shown only to the admin who created
or rotated it, once. Everyone else: 403. Refusals are problem+json with their ``rule`` (422 naming the field)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.webhooks.api import routes
from services.webhooks.domain.errors import WebhookError
from services.webhooks.handlers import Webhooks
from shared.edge.auth import TokenVerifier
from shared.edge.http import install_common
from shared.edge.problems import problem
from shared.ops.version import VERSION


async def refused(request: Request, exc: Any) -> JSONResponse:
    assert isinstance(exc, WebhookError)
    members: dict[str, Any] = {}
    if exc.field is not None:
        members["errors"] = [{"loc": ["body", exc.field], "msg": exc.message, "type": exc.rule}]
    return problem(
        exc.status, exc.message, exc.rule, correlation_id=getattr(request.state, "correlation_id", None), **members
    )


def create_app(svc: Webhooks, verifier: TokenVerifier, readiness: Callable[[], Awaitable[dict[str, str]]]) -> FastAPI:
    app = FastAPI(
        title="Pipelines — webhooks",
        version=VERSION,
        description="Signed webhooks (Standard Webhooks) for systems without a Kafka client. " + (__doc__ or ""),
    )
    app.state.token_verifier = verifier
    app.state.webhooks = svc
    install_common(app, readiness, "webhooks")
    app.add_exception_handler(WebhookError, refused)
    app.include_router(routes.router)
    return app
