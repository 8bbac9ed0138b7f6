"""What every service's processes share: storage wiring, readiness, topics, and running api/relay/projector.

A service provides a ``ServiceCore`` subclass (its handlers, projections and FastAPI app) and a ``build``
function; ``main`` turns that into ``python -m services.<name> api|relay|projector|all`` (and any process kind of
its own it names, as the agenda its notifier). What a service runs for
another bounded context beside its own (the alerts: services/alerts) comes as ``Addon``s, so the kernel runs it
without knowing it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import structlog
import uvicorn
import uvloop
from fastapi import FastAPI

from shared.edge.auth import TokenVerifier
from shared.edge.http import install_common
from shared.edge.httpserver import MAX_HEADER_BYTES, MAX_HEADERS, bounded_http
from shared.edge.overload import in_flight_bound
from shared.edge.revocation import RevocationList
from shared.edge.revocation import topic_spec as revocations_topic_spec
from shared.edge.workers import listening_socket, supervise, worker
from shared.messaging.decoded import Window
from shared.messaging.envelope import CloudEvent
from shared.messaging.kafka import TopicSpec, ensure_topics, kafka_ready
from shared.messaging.projections import Fact, Projection, ReadModels, one_by_one
from shared.messaging.relay import OutboxRelay
from shared.messaging.runner import ProjectionRunner
from shared.ops import tracing
from shared.ops.logs import configure_logging
from shared.ops.settings import SERVICES, Settings
from shared.privacy.pii import PersonalData
from shared.store import EventStore
from shared.store.db import Conn, create_pool, reset_if_unsynced
from shared.store.keystore import KeyRotator, PostgresKeyStore, key_store
from shared.store.migrations import retry_setup
from shared.store.postgres import PostgresEventStore

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]
MODES = ("api", "relay", "projector", "all")
Worker = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
API = TypeVar("API")
React = Callable[[EventStore, CloudEvent, dict[str, Any]], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def postgres_ready(pool: asyncpg.Pool) -> str:
    """A readiness check's word on PostgreSQL: "ok" when the pool answers within 3 s, else why not."""
    try:
        async with asyncio.timeout(3):
            await pool.fetchval("SELECT 1")
        return "ok"
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"unavailable: {type(exc).__name__}"


@dataclass
class Storage:
    """A service's PostgreSQL side: pool, event store (its schema), personal-data keys, read models."""

    settings: Settings
    pool: asyncpg.Pool
    store: PostgresEventStore
    personal_data: PersonalData
    read_models: ReadModels
    # this process's own parts (its relay, its projectors): each says 'ok' or why it is not ready
    parts: Callable[[], dict[str, str]] = dict

    @classmethod
    async def open(cls, settings: Settings, service: str) -> Storage:
        url = settings.database_url_for(service)
        # a failed start is retried (shared.store.migrations.retry_setup): the database restarting, a lock not granted
        pool = await retry_setup(
            lambda: create_pool(url, max_size=settings.db_pool_size, reset=reset_if_unsynced), "database pool"
        )
        keys = key_store(pool, settings)  # wrapped under the keyring's epochs (decision 0015)
        await retry_setup(keys.setup, "key store")
        personal_data = PersonalData(keys)
        store = PostgresEventStore(
            pool, settings.schema_name(service), personal_data, max_event_bytes=settings.max_event_bytes
        )
        await retry_setup(store.setup, "event store")
        return cls(settings, pool, store, personal_data, ReadModels(pool, store.schema))

    async def readiness(self) -> dict[str, str]:
        checks = {"postgresql": await postgres_ready(self.pool)}
        ok = await kafka_ready(self.settings.kafka_bootstrap_servers, **self.settings.kafka_options())
        checks["kafka"] = "ok" if ok else "unavailable"
        return checks | self.parts()

    async def close(self) -> None:
        await self.pool.close()


