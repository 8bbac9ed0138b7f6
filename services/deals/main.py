"""The deals service's composition root: builds its parts from the settings and runs its processes.

``python -m services.deals api|relay|projector|all``: the HTTP API, the outbox relay, the projector (read
models and reactions), or all three in one process (development and the demo). Each scales on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog
import uvicorn
from fastapi import FastAPI

from services.deals import analytics, projections
from services.deals.api import DealsAPI, create_app
from services.deals.handlers import Deals
from shared.auth import TokenVerifier
from shared.db import Conn, create_pool
from shared.envelope import CloudEvent
from shared.eventstore.postgres import PostgresEventStore
from shared.kafka import TopicSpec, ensure_topics, kafka_ready
from shared.logs import configure_logging
from shared.pii import PersonalData, PostgresKeyStore
from shared.projections import Projection, ProjectionRunner, ReadModels
from shared.relay import OutboxRelay
from shared.settings import SERVICES, Settings

SERVICE = "deals"
log = structlog.get_logger(__name__)


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: this process stops all its parts on one signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DealsService:
    settings: Settings
    pool: asyncpg.Pool
    store: PostgresEventStore
    personal_data: PersonalData
    deals: Deals
    read_models: ReadModels

    @property
    def schema(self) -> str:
        return self.store.schema

    def projections(self) -> list[Projection]:
        s = self.settings
        return [
            projections.board(s.events_topic(SERVICE)),
            analytics.analytics(s.events_topic(SERVICE)),
            self.reactions(),
        ]

    def reactions(self) -> Projection:
        """Other services' events turned into commands on deals, in the runner's transaction."""
        s = self.settings

        async def apply(conn: Conn, envelope: CloudEvent) -> None:
            if envelope.type.startswith(("pipelines.leads.", "pipelines.production.")):
                (data,) = await self.personal_data.open([envelope.data])
                await self.deals.using(self.store.using(conn)).react(envelope, data)

        return Projection(
            name="reactions", topics=(s.events_topic("leads"), s.events_topic("production")), ddl="", apply=apply
        )

    async def readiness(self) -> dict[str, str]:
        checks = {}
        try:
            async with asyncio.timeout(3):
                await self.pool.fetchval("SELECT 1")
            checks["postgresql"] = "ok"
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            checks["postgresql"] = f"unavailable: {type(exc).__name__}"
        ok = await kafka_ready(self.settings.kafka_bootstrap_servers, **self.settings.kafka_options())
        checks["kafka"] = "ok" if ok else "unavailable"
        return checks

    def app(self) -> FastAPI:
        return create_app(
            DealsAPI(
                deals=self.deals,
                store=self.store,
                read_models=self.read_models,
                personal_data=self.personal_data,
                timezone=self.settings.timezone,
                readiness=self.readiness,
            ),
            TokenVerifier.from_settings(self.settings),
        )

    async def close(self) -> None:
        await self.pool.close()


async def build(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> DealsService:
    pool = await create_pool(settings.database_url_for(SERVICE), max_size=settings.db_pool_size)
    keys = PostgresKeyStore(pool, settings.master_key(), schema=settings.pii_schema)
    await keys.setup()
    personal_data = PersonalData(keys)
    store = PostgresEventStore(pool, settings.schema_name(SERVICE), personal_data)
    await store.setup()
    deals = Deals(store, clock)
    await deals.ensure_default_pipeline()
    return DealsService(settings, pool, store, personal_data, deals, ReadModels(pool, store.schema))


async def ensure_service_topics(settings: Settings) -> None:
    specs = [
        TopicSpec(settings.events_topic(s), settings.kafka_partitions, settings.kafka_replication_factor)
        for s in SERVICES
    ]
    specs.append(TopicSpec(settings.dead_letter_topic(SERVICE), 1, settings.kafka_replication_factor))
    await ensure_topics(settings.kafka_bootstrap_servers, specs)


def runners(service: DealsService) -> list[ProjectionRunner]:
    s = service.settings
    return [
        ProjectionRunner(
            service.pool,
            p,
            namespace=service.schema,
            bootstrap_servers=s.kafka_bootstrap_servers,
            dead_letter_topic=s.dead_letter_topic(SERVICE),
            group_prefix=f"{s.topic_prefix}.{SERVICE}",
            kafka_options=s.kafka_options(),
        )
        for p in service.projections()
    ]


async def run(mode: str, settings: Settings, stop: asyncio.Event) -> None:
    """Run one process kind (or all) until ``stop``."""
    configure_logging(settings, process=f"{SERVICE}-{mode}")
    await ensure_service_topics(settings)
    service = await build(settings)
    tasks: list[asyncio.Task[None]] = []
    try:
        if mode in ("relay", "all"):
            relay = OutboxRelay(
                service.store,
                service=SERVICE,
                topic=settings.events_topic(SERVICE),
                bootstrap_servers=settings.kafka_bootstrap_servers,
                database_url=settings.database_url_for(SERVICE),
                kafka_options=settings.kafka_options(),
            )
            await relay.setup()
            tasks.append(asyncio.create_task(relay.run(stop)))
        if mode in ("projector", "all"):
            for runner in runners(service):
                await runner.setup()
                tasks.append(asyncio.create_task(runner.run(stop)))
        if mode in ("api", "all"):
            for runner in runners(service):  # queries need the read models' tables even before a projector runs
                await runner.setup()
            server = QuietServer(
                uvicorn.Config(
                    service.app(),
                    host=settings.api_host,
                    port=settings.port(SERVICE),
                    log_config=None,
                    access_log=False,
                )
            )

            async def serve() -> None:
                serving = asyncio.create_task(server.serve())
                await stop.wait()
                server.should_exit = True
                await serving

            tasks.append(asyncio.create_task(serve()))
        log.info("deals.started", mode=mode)
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        for t in tasks:
            with contextlib.suppress(Exception):
                await t
        await service.close()


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m services.deals", description="the deals service")
    parser.add_argument("mode", choices=["api", "relay", "projector", "all"])
    args = parser.parse_args(argv)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(args.mode, Settings(), stop)

    asyncio.run(_main())
