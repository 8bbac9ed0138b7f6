"""The sign-in service's composition root: ``python -m services.signin`` (one process kind: its API).

It alone holds the signing keys (``PIPELINES_JWT_SIGNING_KEYS``); it keeps its tables in its own schema
(``signin``, migrations ``services.signin.store.MIGRATIONS``), asks the directory for users, and publishes ended
sessions on the revocation topic, which it also reads (its admin routes refuse a signed-out token like every API).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass

import asyncpg
import httpx
import structlog
import uvloop
from fastapi import FastAPI

from services.signin.api import create_app
from services.signin.directory import DirectoryClient
from services.signin.handlers import Clock, Config, Signin, utc_now
from services.signin.oidc import OidcClient, OidcConfig, PostgresLogins
from services.signin.store import PostgresStore
from shared.edge.auth import TokenVerifier
from shared.edge.keys import SigningKeys
from shared.edge.overload import in_flight_bound
from shared.edge.revocation import RevocationList
from shared.edge.service import postgres_ready, serve, settle_heap
from shared.messaging.kafka import kafka_ready
from shared.ops import tracing
from shared.ops.logs import configure_logging
from shared.ops.settings import Settings
from shared.store.db import create_pool, reset_if_unsynced
from shared.store.migrations import retry_setup

log = structlog.get_logger(__name__)
SERVICE = "signin"


@dataclass
class SigninService:
    settings: Settings
    pool: asyncpg.Pool
    signin: Signin
    revocations: RevocationList
    directory: DirectoryClient
    oidc: OidcClient | None = None  # None while PIPELINES_OIDC_ISSUER is unset

    async def readiness(self) -> dict[str, str]:
        checks = {"postgresql": await postgres_ready(self.pool)}
        s = self.settings
        checks["kafka"] = "ok" if await kafka_ready(s.kafka_bootstrap_servers, **s.kafka_options()) else "unavailable"
        checks["revocations"] = self.revocations.readiness()
        return checks

    def app(self) -> FastAPI:
        s = self.settings
        verifier = TokenVerifier(
            self.signin.keys.public(),
            issuer=s.jwt_issuer,
            audience=s.jwt_audience,
            max_lifetime_s=s.jwt_max_lifetime_s,
            revoked=self.revocations,
        )
        app = create_app(self.signin, verifier, self.readiness, trusted_proxies=s.signin_trusted_proxies)
        app.state.max_body_bytes = s.max_body_bytes
        app.state.oidc = self.oidc
        app.state.max_in_flight = in_flight_bound(s)  # past it 503 busy (decision 0032)
        return app

    async def close(self) -> None:
        await self.directory.close()
        await self.pool.close()


async def build(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    keys: SigningKeys | None = None,
    directory_transport: httpx.AsyncBaseTransport | None = None,
) -> SigninService:
    """The service on ``settings``; tests give their ``keys`` and reach an in-process directory (its transport)."""
    keys = keys or SigningKeys.from_settings(settings)  # refuses to start without them
    config = Config.of(settings)
    url = settings.database_url_for(SERVICE)
    pool = await retry_setup(
        lambda: create_pool(url, max_size=settings.db_pool_size, reset=reset_if_unsynced), "database pool"
    )
    store = PostgresStore(pool, settings.schema_name(SERVICE))
    await retry_setup(store.setup, "signin tables")
    revocations = RevocationList(settings)
    directory = DirectoryClient(settings.api_url("directory"), keys, transport=directory_transport)
    signin = Signin(store, directory, keys, revocations, config, clock=clock)
    oidc_config = OidcConfig.from_settings(settings)  # refuses to start when half configured
    logins = PostgresLogins(pool, settings.schema_name(SERVICE))
    oidc = OidcClient(oidc_config, logins, clock=clock) if oidc_config else None
    return SigninService(settings, pool, signin, revocations, directory, oidc)


async def run(service: SigninService, stop: asyncio.Event) -> None:
    s = service.settings
    tasks = [
        asyncio.create_task(service.revocations.run(stop)),
        asyncio.create_task(
            serve(
                service.app(),
                s.api_host,
                s.signin_port,
                stop,
                max_header_bytes=s.max_header_bytes,
                max_headers=s.max_headers,
            )
        ),
    ]
    settle_heap()
    log.info("service.started", service=SERVICE, mode="api")
    try:
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        for t in tasks:
            with contextlib.suppress(Exception):
                await t


def main() -> None:
    async def _main() -> None:
        settings = Settings()
        configure_logging(settings, service=SERVICE, process="api")
        tracing.setup(SERVICE, "api")  # off unless OTEL_TRACES_EXPORTER names one (decision 0027)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        service = await build(settings)
        try:
            await run(service, stop)
        finally:
            await service.close()

    uvloop.run(_main())
