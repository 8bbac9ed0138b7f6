"""The production service's composition root. ``python -m services.production api|relay|projector|all``."""

from __future__ import annotations

from datetime import datetime

from fastapi import FastAPI

from services.alerts.scanner import Check, Condition
from services.alerts.wiring import AlertingService
from services.production import projections
from services.production.api import ProductionAPI, create_app
from services.production.handlers import Clock, Production
from shared.edge.service import Storage, utc_now
from shared.messaging.projections import Projection
from shared.ops.settings import Settings
from shared.store.db import Conn

SERVICE = "production"


class ProductionService(AlertingService):
    name = SERVICE

    def __init__(self, storage: Storage, clock: Clock) -> None:
        super().__init__(storage)
        self.production = Production(storage.store, clock, self.settings.timezone, storage.personal_data.keys)

    def projections(self) -> list[Projection]:
        s = self.settings
        return [
            projections.floor(s.events_topic(SERVICE)),
            projections.demand(s.events_topic("deals"), s.timezone),
            self.reactions(),
        ]

    def reactions(self) -> Projection:
        """A won deal makes its order; a won deal reopened cancels it."""
        return self.reactions_to(
            ("deals",),
            ("pipelines.deals.DealWon", "pipelines.deals.DealReopened"),
            lambda store, envelope, data: self.production.using(store).react(envelope, data),
        )

    def clock(self) -> datetime:
        return self.production.clock()

    def alert_checks(self) -> dict[str, tuple[str, Check]]:
        tz = self.settings.timezone

        async def at_risk(conn: Conn, now: datetime) -> list[Condition]:
            return await projections.orders_at_risk(conn, now, tz)

        return {"order_at_risk": ("floor", at_risk)}

    def app(self) -> FastAPI:
        st = self.storage
        api = ProductionAPI(
            production=self.production,
            read_models=st.read_models,
            personal_data=st.personal_data,
            timezone=self.settings.timezone,
            readiness=st.readiness,
        )
        return self.make_app(create_app, api)


async def build(settings: Settings, *, clock: Clock = utc_now) -> ProductionService:
    return ProductionService(await Storage.open(settings, SERVICE), clock)
