"""The services an import reaches, in memory on one store (directory, leads, deals, agenda), for tests that run the
import tool's core (``shared.imports.runner.Run``) through their real ``POST /imports/batches`` routes.

What the message bus does between services on the real stack is done here after each batch (``sync``): the deals',
leads' and agenda's replica of the directory and the agenda's subjects are fed every event appended so far. The
directory knows the teams and salespeople the sample files' owners map to (``start``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from shared.edge.auth import ROLES, TokenVerifier, issue_token
from shared.imports import mapping, runner
from shared.store.memory import InMemoryEventStore
from testkit.apps import SETTINGS
from testkit.services import TEST_KEYS

NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
TEAMS = {"north": "Miền Bắc", "south": "Miền Nam"}
# the salespeople the sample files name, as the mappings' [owners] tables of the tests map them
USERS = (
    ("u-lan", "north", "Nguyễn Thị Lan"),
    ("u-binh", "north", "Trần Văn Bình"),
    ("u-tuan", "south", "Lê Minh Tuấn"),
)
OWNERS = "\n[owners]\n" + "".join(f'"{name}" = {{ user = "{u}", team = "{t}" }}\n' for u, t, name in USERS)


def auth(user: str, *roles: str, team: str | None = None) -> dict[str, str]:
    token = issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)
    return {"Authorization": f"Bearer {token}"}


ADMIN = auth("u-admin", "admin")
IMPORTER = auth("u-import", "importer")


async def _ready() -> dict[str, str]:
    return {"store": "ok"}


class World:
    """The four services on one in-memory store, their replicas fed by ``sync``."""

    def __init__(self) -> None:
        self.store = InMemoryEventStore()
        self.replica = MemoryReplica()
        self.subjects = MemorySubjects(self.replica)
        self.deals = Deals(self.store, lambda: NOW)
        self._applied = 0
        verifier = TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines")
        pd = self.store.personal_data
        directory = Directory(self.store, lambda: NOW, ROLES)
        customers = Customers(self.store, lambda: NOW, directory)
        leads = Leads(self.store, pd, lambda: NOW, InMemoryDedupe(), b"d" * 32)
        self._graph = httpx.AsyncClient(base_url="https://graph.facebook.com")  # never reached: no webhook here
        graph = HttpFacebookGraph("fb-token", client=self._graph)
        self.apps: dict[str, FastAPI] = {
            "directory": directory_app(DirectoryAPI(directory, None, pd, _ready, customers), verifier),
            "leads": leads_app(LeadsAPI(leads, None, SETTINGS, graph, _ready, self.replica), verifier),
            "deals": deals_app(
                DealsAPI(self.deals, self.store, None, pd, "Asia/Ho_Chi_Minh", _ready, self.replica), verifier
            ),
            "agenda": agenda_app(
                AgendaAPI(Agenda(self.store, lambda: NOW), None, pd, _ready, self.replica, self.subjects), verifier
            ),
        }
        self.clients = {
            name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
            for name, app in self.apps.items()
        }

    async def start(self) -> World:
        """The default pipeline, and the teams and salespeople in the directory."""
        await self.deals.ensure_default_pipeline()
        directory = self.clients["directory"]
        for team, name in TEAMS.items():
            r = await directory.post("/teams", json={"team_id": team, "name": name}, headers=ADMIN)
            assert r.status_code == 201, r.text
        for user, team, name in USERS:
            body = {"user_id": user, "name": name, "email": f"{user[2:]}@example.vn", "team_id": team,
                    "roles": ["sales"], "reason": "the import tests' salespeople"}  # fmt: skip
            r = await directory.post("/users", json=body, headers=ADMIN)
            assert r.status_code == 201, r.text
        await self.sync()
        return self

    async def sync(self) -> None:
        """Every event appended since the last sync, to the replica of the directory and to the agenda's subjects
        (what the relay and the projectors do on the real stack)."""
        recorded = sorted(await self.store.read_streams(""), key=lambda r: r.position)
        for r in recorded[self._applied :]:
            event = r.to_event()
            self.replica.apply(event)
            self.subjects.apply(event)
        self._applied = len(recorded)

    async def get(self, service: str, path: str) -> Any:
        r = await self.clients[service].get(path, headers=ADMIN)
        assert r.status_code == 200, f"GET {service}{path}: {r.status_code} {r.text[:300]}"
        return r.json()

    async def close(self) -> None:
        for client in (*self.clients.values(), self._graph):
            await client.aclose()


@dataclass
class MemorySender:
    """``runner.Sender`` over the in-memory apps, with the importer's token; the replicas synced after each batch."""

    world: World
    headers: dict[str, str]

    async def send(self, service: str, batch: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        r = await self.world.clients[service].post("/imports/batches", json=batch, headers={**self.headers, **headers})
        if r.status_code != 200:
            raise runner.RunError(f"{service} answered {r.status_code}: {r.text[:500]}")
        await self.world.sync()
        answer: dict[str, Any] = r.json()
        return answer


def source_mapping(source: str, tmp: Path) -> mapping.Mapping:
    """The shipped mapping of a source with the tests' [owners] table added (as a user adds theirs)."""
    path = tmp / f"{source}.toml"
    path.write_text(mapping.builtin(source).read_text(encoding="utf-8") + OWNERS, encoding="utf-8")
    return mapping.load(path)


async def run_import(
    world: World, source: str, files: list[Path], tmp: Path, *, dry_run: bool = False
) -> tuple[runner.Counts, list[tuple[str, int, str, str]]]:
    """One run of the import's core over these files; its counts and its report's lines."""
    run = runner.Run(
        source_mapping(source, tmp),
        MemorySender(world, IMPORTER),
        runner.Options(source=source, dry_run=dry_run, report=tmp / f"report-{source}.csv", now=lambda: NOW),
    )
    counts = await run.run(files)
    return counts, list(run.report.lines)
