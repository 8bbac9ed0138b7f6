"""The deals service's HTTP API: commands on deals, pipelines and targets; the deal's audit trail; read models.

Who may do what: a salesperson (``sales``) sees and changes their own deals and opens them in their own team (or
none); a ``sales_manager`` does the same for every deal of their team (the token's ``team``: a manager without one
has no team's, only their own deals); a ``sales_director`` for every team, and defines pipelines; an ``auditor``
reads everything and changes nothing; ``admin`` does anything. Deals a caller may not see answer 404, as if they did
not exist; their alerts are not listed. Numbers (forecast, analytics, targets) follow the same scopes. Only a lead's
conversion opens a deal from a lead (``source_lead_id``): its outcome is the only one the lead's revenue counts.
Every route's rights for every kind of caller: tests/integration/test_security_roles.py.

The routes, by concern: ``commands`` (opening a deal, each command on one), ``deals`` (a deal, the board, the
lists), ``audit`` (history, state as of, diff), ``numbers`` (forecast and analytics), ``pipelines`` (pipelines and
targets), ``alerts``; who may do what in ``rights``, the request bodies in ``forms``, the JSON of states in
``views``, what the routes share in ``common``, the directory's organisation a request names (a link, a filter)
checked against the replica in ``customers``.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.deals.api import alerts, audit, commands, deals, imports, numbers, pipelines
from services.deals.api.common import DealsAPI
from shared.edge.auth import TokenVerifier
from shared.edge.fastpath import include_commands
from shared.edge.http import install_common
from shared.ops.version import VERSION

__all__ = ["DealsAPI", "create_app"]


def create_app(svc: DealsAPI, verifier: TokenVerifier, *, title: str = "Pipelines — deals") -> FastAPI:
    app = FastAPI(
        title=title,
        version=VERSION,
        description="The sales pipeline: deals from first contact to after-sales follow-up. " + (__doc__ or ""),
    )
    app.state.token_verifier = verifier
    app.state.deals = svc  # the routes' ``Service`` dependency (services.deals.api.common)
    install_common(app, svc.readiness, "deals")
    include_commands(app, commands.router)  # with the command routes' fast path (decision 0033)
    app.include_router(deals.router)
    app.include_router(audit.router)
    app.include_router(numbers.router)
    app.include_router(pipelines.router)
    app.include_router(alerts.router)
    app.include_router(imports.router)
    return app
