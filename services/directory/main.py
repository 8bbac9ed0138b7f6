"""The directory service's composition root. ``python -m services.directory api|relay|projector|all``."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import FastAPI

from services.directory import projections
from services.directory.adoption import Adoptions, contact_erased
from services.directory.api import DirectoryAPI, create_app
from services.directory.conversions import Conversions, ReadModelIndex
from services.directory.customers import Customers
from services.directory.handlers import Clock, Directory
from services.directory.import_jobs import ImportJobs, JobConfig, service_urls
from services.directory.projections.adoption import ReadModelSource, adoption
from services.directory.projections.customer360 import customer360
from services.directory.projections.user_emails import user_emails
from shared.edge.auth import ROLES
from shared.edge.service import ServiceCore, Storage, utc_now
from shared.messaging.projections import Fact, Projection, one_by_one
from shared.ops.settings import Settings
from shared.store.db import Conn

SERVICE = "directory"


class DirectoryService(ServiceCore):
    name = SERVICE

    def __init__(self, storage: Storage, clock: Clock) -> None:
        super().__init__(storage)
        self.directory = Directory(storage.store, clock, ROLES, storage.personal_data.keys)
        # the customers' half checks owners and teams through the users' (Directory.check_owner)
        self.customers = Customers(storage.store, clock, self.directory, storage.personal_data.keys)
        # the blind index's key, derived from the master key as the leads' duplicate index's is
        self.index_key = hmac.new(self.settings.master_key(), b"pipelines.directory.search", hashlib.sha256).digest()
        self.conversions = Conversions(self.index_key, self.directory.team_of, storage.personal_data.keys)
        # old deals' customer strings and contacts adopted by an admin's command (services.directory.adoption)
        self.adoptions = Adoptions(storage.store, clock, self.directory.team_of, storage.personal_data)

    def projections(self) -> list[Projection]:
        topic = self.settings.events_topic(SERVICE)
        return [
            projections.directory(topic),
            projections.customers(topic, self.storage.personal_data, self.index_key),
            # the customer 360: what each organisation's deals brought (decision 0017, issue 24 item 4)
            customer360(topic, self.settings.events_topic("deals"), self.settings.events_topic("production")),
            self.reactions(),  # the leads' conversions linked to customers; deals' contacts erased
            adoption(self.settings.events_topic("deals")),  # what the adoption of old deals reads
            # the users' emails' blind index: the sign-in service finds a user by email (POST /users/lookup)
            user_emails(topic, self.storage.personal_data, self.index_key),
        ]

    def reactions(self) -> Projection:
        """The leads' conversions linked to their customers, and their erasures reaching the people registered from
        them (services.directory.conversions); a deal's contact erased reaching the person adopted from it
        (services.directory.adoption). In the runner's transaction: ``reactions_to``'s, with the connection the
        blind index is read on."""
        storage = self.storage

        async def apply(conn: Conn, fact: Fact) -> None:
            (data,) = await storage.personal_data.open([fact.envelope.data])
            store = storage.store.using(conn)
            if fact.envelope.type == "pipelines.deals.DealContactErased":  # the person adopted from the contact
                await contact_erased(store, storage.personal_data.keys, fact.envelope, data)
                return
            index = ReadModelIndex(conn, storage.read_models)
            await self.conversions.react(store, index, fact.envelope, data)

        return Projection(
            name="reactions",
            topics=(self.settings.events_topic("leads"), self.settings.events_topic("deals")),
            ddl="",
            apply=one_by_one(apply),
            accepts=(
                "pipelines.leads.LeadConverted",
                "pipelines.leads.LeadPersonalDataErased",
                "pipelines.deals.DealContactErased",
            ),
        )

    def app(self) -> FastAPI:
        st = self.storage
        api = DirectoryAPI(
            directory=self.directory,
            read_models=st.read_models,
            personal_data=st.personal_data,
            readiness=st.readiness,
            customers=self.customers,
            index_key=self.index_key,
            timezone=self.settings.timezone,
            adoptions=self.adoptions,
            adoption_source=ReadModelSource(st.read_models),
            imports=self.import_jobs(),
        )
        return self.make_app(create_app, api)

    def import_jobs(self) -> ImportJobs:
        """The import jobs (POST /imports): their batches reach every service at its API URL with the token the job
        was started with (decisions 0021, 0022)."""
        s = self.settings
        config = JobConfig.of(s.import_spool_dir, s.import_max_bytes, service_urls(s.api_url))
        return ImportJobs(self.storage.store, self.clock, config)


async def build(settings: Settings, *, clock: Clock = utc_now) -> DirectoryService:
    return DirectoryService(await Storage.open(settings, SERVICE), clock)