@dataclass(frozen=True)
class Addon:
    """What a service's processes run for a bounded context beside the service's own (services/alerts)."""

    projections: tuple[Projection, ...] = ()  # run like the service's own
    routes: Mapping[str, str] = field(default_factory=dict)  # event-type prefix → the topic the relay sends it to
    topics: tuple[TopicSpec, ...] = ()  # created with the service's own
    workers: tuple[Worker, ...] = ()  # run by the projector processes until stop


class ServiceCore:
    """The parts of one service that its processes run. Subclasses set ``name`` and implement the two methods."""

    name: str

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.settings = storage.settings
        # the tokens signed out (shared/edge/revocation.py): read by the api process, asked by its TokenVerifier
        self.revocations = RevocationList(storage.settings)

    @functools.cached_property
    def verifier(self) -> TokenVerifier:
        """The api process's: public keys only (decision 0022), reread from PIPELINES_JWKS_URL by its ``run``. Made on
        first use: the relay and projector processes verify no token and need no key setting."""
        return TokenVerifier.from_settings(self.settings, revoked=self.revocations)

    def projections(self) -> list[Projection]:
        raise NotImplementedError

    def addons(self) -> list[Addon]:
        """What the processes run for other bounded contexts (services.alerts.wiring.AlertingService adds its own)."""
        return []

    def clock(self) -> datetime:
        return utc_now()

    def app(self) -> FastAPI:
        raise NotImplementedError

    def reactions_to(self, services: Sequence[str], accepts: tuple[str, ...], react: React) -> Projection:
        """The ``reactions`` projection: other services' events (those ``accepts`` names, from ``services``' topics)
        turned into this service's commands by ``react(store, envelope, data)``, in the runner's transaction: the
        reaction appends on the runner's connection, so it and its progress commit together. A reaction sees
        personal fields (``data`` is opened)."""
        storage = self.storage

        async def apply(conn: Conn, fact: Fact) -> None:
            (data,) = await storage.personal_data.open([fact.envelope.data])
            with tracing.consuming(fact.envelope, f"{self.name}.reactions"):  # its commands continue the trace
                await react(storage.store.using(conn), fact.envelope, data)

        return Projection(
            name="reactions",
            topics=tuple(self.settings.events_topic(s) for s in services),
            ddl="",
            apply=one_by_one(apply),
            accepts=accepts,
        )

    def make_app(self, create_app: Callable[[API, TokenVerifier], FastAPI], api: API) -> FastAPI:
        """What ``app`` returns: the service's ``create_app(api, verifier)``, its tokens checked against this
        process's revocation list, request bodies bounded by the settings."""
        app = create_app(api, self.verifier)
        app.state.max_body_bytes = self.settings.max_body_bytes
        app.state.backdate_limit_days = self.settings.backdate_limit_days  # shared.edge.commands
        app.state.max_in_flight = in_flight_bound(self.settings)  # past it 503 busy (shared.edge.overload)
        return app

    def relay(self) -> OutboxRelay:
        s = self.settings
        return OutboxRelay(
            self.storage.store,
            service=self.name,
            topic=s.events_topic(self.name),
            bootstrap_servers=s.kafka_bootstrap_servers,
            database_url=s.database_url_for(self.name),
            kafka_options=s.kafka_options(),
            routes={prefix: topic for addon in self.addons() for prefix, topic in addon.routes.items()},
            max_event_bytes=s.max_event_bytes,
            max_request_size=s.kafka_max_request_size,
            schema_base=s.schema_base_for(self.name),
        )

    def key_rotator(self) -> KeyRotator | None:
        """The personal-data keys' rotation (decision 0015): run by the relay processes, one elected at a time."""
        keys = self.storage.personal_data.keys
        if not isinstance(keys, PostgresKeyStore):
            return None
        s = self.settings
        return KeyRotator(keys, s.database_url_for(self.name), window_s=s.erasure_window_hours * 3600)

    def runners(self) -> list[ProjectionRunner]:
        """The process's projection runners; those reading one topic decode each record once (decision 0034)."""
        s = self.settings
        window = Window(capacity=s.projection_decode_window)
        return [
            ProjectionRunner(
                self.storage.pool,
                p,
                namespace=self.storage.store.schema,
                bootstrap_servers=s.kafka_bootstrap_servers,
                dead_letter_topic=s.dead_letter_topic(self.name),
                group_prefix=f"{s.topic_prefix}.{self.name}",
                kafka_options=s.kafka_options(),
                window=window,
            )
            for p in [*self.projections(), *(p for addon in self.addons() for p in addon.projections)]
        ]

    async def ensure_topics(self) -> None:
        s = self.settings
        specs = [TopicSpec(s.events_topic(x), s.kafka_partitions, s.kafka_replication_factor) for x in SERVICES]
        specs.append(TopicSpec(s.dead_letter_topic(self.name), 1, s.kafka_replication_factor))
        specs += [spec for addon in self.addons() for spec in addon.topics]
        specs.append(revocations_topic_spec(s))
        await ensure_topics(s.kafka_bootstrap_servers, specs, **s.kafka_options())

    async def close(self) -> None:
        await self.storage.close()


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the process stops all its parts on one signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def ops_app(core: ServiceCore, mode: str) -> FastAPI:
    """What a relay or projector process answers: /healthz, /readyz, /metrics."""
    app = FastAPI(title=f"Pipelines — {core.name} {mode}", docs_url=None, redoc_url=None, openapi_url=None)
    install_common(app, core.storage.readiness, core.name, bounded=False)  # no bound: probes and the scrape alone
    return app


