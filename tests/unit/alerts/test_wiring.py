"""How a service's processes are wired without servers: the kernel runs the alerts' parts (relay route, read model,
topic, scanner) as an ``Addon`` it does not know, and builds every service's app the same way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, ClassVar, cast

from fastapi import FastAPI

from services.alerts.events import ALERTS_PREFIX, AlertRaised
from services.alerts.scanner import AlertScanner, Check, Condition
from services.alerts.wiring import AlertingService
from shared.edge.auth import TokenVerifier
from shared.edge.service import ServiceCore, Storage
from shared.messaging.projections import Projection, one_by_one
from shared.ops.settings import Settings
from shared.store.db import Conn
from testkit.services import TEST_JWKS

SETTINGS = Settings(
    _env_file=None,
    database_url="postgresql://nowhere/db",
    topic_prefix="t1",
    jwt_public_keys=TEST_JWKS,
    max_body_bytes=4096,
)


def storage() -> Storage:
    fake = cast(Any, SimpleNamespace(schema="t1_things"))
    return Storage(SETTINGS, fake, fake, fake, fake)


async def nothing(conn: Conn, now: datetime) -> list[Condition]:
    return []


async def no_op(conn: Conn, fact: Any) -> None:
    return None


class Things(AlertingService):
    name = "deals"
    checks: ClassVar[dict[str, tuple[str, Check]]] = {"thing_stuck": ("things", nothing)}

    def projections(self) -> list[Projection]:
        return [Projection("things", (SETTINGS.events_topic("deals"),), "", one_by_one(no_op), ("pipelines.deals.",))]

    def alert_checks(self) -> dict[str, tuple[str, Check]]:
        return self.checks


class Quiet(Things):
    checks: ClassVar[dict[str, tuple[str, Check]]] = {}


class Bare(ServiceCore):
    name = "deals"

    def projections(self) -> list[Projection]:
        return []


def test_an_alerting_service_routes_keeps_and_scans_its_alerts() -> None:
    core = Things(storage())
    assert core.relay().routes == {ALERTS_PREFIX: "t1.alerts"}
    runners = core.runners()
    assert [r.projection.name for r in runners] == ["things", "alerts"]
    assert runners[1].projection.topics == ("t1.alerts",)
    assert runners[1].projection.accepts == (ALERTS_PREFIX,)
    (addon,) = core.addons()
    assert [t.name for t in addon.topics] == ["t1.alerts"]
    (worker,) = addon.workers
    scanner = cast(Any, worker).__self__
    assert isinstance(scanner, AlertScanner)
    assert (scanner.service, scanner.checks, scanner.interval_s) == (
        "deals",
        Things.checks,
        SETTINGS.alert_scan_seconds,
    )


def test_a_service_without_checks_runs_no_scanner_but_keeps_the_read_model() -> None:
    core = Quiet(storage())
    (addon,) = core.addons()
    assert addon.workers == ()
    assert [r.projection.name for r in core.runners()] == ["things", "alerts"]


def test_the_kernel_alone_knows_no_alerts() -> None:
    core = Bare(storage())
    assert core.addons() == []
    assert core.relay().routes == {}
    assert core.runners() == []


def test_every_app_is_made_alike() -> None:
    seen: list[tuple[str, TokenVerifier]] = []

    def create_app(api: str, verifier: TokenVerifier) -> FastAPI:
        seen.append((api, verifier))
        return FastAPI()

    core = Things(storage())
    app = core.make_app(create_app, "the api")
    assert app.state.max_body_bytes == 4096
    ((api, verifier),) = seen
    assert api == "the api"
    assert verifier.revoked is core.revocations


def test_the_alert_events_keep_their_names() -> None:
    event = AlertRaised(
        alert_id=uuid.uuid4(),
        service="deals",
        kind="deal_stuck",
        entity="deal-1",
        summary="stuck",
        details={},
        raised_at=datetime.now(UTC),
    )
    assert event.event_type == "pipelines.alerts.AlertRaised" and event.event_type.startswith(ALERTS_PREFIX)
