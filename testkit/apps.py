"""Every service's HTTP app and the board's, built without servers (in-memory stores, a test key), for tests that
read their shape."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
from services.directory.customers import Customers
from services.directory.handlers import Directory
from services.directory.replica import MemoryReplica
from services.leads.api import LeadsAPI
from services.leads.api import create_app as leads_app
from services.leads.handlers import InMemoryDedupe, Leads
from services.leads.sources import HttpFacebookGraph
from services.production.api import ProductionAPI
from services.production.api import create_app as production_app
from services.production.handlers import Production
from services.signin.api import create_app as signin_app
from services.signin.directory import MemoryUsers
from services.signin.domain import passwords, sessions
from services.signin.handlers import Config, Signin
from services.signin.store import MemoryStore
from services.web.app import create_app as web_app
from services.webhooks.api import create_app as webhooks_app
from services.webhooks.domain.addresses import AllowList
from services.webhooks.handlers import Config as WebhooksConfig
from services.webhooks.handlers import Webhooks
from services.webhooks.main import registered_types
from services.webhooks.sealing import Sealer
from services.webhooks.store import MemoryStore as MemoryWebhooks
from shared.edge.auth import ROLES, TokenVerifier
from shared.edge.revocation import RevocationList
from shared.edge.service import serve
from shared.ops.settings import Settings
from shared.ops.stack import free_port
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_JWKS, TEST_KEYS, operator_settings

NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
SETTINGS = Settings(
    website_form_secret="site-secret",
    ladipage_token="ladi-token",
    jwt_public_keys=TEST_JWKS,  # tokens: testkit.services.bearer / issue_token(TEST_KEYS, ...)
)
# what an operator's tools (the simulation, `pipelines token`) run with: the signing keys besides (decision 0022)
OPERATOR_SETTINGS = operator_settings(SETTINGS)
# the users the tests' tokens name, as the pipelines' replica of the directory has them (decision 0017)
PEOPLE = (("u-lan", "north"), ("u-binh", "north"), ("u-mai", "north"), ("u-tuan", "south"), ("u-dung", "south"))


def replica() -> MemoryReplica:
    return MemoryReplica().seed(*PEOPLE)


async def _ready() -> dict[str, str]:
    return {"store": "ok"}


def apps() -> dict[str, FastAPI]:
    verifier = TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines")
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
        "signin": signin_app(signin(), verifier, _ready),
        "webhooks": webhooks_app(webhooks(), verifier, _ready),
        "web": web,
    }


def webhooks() -> Webhooks:
    """The webhooks' API in memory (decision 0026): subscriptions only, nothing dispatched."""
    config = WebhooksConfig(AllowList(), registered_types())
    return Webhooks(MemoryWebhooks(), Sealer(b"w" * 32), config, clock=lambda: NOW)


def signin() -> Signin:
    """The sign-in service in memory (decision 0022): no users, the test keys, fast hashing."""
    timeouts = sessions.Timeouts(token_s=300, idle_s=1800, absolute_s=43_200)
    config = Config(max_failures=5, lock_s=900, per_minute=20, timeouts=timeouts, attempts_key=b"a" * 32)
    hasher = passwords.Passwords(passwords.FAST)
    return Signin(MemoryStore(), MemoryUsers(), TEST_KEYS, RevocationList(), config, hasher=hasher, clock=lambda: NOW)


@contextmanager
def served_directory(now: datetime, max_in_flight: int | None = None) -> Iterator[Settings]:
    """The directory API (users and customers, on an in-memory store, its clock at ``now``) served on a port in a
    thread of this process until the block ends, bounded at ``max_in_flight`` requests in flight (None: no bound);
    yields the settings an operator's tools read, pointing at it, once it answers."""
    s = operator_settings(Settings(directory_port=free_port()))
    store = InMemoryEventStore()
    directory = Directory(store, lambda: now, ROLES)
    api = DirectoryAPI(directory, None, store.personal_data, _ready, Customers(store, lambda: now, directory))
    app = directory_app(api, TokenVerifier.from_settings(s))
    app.state.max_in_flight = max_in_flight
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    server = threading.Thread(target=lambda: loop.run_until_complete(serve(app, "127.0.0.1", s.directory_port, stop)))
    server.start()
    try:
        with httpx.Client(base_url=s.api_url("directory")) as http:
            for _ in range(200):  # until it serves
                try:
                    http.get("/healthz")
                    break
                except httpx.TransportError:
                    threading.Event().wait(0.02)
        yield s
    finally:
        loop.call_soon_threadsafe(stop.set)
        server.join(10)
        loop.close()