# How long an idle keep-alive connection stays open. Longer than any client's or balancer's own idle limit (httpx
# and uvicorn's default are both 5 s, cloud balancers 60 s): the client must be the one to drop an idle connection,
# or it may send a request on a connection the server is closing at that moment and get a connection reset instead
# of an answer (seen in tests/e2e/test_web_board.py: a client idle 6 s while a simulation ran).
KEEP_ALIVE_S = 75


async def serve(
    app: FastAPI,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_headers: int = MAX_HEADERS,
) -> None:
    """Serve ``app`` until ``stop`` is set; a request head over the bounds answers 431 (``shared.edge.httpserver``).
    An API worker among several binds its own socket with SO_REUSEPORT, beside the others (shared.edge.workers)."""
    http = bounded_http(max_header_bytes, max_headers)
    # log_config=None: no handlers of uvicorn's own, its lines go through ours (shared.ops.logs) as JSON; no access
    # log of its own: shared.edge.middleware.Correlation writes one line per request
    config = uvicorn.Config(
        app, host=host, port=port, http=http, log_config=None, access_log=False, timeout_keep_alive=KEEP_ALIVE_S
    )
    server = QuietServer(config)
    sockets = [listening_socket(host, port)] if worker() is not None else None
    serving = asyncio.create_task(server.serve(sockets=sockets))
    await stop.wait()
    server.should_exit = True
    await serving


def _serve(app: FastAPI, s: Settings, port: int, stop: asyncio.Event) -> asyncio.Task[None]:
    bounds = {"max_header_bytes": s.max_header_bytes, "max_headers": s.max_headers}
    return asyncio.create_task(serve(app, s.api_host, port, stop, **bounds))


YOUNG_COLLECTION_EVERY = 20_000  # allocations between young collections (CPython's default: 700)


