"""The agenda service's composition root. ``python -m services.agenda api|relay|projector|all`` (and the
``notifier``: ``__main__``)."""

from __future__ import annotations

from datetime import datetime

from fastapi import FastAPI

from services.agenda import handovers, projections
from services.agenda.api import AgendaAPI, create_app
from services.agenda.erasures import erasures
from services.agenda.handlers import Agenda, Clock
from services.agenda.subjects import PostgresSubjects, subjects
from services.alerts.projection import alerts_projection
from services.directory.replica import PostgresReplica, replica
from services.directory.replica import handovers as handing_over
from shared.edge.service import ServiceCore, Storage, utc_now
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Projection
from shared.ops.settings import Settings
from shared.store.db import Conn

SERVICE = "agenda"


class AgendaService(ServiceCore):
    name = SERVICE

    def __init__(self, storage: Storage, clock: Clock) -> None:
        super().__init__(storage)
        self.agenda = Agenda(storage.store, clock)

    def projections(self) -> list[Projection]:
        s = self.settings
        topic = s.events_topic(SERVICE)
        return [
            projections.activities(topic),  # the agenda and the lists
            subjects(s.events_topic("deals"), s.events_topic("leads")),  # deals and leads activities are about
            replica(s.events_topic("directory")),  # owners, teams, organisations, people (decision 0017)
            self.handovers(),
            self.erasures(),
            alerts_projection(s.alerts_topic()),  # the alerts, with whom they concern: the notifier tells them
        ]

    def handovers(self) -> Projection:
        """A deactivated user's open activities handed over (services.agenda.handovers)."""
        store = self.storage.store

        async def hand_over(conn: Conn, activity: str, old: str, new: str, reason: str, cause: CloudEvent) -> None:
            await handovers.hand_over(self.agenda.using(store.using(conn)), activity, old, new, reason, cause)

        directory, own = self.settings.events_topic("directory"), self.settings.events_topic(SERVICE)
        return handing_over(directory, own, handovers.EVENTS, handovers.ownership, hand_over)

    def erasures(self) -> Projection:
        """The subjects' erasures recorded on their activities (services.agenda.erasures)."""
        store = self.storage.store
        topics = tuple(self.settings.events_topic(x) for x in ("leads", "deals", "directory", SERVICE))
        return erasures(lambda conn: self.agenda.using(store.using(conn)), topics)

    def clock(self) -> datetime:
        return self.agenda.clock()

    def app(self) -> FastAPI:
        st = self.storage
        references = PostgresReplica(st.read_models)
        api = AgendaAPI(
            agenda=self.agenda,
            read_models=st.read_models,
            personal_data=st.personal_data,
            readiness=st.readiness,
            references=references,
            subjects=PostgresSubjects(st.read_models, references),
            timezone=self.settings.timezone,
        )
        return self.make_app(create_app, api)


async def build(settings: Settings, *, clock: Clock = utc_now) -> AgendaService:
    return AgendaService(await Storage.open(settings, SERVICE), clock)
