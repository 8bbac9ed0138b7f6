"""The production service's HTTP API: orders from planning to delivery, demand plans, and the floor's read models.

Roles: ``production`` and ``admin`` change things and see delivery addresses; ``auditor``, ``sales_manager`` and
``sales_director`` read, without personal data.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from services.alerts.routes import add_alerts_route
from services.production.api import history, imports, order_commands, orders, plans
from services.production.api.common import ERRORS, ProductionAPI, read_models, service
from services.production.api.rights import READ
from shared.edge.auth import TokenVerifier, require
from shared.edge.fastpath import include_commands
from shared.edge.http import install_common
from shared.ops.version import VERSION

ALERTS = APIRouter(responses=ERRORS)
add_alerts_route(ALERTS, "production", lambda request: read_models(service(request)), require(*READ))


def create_app(svc: ProductionAPI, verifier: TokenVerifier) -> FastAPI:
    app = FastAPI(
        title="Pipelines — production",
        version=VERSION,
        description="The production pipeline: from won deal to delivered order. " + (__doc__ or ""),
    )
    app.state.token_verifier = verifier
    app.state.production = svc  # the routes' ``Service`` dependency (services.production.api.common)
    install_common(app, svc.readiness, "production")
    include_commands(app, order_commands.router)  # with the command routes' fast path (decision 0033)
    app.include_router(orders.router)
    app.include_router(history.router)
    app.include_router(plans.router)
    app.include_router(imports.router)
    app.include_router(ALERTS)
    return app
