"""The directory service's composition root. ``python -m services.directory api|relay|projector|all``."""

from __future__ import annotations

from fastapi import FastAPI

from services.directory import projections
from services.directory.api import DirectoryAPI, create_app
from services.directory.handlers import Clock, Directory
from shared.edge.auth import ROLES
from shared.edge.service import ServiceCore, Storage, utc_now
from shared.messaging.projections import Projection
from shared.ops.settings import Settings

SERVICE = "directory"


class DirectoryService(ServiceCore):
    name = SERVICE

    def __init__(self, storage: Storage, clock: Clock) -> None:
        super().__init__(storage)
        self.directory = Directory(storage.store, clock, ROLES, storage.personal_data.keys)

    def projections(self) -> list[Projection]:
        return [projections.directory(self.settings.events_topic(SERVICE))]

    def app(self) -> FastAPI:
        st = self.storage
        api = DirectoryAPI(
            directory=self.directory,
            read_models=st.read_models,
            personal_data=st.personal_data,
            readiness=st.readiness,
        )
        return self.make_app(create_app, api)


async def build(settings: Settings, *, clock: Clock = utc_now) -> DirectoryService:
    return DirectoryService(await Storage.open(settings, SERVICE), clock)
