"""The leads service's HTTP API: capture (direct and from the sources' webhooks), the lead lifecycle, campaigns,
erasure, and the marketing read models.

Roles: ``marketing`` and ``admin`` change things and see contact details; ``auditor`` reads everything but
personal data; the sales roles read leads (to work them) without contact details unless the
lead is assigned to them. Webhooks are open but verified (signature, token or key) as each source allows.

The routes, by concern: ``commands`` (capture and each command on a lead, merge, remap, erase), ``webhooks`` (the
sources' deliveries), ``campaigns``, ``history`` (a lead now and its audit trail), ``read_models`` (the marketing
read models and alerts); the JSON of states and the OpenAPI examples in ``views``, what the routes share in
``common``.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from services.leads import sources
from services.leads.api import campaigns, commands, history, imports, read_models, webhooks
from services.leads.api.common import LeadsAPI
from shared.edge.auth import TokenVerifier
from shared.edge.fastpath import include_commands
from shared.edge.http import install_common
from shared.edge.problems import http_problem
from shared.ops.version import VERSION

__all__ = ["LeadsAPI", "create_app"]


async def webhook_rejected(request: Request, exc: Exception) -> JSONResponse:
    """A source's delivery refused (bad signature, token or key; an unreadable payload): its status, as a problem."""
    assert isinstance(exc, sources.WebhookRejectedError)
    return await http_problem(request, HTTPException(exc.status, detail=exc.detail))


def create_app(svc: LeadsAPI, verifier: TokenVerifier) -> FastAPI:
    app = FastAPI(
        title="Pipelines — leads",
        version=VERSION,
        description="The marketing pipeline: from ad click to customer. " + (__doc__ or ""),
    )
    app.state.token_verifier = verifier
    app.state.leads = svc  # the routes' ``Service`` dependency (services.leads.api.common)
    install_common(app, svc.readiness, "leads")
    app.add_exception_handler(sources.WebhookRejectedError, webhook_rejected)
    include_commands(app, commands.router)  # with the command routes' fast path (decision 0033)
    app.include_router(webhooks.router)
    app.include_router(history.router)
    app.include_router(campaigns.router)
    app.include_router(read_models.router)
    app.include_router(imports.router)
    return app
