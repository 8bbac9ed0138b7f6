"""The agenda service's HTTP API: activities as work — scheduled on a deal, a lead, an organisation or a person,
completed, rescheduled, cancelled, reassigned — and each salesperson's agenda (decision 0020).

Who may do what: ``rights``. Notes and outcomes are sealed under the subject's data-subject key and opened for the
answer only: erasing the lead, the deal's contact or the person makes them read as null.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.agenda.api import activities, imports, queries
from services.agenda.api.common import AgendaAPI
from shared.edge.auth import TokenVerifier
from shared.edge.fastpath import include_commands
from shared.edge.http import install_common
from shared.ops.version import VERSION


def create_app(svc: AgendaAPI, verifier: TokenVerifier) -> FastAPI:
    app = FastAPI(
        title="Pipelines — agenda",
        version=VERSION,
        description="Activities as work and each salesperson's agenda. " + (__doc__ or ""),
    )
    app.state.token_verifier = verifier
    app.state.agenda = svc  # the routes' ``Service`` dependency (services.agenda.api.common)
    install_common(app, svc.readiness, "agenda")
    app.include_router(queries.router)  # before /activities/{id}: /activities is a list
    include_commands(app, activities.router)  # with the command routes' fast path (decision 0033)
    app.include_router(imports.router)
    return app
