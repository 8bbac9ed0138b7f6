"""The deals service's composition root: its parts, built from the settings.

``python -m services.deals api|relay|projector|all``: the HTTP API, the outbox relay, the projector (read
models and reactions), or all three in one process (development and the demo). Each scales on its own.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from services.alerts.scanner import Check
from services.alerts.wiring import AlertingService
from services.deals import analytics, handovers, projections
from services.deals.api import DealsAPI, create_app
from services.deals.handlers import Clock, Deals
from services.directory.replica import PostgresReplica, replica
from services.directory.replica import handovers as handing_over
from shared.edge.service import Storage, utc_now
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Projection
from shared.ops.settings import Settings
from shared.store.db import Conn

SERVICE = "deals"


class DealsService(AlertingService):
    name = SERVICE

    def __init__(self, storage: Storage, clock: Clock) -> None:
        super().__init__(storage)
        self.deals = Deals(storage.store, clock, storage.personal_data.keys, tz=ZoneInfo(self.settings.timezone))

    def projections(self) -> list[Projection]:
        topic = self.settings.events_topic(SERVICE)
        agenda = self.settings.events_topic("agenda")  # the activities scheduled on deals: each one's next step
        mine = [projections.board(topic, agenda), analytics.analytics(topic, agenda), self.reactions()]
        return [*mine, *self.directory_replica()]

    def directory_replica(self) -> list[Projection]:
        """The users and teams deals name, replicated from the directory (decision 0017) where they are checked, and
        the hand-over of a deactivated user's open deals (services.deals.handovers)."""
        if not self.settings.check_references:
            return []
        s, store = self.settings, self.storage.store

        async def hand_over(conn: Conn, deal: str, old: str, new: str, reason: str, cause: CloudEvent) -> None:
            await handovers.hand_over(self.deals.using(store.using(conn)), deal, old, new, reason, cause)

        directory = s.events_topic("directory")
        own = handing_over(directory, s.events_topic(SERVICE), handovers.EVENTS, handovers.ownership, hand_over)
        return [replica(directory), own]

    def reactions(self) -> Projection:
        """Other services' events turned into commands on deals."""
        return self.reactions_to(
            ("leads", "production", "directory"),
            ("pipelines.leads.", "pipelines.production.", "pipelines.directory.CustomerLinked"),
            lambda store, envelope, data: self.deals.using(store).react(envelope, data),
        )

    def clock(self) -> datetime:
        return self.deals.clock()

    def alert_checks(self) -> dict[str, tuple[str, Check]]:
        return {"deal_stuck": ("board", projections.stuck_deals)}

    def app(self) -> FastAPI:
        st = self.storage
        api = DealsAPI(
            deals=self.deals,
            store=st.store,
            read_models=st.read_models,
            personal_data=st.personal_data,
            timezone=self.settings.timezone,
            readiness=st.readiness,
            references=PostgresReplica(st.read_models) if self.settings.check_references else None,
        )
        return self.make_app(create_app, api)


async def build(settings: Settings, *, clock: Clock = utc_now) -> DealsService:
    service = DealsService(await Storage.open(settings, SERVICE), clock)
    await service.deals.ensure_default_pipeline()
    return service
