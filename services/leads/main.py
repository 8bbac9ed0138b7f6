"""The leads service's composition root. ``python -m services.leads api|relay|projector|all``."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from fastapi import FastAPI

from services.alerts.scanner import Check, Condition
from services.alerts.wiring import AlertingService
from services.directory.replica import PostgresReplica, replica
from services.directory.replica import handovers as handing_over
from services.leads import handovers, projections, sources
from services.leads.api import LeadsAPI, create_app
from services.leads.handlers import Clock, Leads, PostgresDedupe
from shared.edge.service import Storage, utc_now
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Projection
from shared.ops.settings import Settings
from shared.store.db import Conn
from shared.store.migrations import retry_setup

SERVICE = "leads"


class LeadsService(AlertingService):
    name = SERVICE

    def __init__(self, storage: Storage, leads: Leads, graph: sources.FacebookGraph | None) -> None:
        super().__init__(storage)
        self.leads = leads
        self.graph = graph

    def projections(self) -> list[Projection]:
        mine = [projections.marketing(self.settings.events_topic(SERVICE)), self.reactions()]
        return [*mine, *self.directory_replica()]

    def directory_replica(self) -> list[Projection]:
        """The users and teams leads name, replicated from the directory (decision 0017) where they are checked, and
        the hand-over of a deactivated user's open leads (services.leads.handovers)."""
        if not self.settings.check_references:
            return []
        s, store = self.settings, self.storage.store

        async def hand_over(conn: Conn, lead: str, old: str, new: str, reason: str, cause: CloudEvent) -> None:
            await handovers.hand_over(self.leads.using(store.using(conn)), lead, old, new, reason, cause)

        directory = s.events_topic("directory")
        own = handing_over(directory, s.events_topic(SERVICE), handovers.EVENTS, handovers.ownership, hand_over)
        return [replica(directory), own]

    def reactions(self) -> Projection:
        """Deals won or lost, recorded back on the lead they came from."""
        return self.reactions_to(
            ("deals",),
            ("pipelines.deals.DealWon", "pipelines.deals.DealLost"),
            lambda store, envelope, data: self.leads.using(store).react(envelope, data),
        )

    def clock(self) -> datetime:
        return self.leads.clock()

    def alert_checks(self) -> dict[str, tuple[str, Check]]:
        minutes = self.settings.lead_response_minutes

        async def not_contacted(conn: Conn, now: datetime) -> list[Condition]:
            return await projections.leads_not_contacted(conn, now, minutes)

        return {"lead_not_contacted": ("marketing", not_contacted)}

    def app(self) -> FastAPI:
        st = self.storage
        api = LeadsAPI(
            leads=self.leads,
            read_models=st.read_models,
            settings=self.settings,
            graph=self.graph,
            readiness=st.readiness,
            references=PostgresReplica(st.read_models) if self.settings.check_references else None,
        )
        return self.make_app(create_app, api)


async def build(
    settings: Settings, *, clock: Clock = utc_now, graph: sources.FacebookGraph | None = None
) -> LeadsService:
    storage = await Storage.open(settings, SERVICE)
    dedupe = PostgresDedupe(storage.pool, storage.store.schema)
    await retry_setup(dedupe.setup, "dedupe index")
    # duplicate-index keys derive from the master key: a database dump alone cannot test phone numbers
    dedupe_secret = hmac.new(settings.master_key(), b"pipelines.leads.dedupe", hashlib.sha256).digest()
    if graph is None and settings.facebook_access_token is not None:
        graph = sources.HttpFacebookGraph(
            settings.facebook_access_token.get_secret_value(), base_url=settings.facebook_graph_url
        )
    leads = Leads(storage.store, storage.personal_data, clock, dedupe, dedupe_secret)
    return LeadsService(storage, leads, graph)
