"""The webhooks' composition root (decision 0026): ``python -m services.webhooks api|dispatcher``.

Its tables live in its own schema (``webhooks``, ``services.webhooks.store``), its secrets are sealed under a key
derived from ``PIPELINES_PII_MASTER_KEY``; the API checks tokens like every API; the dispatcher reads every
service's topic and the alerts topic (consumer group ``<topic_prefix>.webhooks``) and serves /healthz, /readyz and
/metrics on ``PIPELINES_OPS_PORT``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import signal
import time
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import structlog
import uvloop
from fastapi import FastAPI

from services.agenda import events as _agenda  # noqa: F401 - registers their event types
from services.alerts import events as _alerts  # noqa: F401
from services.deals import events as _deals  # noqa: F401
from services.directory import events as _directory  # noqa: F401
from services.leads import events as _leads  # noqa: F401
from services.production import events as _production  # noqa: F401
from services.webhooks import dispatcher
from services.webhooks.api import create_app
from services.webhooks.domain import retry
from services.webhooks.domain.addresses import AllowList
from services.webhooks.handlers import Clock, Config, Webhooks, utc_now
from services.webhooks.sealing import Sealer
from services.webhooks.store import PostgresStore
from shared.core.events import registry
from shared.edge.auth import TokenVerifier
from shared.edge.http import install_common
from shared.edge.overload import in_flight_bound
from shared.edge.revocation import RevocationList
from shared.edge.service import postgres_ready, serve, settle_heap
from shared.messaging.kafka import kafka_ready
from shared.ops import metrics
from shared.ops.logs import configure_logging
from shared.ops.settings import SERVICES, Settings
from shared.store.db import create_pool, reset_if_unsynced
from shared.store.migrations import retry_setup

log = structlog.get_logger(__name__)
SERVICE = "webhooks"
MODES = ("api", "dispatcher")


def registered_types() -> frozenset[str]:
    return frozenset(cls.event_type for cls in registry.types("pipelines."))


def options(s: Settings) -> dispatcher.Options:
    return dispatcher.Options(
        allow=AllowList.parse(s.webhooks_allow),
        policy=retry.Policy(
            max_attempts=s.webhooks_max_attempts,
            base_s=s.webhooks_backoff_base_s,
            cap_s=s.webhooks_backoff_cap_s,
            disable_after=s.webhooks_disable_after,
        ),
        timeout_s=s.webhooks_timeout_s,
        concurrency=s.webhooks_concurrency,
        poll_s=s.webhooks_poll_s,
    )


def topics(s: Settings) -> list[str]:
    return [*(s.events_topic(svc) for svc in SERVICES), s.alerts_topic()]


@dataclass
class WebhooksService:
    settings: Settings
    pool: asyncpg.Pool
    store: PostgresStore
    webhooks: Webhooks
    clock: Clock
    revocations: RevocationList  # the API refuses a signed-out token like every API (read in the api mode)

    async def readiness(self) -> dict[str, str]:
        s = self.settings
        checks = {"postgresql": await postgres_ready(self.pool)}
        checks["kafka"] = "ok" if await kafka_ready(s.kafka_bootstrap_servers, **s.kafka_options()) else "unavailable"
        if self.api_mode:
            checks["revocations"] = self.revocations.readiness()
        return checks

    api_mode: bool = False

    @functools.cached_property
    def verifier(self) -> TokenVerifier:
        return TokenVerifier.from_settings(self.settings, revoked=self.revocations)

    def app(self) -> FastAPI:
        app = create_app(self.webhooks, self.verifier, self.readiness)
        app.state.max_body_bytes = min(self.settings.max_body_bytes, 64 * 1024)
        app.state.max_in_flight = in_flight_bound(self.settings)  # past it 503 busy (decision 0032)
        return app

    def ops_app(self) -> FastAPI:
        app = FastAPI(title="Pipelines — webhooks dispatcher", docs_url=None, redoc_url=None, openapi_url=None)
        install_common(app, self.readiness, SERVICE, bounded=False)  # the dispatcher's probes and scrape alone
        return app

    def sender(self) -> dispatcher.Sender:
        return dispatcher.Sender(self.store, self.webhooks.sealer, options(self.settings), self.clock)

    def queuer(self, sender: dispatcher.Sender, start: str | None = None) -> dispatcher.Queuer:
        s = self.settings
        group = f"{s.topic_prefix}.webhooks"
        c = dispatcher.consumer(group, s.kafka_bootstrap_servers, start or s.webhooks_start, s.kafka_options())
        return dispatcher.Queuer(self.store, c, topics(s), sender, self.clock)

    async def close(self) -> None:
        await self.pool.close()


async def build(settings: Settings, *, clock: Clock = utc_now) -> WebhooksService:
    sealer = Sealer(settings.master_key())  # refuses to start without it
    allow = AllowList.parse(settings.webhooks_allow)
    url = settings.database_url_for(SERVICE)
    pool = await retry_setup(
        lambda: create_pool(url, max_size=settings.db_pool_size, reset=reset_if_unsynced), "database pool"
    )
    store = PostgresStore(pool, settings.schema_name(SERVICE))
    await retry_setup(store.setup, "webhooks tables")
    overlap = timedelta(seconds=settings.webhooks_rotation_overlap_s)
    webhooks = Webhooks(store, sealer, Config(allow, registered_types(), overlap), clock)
    return WebhooksService(settings, pool, store, webhooks, clock, RevocationList(settings))


PURGE_EVERY_S = 3600.0


async def housekeeping(service: WebhooksService, stop: asyncio.Event) -> None:
    """The dead letters' gauge every 15 s; delivered and skipped deliveries older than PIPELINES_WEBHOOKS_KEEP_DAYS
    deleted every hour (with their attempts), and previous secrets whose rotation window has closed (the claim stops
    using one the moment its window closes; this drops it from the table)."""
    purged_at = 0.0
    while not stop.is_set():
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            metrics.WEBHOOK_DEAD.set(await service.store.dead_count())
            if time.monotonic() - purged_at > PURGE_EVERY_S:
                keep = timedelta(days=service.settings.webhooks_keep_days)
                gone = await service.store.purge(service.clock() - keep)
                dropped = await service.store.drop_expired_secrets(service.clock())  # rotation windows closed
                purged_at = time.monotonic()
                log.info("webhooks.purged", deliveries=gone, previous_secrets=dropped)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 15)


async def run(service: WebhooksService, mode: str, stop: asyncio.Event) -> None:
    s = service.settings
    bounds = {"max_header_bytes": s.max_header_bytes, "max_headers": s.max_headers}
    if mode == "api":
        service.api_mode = True
        tasks = [
            asyncio.create_task(service.revocations.run(stop)),
            asyncio.create_task(service.verifier.run(stop)),  # the JWKS, every PIPELINES_JWKS_REFRESH_S
            asyncio.create_task(serve(service.app(), s.api_host, s.webhooks_port, stop, **bounds)),
        ]
    else:
        sender = service.sender()
        tasks = [
            asyncio.create_task(dispatcher.run(service.queuer(sender), sender, stop)),
            asyncio.create_task(housekeeping(service, stop)),
        ]
        if s.ops_port:
            tasks.append(asyncio.create_task(serve(service.ops_app(), s.api_host, s.ops_port, stop, **bounds)))
    settle_heap()
    log.info("service.started", service=SERVICE, mode=mode)
    try:
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.webhooks", description="signed webhooks")
    parser.add_argument("mode", choices=MODES, help="api: the subscriptions' API; dispatcher: the deliveries")
    args = parser.parse_args(argv)

    async def _main() -> None:
        settings = Settings()
        configure_logging(settings, service=SERVICE, process=args.mode)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        service = await build(settings)
        try:
            await run(service, args.mode, stop)
        finally:
            await service.close()

    uvloop.run(_main())
