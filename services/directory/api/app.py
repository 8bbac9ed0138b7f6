"""The directory service's HTTP API: the users and teams every pipeline points at (decision 0017).

Admins change them (every command route); ``admin``, ``auditor`` and ``sales_director`` see every user and team,
anyone else their own team's users and themselves (``rights``). Names and emails are opened for the answer only.
Organisations and people (``organisations``, ``people``) are changed and seen as deals are (``customer_rights``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.directory.api import (
    adoption,
    customer360,
    customer_lists,
    import_batches,
    import_jobs,
    organisations,
    people,
    rates,
    team_commands,
    teams,
    user_commands,
    users,
)
from services.directory.api.common import DirectoryAPI, duplicate, unknown_reference
from services.directory.domain import InvalidReferenceError
from services.directory.domain.errors import DuplicateError
from shared.edge.auth import TokenVerifier
from shared.edge.http import install_common
from shared.ops.version import VERSION


def create_app(svc: DirectoryAPI, verifier: TokenVerifier) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if svc.imports is not None:  # the jobs a stopped directory left unfinished go on (import_jobs.resume)
            await svc.imports.resume()
        yield
        if svc.imports is not None:
            await svc.imports.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Pipelines — directory",
        version=VERSION,
        description="The directory of users and teams, and of the organisations and people sold to. " + (__doc__ or ""),
    )
    app.state.token_verifier = verifier
    app.state.directory = svc  # the routes' ``Service`` dependency (services.directory.api.common)
    install_common(app, svc.readiness, "directory")
    app.add_exception_handler(InvalidReferenceError, unknown_reference)
    app.add_exception_handler(DuplicateError, duplicate)
    app.include_router(user_commands.router)
    app.include_router(users.router)
    app.include_router(team_commands.router)
    app.include_router(teams.router)
    app.include_router(customer_lists.router)  # before /organisations/{id}: /organisations is a list
    app.include_router(organisations.router)
    app.include_router(people.router)
    app.include_router(customer360.router)
    app.include_router(adoption.router)
    app.include_router(rates.router)
    app.include_router(import_batches.router)  # before any /imports/{id}
    app.include_router(import_jobs.router)
    if svc.imports is not None:  # an upload streams to the spool under its own limit (PIPELINES_IMPORT_MAX_BYTES)
        app.state.body_limits = {"/imports": svc.imports.config.max_bytes}
    return app