def settle_heap() -> None:
    """Take what startup built (modules, pools, apps: it lives as long as the process) out of the collector's way.

    A full collection walks every tracked object; with startup's ~50k objects and the state cache beside them,
    each one paused the API for 30–240 ms under load, and one pause in a 10 s round was the round's p99. Frozen
    objects are never walked again. Rarer young collections promote fewer in-flight requests' objects, which
    is what made full collections come every few seconds (a young collection of 20k objects takes ~1 ms).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])


async def run(core: ServiceCore, mode: str, stop: asyncio.Event) -> None:
    """Run one process kind (or all three) of a built service until ``stop``."""
    tasks: list[asyncio.Task[None]] = []
    try:
        s = core.settings
        relay = core.relay() if mode in ("relay", "all") else None
        runners = core.runners() if mode in ("projector", "all", "api") else []

        def parts() -> dict[str, str]:
            found = {"relay": relay.readiness()} if relay is not None else {}
            if mode != "api":
                found |= {f"projection {r.projection.name}": r.readiness() for r in runners}
            if mode in ("api", "all"):  # not before it knows every token signed out (shared/edge/revocation.py)
                found["revocations"] = core.revocations.readiness()
            return found

        core.storage.parts = parts
        if mode in ("relay", "projector") and s.ops_port:
            tasks.append(_serve(ops_app(core, mode), s, s.ops_port, stop))
        if relay is not None:
            await retry_setup(relay.setup, "relay")
            tasks.append(asyncio.create_task(relay.run(stop)))
            if (rotator := core.key_rotator()) is not None:
                tasks.append(asyncio.create_task(rotator.run(stop)))
        if runners:
            for runner in runners:
                # the api too: queries need the read models' tables before a projector runs
                await retry_setup(runner.setup, f"projection {runner.projection.name}")
                if mode != "api":
                    tasks.append(asyncio.create_task(runner.run(stop)))
            if mode != "api":
                tasks += [asyncio.create_task(work(stop)) for addon in core.addons() for work in addon.workers]
        if mode in ("api", "all"):
            tasks.append(asyncio.create_task(core.revocations.run(stop)))
            tasks.append(asyncio.create_task(core.verifier.run(stop)))  # the JWKS, every PIPELINES_JWKS_REFRESH_S
            tasks.append(_serve(core.app(), s, s.port(core.name), stop))
        settle_heap()
        log.info("service.started", service=core.name, mode=mode)
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        for t in tasks:
            with contextlib.suppress(Exception):
                await t


Kind = Callable[[Settings, asyncio.Event], Awaitable[None]]  # a process kind of a service's own: runs until the event


async def run_kind(core: ServiceCore, mode: str, kind: Kind, stop: asyncio.Event) -> None:
    """Run a process kind a service adds to the three (the agenda's notifier): ``kind(settings, stop)`` beside the
    ops port (/healthz, /readyz with the service's PostgreSQL and Kafka, /metrics), until ``stop``."""
    s = core.settings
    tasks = [_serve(ops_app(core, mode), s, s.ops_port, stop)] if s.ops_port else []
    try:
        settle_heap()
        log.info("service.started", service=core.name, mode=mode)
        await kind(s, stop)
    finally:
        stop.set()
        for t in tasks:
            with contextlib.suppress(Exception):
                await t


def main(
    name: str,
    build: Callable[[Settings], Awaitable[ServiceCore]],
    argv: list[str] | None = None,
    *,
    kinds: Mapping[str, Kind] | None = None,
) -> None:
    """``python -m services.<name> api|relay|projector|all``, and the process kinds the service adds (``kinds``:
    each its own process, never part of ``all``)."""
    kinds = dict(kinds or {})
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}", description=f"the {name} service")
    parser.add_argument(
        "mode", choices=(*MODES, *kinds), help="which process kind to run (all: the three in one process)"
    )
    args = parser.parse_args(argv)
    if args.mode == "api" and worker() is None and (workers := Settings().api_workers) > 1:
        raise SystemExit(supervise(name, workers))  # PIPELINES_API_WORKERS processes on the one port

    async def _main() -> None:
        settings = Settings()
        configure_logging(settings, service=name, process=args.mode)
        tracing.setup(name, args.mode)  # off unless OTEL_TRACES_EXPORTER names an exporter (decision 0027)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        core = await build(settings)
        try:
            await core.ensure_topics()
            if args.mode in kinds:
                await run_kind(core, args.mode, kinds[args.mode], stop)
            else:
                await run(core, args.mode, stop)
        finally:
            await core.close()

    uvloop.run(_main())  # libuv's event loop: less CPU per round trip for asyncpg, aiokafka and uvicorn
