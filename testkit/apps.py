"""Every service's HTTP app and the board's, built without servers (in-memory stores, a test key), for tests that
read their shape."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from services.agenda.api import AgendaAPI
from services.agenda.api import create_app as agenda_app
from services.agenda.handlers import Agenda
from services.agenda.subjects import MemorySubjects
from services.deals.api import DealsAPI
from services.deals.api import create_app as deals_app
from services.deals.handlers import Deals
from services.directory.api import DirectoryAPI
from services.directory.api import create_app as directory_app
from services.directory.handlers import Directory
from services.directory.replica import MemoryReplica
from services.leads.api import LeadsAPI
from services.leads.api import create_app as leads_app
from services.leads.handlers import InMemoryDedupe, Leads
from services.leads.sources import HttpFacebookGraph
from services.production.api import ProductionAPI
from services.production.api import create_app as production_app
from services.production.handlers import Production
from services.web.app import create_app as web_app
from shared.edge.auth import ROLES, TokenVerifier
from shared.ops.settings import Settings
from shared.store.memory import InMemoryEventStore

NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
SETTINGS = Settings(
    website_form_secret="site-secret",
    ladipage_token="ladi-token",
    jwt_keys='{"k": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"}',
    jwt_active_kid="k",
)
# the users the tests' tokens name, as the pipelines' replica of the directory has them (decision 0017)
PEOPLE = (("u-lan", "north"), ("u-binh", "north"), ("u-mai", "north"), ("u-tuan", "south"), ("u-dung", "south"))


def replica() -> MemoryReplica:
    return MemoryReplica().seed(*PEOPLE)


async def _ready() -> dict[str, str]:
    return {"store": "ok"}


def apps() -> dict[str, FastAPI]:
    verifier = TokenVerifier({"k": b"k" * 32}, issuer="pipelines", audience="pipelines")
    store = InMemoryEventStore()
    deals = DealsAPI(Deals(store, lambda: NOW), store, None, store.personal_data, "Asia/Ho_Chi_Minh", _ready, replica())
    leads = Leads(store, store.personal_data, lambda: NOW, InMemoryDedupe(), b"d" * 32)
    graph = HttpFacebookGraph("fb-token", client=httpx.AsyncClient(base_url="https://graph.facebook.com"))
    production = ProductionAPI(Production(store, lambda: NOW), None, store.personal_data, "Asia/Ho_Chi_Minh", _ready)
    directory = DirectoryAPI(Directory(store, lambda: NOW, ROLES), None, store.personal_data, _ready)
    people = replica()
    agenda = AgendaAPI(Agenda(store, lambda: NOW), None, store.personal_data, _ready, people, MemorySubjects(people))
    web = web_app(SETTINGS, transport=httpx.MockTransport(lambda r: httpx.Response(503)), live_feed=False)
    return {
        "deals": deals_app(deals, verifier),
        "leads": leads_app(LeadsAPI(leads, None, SETTINGS, graph, _ready, replica()), verifier),
        "production": production_app(production, verifier),
        "directory": directory_app(directory, verifier),
        "agenda": agenda_app(agenda, verifier),
        "web": web,
    }
