"""The directory service's HTTP API: the users and teams every pipeline points at (decision 0017).

Admins change them (every command route); ``admin``, ``auditor`` and ``sales_director`` see every user and team,
anyone else their own team's users and themselves (``rights``). Names and emails are opened for the answer only.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.directory.api import team_commands, teams, user_commands, users
from services.directory.api.common import DirectoryAPI, unknown_reference
from services.directory.domain import InvalidReferenceError
from shared.edge.auth import TokenVerifier
from shared.edge.http import install_common


def create_app(svc: DirectoryAPI, verifier: TokenVerifier) -> FastAPI:
    app = FastAPI(
        title="Pipelines — directory",
        version="1.0.0",
        description="The directory of users and teams. " + (__doc__ or ""),
    )
    app.state.token_verifier = verifier
    app.state.directory = svc  # the routes' ``Service`` dependency (services.directory.api.common)
    install_common(app, svc.readiness, "directory")
    app.add_exception_handler(InvalidReferenceError, unknown_reference)
    app.include_router(user_commands.router)
    app.include_router(users.router)
    app.include_router(team_commands.router)
    app.include_router(teams.router)
    return app
