"""Back-dated facts over HTTP in every service (issue 26 item 1, decision 0021), on the in-memory apps with one
clock: each create route takes ``X-Occurred-At``; a time in the future is 422 ``occurred_in_future``, one before the
stream's last event 422 ``before_previous_event`` naming it; further back than PIPELINES_BACKDATE_LIMIT_DAYS a
salesperson or marketer gets 403 ``backdate_limit``, an admin or an importer not; "in the past" checks compare
with the command's time; every history shows both times."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response
from fastapi.testclient import TestClient

from services.agenda.api import AgendaAPI
from services.agenda.api import create_app as agenda_app
from services.agenda.handlers import Agenda
from services.agenda.subjects import MemorySubjects, Subject
from services.deals.api import DealsAPI
from services.deals.api import create_app as deals_app
from services.deals.handlers import Deals
from services.directory.api import DirectoryAPI
from services.directory.api import create_app as directory_app
from services.directory.customers import Customers
from services.directory.handlers import Directory
from services.leads.api import LeadsAPI
from services.leads.api import create_app as leads_app
from services.leads.handlers import InMemoryDedupe, Leads
from services.production.api import ProductionAPI
from services.production.api import create_app as production_app
from services.production.handlers import Production
from shared.edge.auth import ROLES, Principal, TokenVerifier, issue_token, require
from shared.edge.commands import OccurredAt, run_command
from shared.edge.http import install_common
from shared.ops.settings import Settings
from shared.store.commands import execute
from shared.store.memory import InMemoryEventStore
from testkit.apps import SETTINGS, replica
from testkit.events import Counted, counter
from testkit.services import TEST_KEYS, operator_settings
from tools import history as histories

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
DEAL = uuid.UUID("0f6a2c3e-1b2d-4e5f-8a9b-0c1d2e3f4a5b")  # u-lan's deal, as the agenda knows it
VERIFIER = TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines")


def auth(user: str, *roles: str, team: str | None = None, at: str | None = None) -> dict[str, str]:
    token = issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)
    return {"Authorization": f"Bearer {token}"} | ({"X-Occurred-At": at} if at else {})


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


async def _ready() -> dict[str, str]:
    return {"store": "ok"}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def apps() -> Iterator[dict[str, TestClient]]:
    store, clock = InMemoryEventStore(), Clock()
    deals = Deals(store, clock)
    directory = Directory(store, clock, ROLES)
    subjects = MemorySubjects(replica())
    subjects.deals[DEAL] = Subject("deal", DEAL, "u-lan", "north", True, str(DEAL))
    made = {
        "deals": deals_app(
            DealsAPI(deals, store, None, store.personal_data, "Asia/Ho_Chi_Minh", _ready, replica()), VERIFIER
        ),
        "leads": leads_app(
            LeadsAPI(
                Leads(store, store.personal_data, clock, InMemoryDedupe(), b"d" * 32), None, SETTINGS, None, _ready
            ),
            VERIFIER,
        ),
        "production": production_app(
            ProductionAPI(Production(store, clock), None, store.personal_data, "Asia/Ho_Chi_Minh", _ready), VERIFIER
        ),
        "directory": directory_app(
            DirectoryAPI(directory, None, store.personal_data, _ready, Customers(store, clock, directory)), VERIFIER
        ),
        "agenda": agenda_app(
            AgendaAPI(Agenda(store, clock), None, store.personal_data, _ready, replica(), subjects),
            VERIFIER,
        ),
    }
    clients = {name: TestClient(app) for name, app in made.items()}
    for c in clients.values():
        c.__enter__()
    clients["deals"].portal.call(deals.ensure_default_pipeline)
    yield clients
    for c in clients.values():
        c.__exit__(None, None, None)


def history(client: TestClient, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = client.get(f"{path}/history", headers=headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def occurred(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["occurred_at"])


def problem(r: Any) -> tuple[int, str]:
    return r.status_code, r.json().get("rule")


MKT = "u-mkt", "marketing"
LAN = "u-lan", "sales"
ADMIN = "u-admin", "admin"


def test_deals_are_opened_and_moved_back_dated_within_the_rules(apps: dict[str, TestClient]) -> None:
    http = apps["deals"]
    body = {"title": "Tủ đông", "customer": "Siêu thị Minh Châu", "owner_id": "u-lan", "team_id": "north"}
    lan = auth(*LAN, team="north")
    assert problem(http.post("/deals", json=body, headers=lan | {"X-Occurred-At": ago(8)})) == (403, "backdate_limit")
    future = lan | {"X-Occurred-At": (NOW + timedelta(minutes=1)).isoformat()}
    assert problem(http.post("/deals", json=body, headers=future)) == (422, "occurred_in_future")
    r = http.post("/deals", json=body, headers=lan | {"X-Occurred-At": ago(6)})
    assert r.status_code == 201, r.text
    deal = r.json()["id"]
    admin = auth(*ADMIN, at=ago(5))
    assert http.post(f"/deals/{deal}/move-stage", json={"stage_id": "contacted"}, headers=admin).status_code == 200
    before = auth(*ADMIN, at=ago(5.5))
    r = http.post(f"/deals/{deal}/move-stage", json={"stage_id": "needs_discussed"}, headers=before)
    assert problem(r) == (422, "before_previous_event")
    assert ago(5) in r.json()["detail"]
    opened, moved = history(http, f"/deals/{deal}", lan)
    assert (occurred(opened), occurred(moved)) == (NOW - timedelta(days=6), NOW - timedelta(days=5))
    assert datetime.fromisoformat(opened["recorded_at"]) > NOW, "recorded when it was entered (the store's clock)"
    state = http.get(f"/deals/{deal}", headers=lan).json()
    assert state["opened_at"] == ago(6)


def test_a_lead_is_captured_and_contacted_back_dated_and_its_history_shows_both_times(
    apps: dict[str, TestClient],
) -> None:
    http = apps["leads"]
    body = {"source": "manual", "contact": {"name": "Chị Hương", "phone": "0912345678"}}
    assert problem(http.post("/leads", json=body, headers=auth(*MKT, at=ago(8)))) == (403, "backdate_limit")
    r = http.post("/leads", json=body, headers=auth(*MKT, at=ago(3)))
    assert r.status_code == 201, r.text
    lead = r.json()["id"]
    r = http.post(f"/leads/{lead}/contact", json={"channel": "phone"}, headers=auth(*MKT, at=ago(4)))
    assert problem(r) == (422, "before_previous_event")
    r = http.post(f"/leads/{lead}/contact", json={"channel": "phone"}, headers=auth(*MKT, at=ago(2.5)))
    assert r.status_code == 200, r.text
    captured, contacted = history(http, f"/leads/{lead}", auth(*MKT))
    assert (occurred(captured), occurred(contacted)) == (NOW - timedelta(days=3), NOW - timedelta(days=2.5))
    decided = datetime.fromisoformat(captured["data"]["captured_at"])
    assert decided == NOW - timedelta(days=3), "the lead decided on the command's time, not the clock's"
    assert all(datetime.fromisoformat(e["recorded_at"]) > NOW for e in (captured, contacted))
    old = http.post("/leads", json=body | {"external_id": "crm-1"}, headers=auth(*ADMIN, at=ago(400)))
    assert old.status_code == 201, "an admin back-dates further than the limit"


def test_an_order_back_dated_is_judged_at_its_own_time(apps: dict[str, TestClient]) -> None:
    http = apps["production"]
    body = {
        "customer": "Cửa hàng Minh Tâm",
        "lines": [{"product": "Bếp từ", "quantity": "2"}],
        "due_date": ago(-30)[:10],
    }
    prod = "u-prod", "production"
    r = http.post("/orders", json=body, headers=auth(*prod, at=ago(5)))
    assert r.status_code == 201, r.text
    order = r.json()["id"]
    promised = {"due_date": ago(1)[:10], "reason": "the customer asked"}  # past today, ahead when it was promised
    assert problem(http.post(f"/orders/{order}/change-due-date", json=promised, headers=auth(*prod))) == (
        409,
        "due_date_past",
    )
    before = auth(*prod, at=ago(6))
    assert problem(http.post(f"/orders/{order}/change-due-date", json=promised, headers=before)) == (
        422,
        "before_previous_event",
    )
    r = http.post(f"/orders/{order}/change-due-date", json=promised, headers=auth(*prod, at=ago(4)))
    assert r.status_code == 200, r.text
    created, changed = history(http, f"/orders/{order}", auth(*prod))
    assert (occurred(created), occurred(changed)) == (NOW - timedelta(days=5), NOW - timedelta(days=4))


def test_organisations_and_people_are_registered_back_dated(apps: dict[str, TestClient]) -> None:
    http = apps["directory"]
    admin = auth(*ADMIN)
    assert http.post("/teams", headers=admin, json={"team_id": "north", "name": "North"}).status_code == 201
    user = {"user_id": "u-lan", "name": "Lan", "email": "lan@example.vn", "team_id": "north", "roles": ["sales"]}
    assert http.post("/users", headers=admin, json=user).status_code == 201
    lan = auth(*LAN, team="north")
    org = {"name": "Gạch Men Thăng Long", "owner_id": "u-lan", "team_id": "north"}
    assert problem(http.post("/organisations", json=org, headers=lan | {"X-Occurred-At": ago(30)})) == (
        403,
        "backdate_limit",
    )
    r = http.post("/organisations", json=org, headers=lan | {"X-Occurred-At": ago(2)})
    assert r.status_code == 201, r.text
    organisation = r.json()["id"]
    person = {"name": "Anh Tùng", "organisation_id": organisation}
    r = http.post("/people", json=person, headers=lan | {"X-Occurred-At": ago(1)})
    assert r.status_code == 201, r.text
    someone = r.json()["id"]
    r = http.put(
        f"/organisations/{organisation}",
        json={"name": "Thang Long Tiles", "reason": "renamed"},
        headers=lan | {"X-Occurred-At": ago(3)},
    )
    assert problem(r) == (422, "before_previous_event")
    (registered,) = history(http, f"/organisations/{organisation}", lan)
    (person_registered,) = history(http, f"/people/{someone}", lan)
    assert occurred(registered) == NOW - timedelta(days=2)
    assert occurred(person_registered) == NOW - timedelta(days=1)


def test_the_limit_is_the_edges_for_every_caller_but_admins_and_importers() -> None:
    """One route built on the kernel's command helper, as every service's: the caller's roles set the limit."""
    store, app = InMemoryEventStore(), FastAPI()
    install_common(app, _ready, "test")
    app.state.token_verifier = VERIFIER
    app.state.backdate_limit_days = 3  # PIPELINES_BACKDATE_LIMIT_DAYS, as ServiceCore.make_app sets it

    @app.post("/things/{thing}")
    async def count(
        thing: str,
        request: Request,
        p: Annotated[Principal, Depends(require("sales", "importer"))],
        x_occurred_at: OccurredAt = None,
    ) -> Response:
        return await run_command(
            request,
            p.user_id,
            lambda ctx: execute(store, thing, counter, lambda n: [Counted(n=n + 1)], **ctx.options(NOW)),
            aggregate_id=thing,
            occurred_at=x_occurred_at,
        )

    with TestClient(app) as http:
        assert problem(http.post("/things/a", headers=auth(*LAN, at=ago(4)))) == (403, "backdate_limit")
        assert "3 days" in http.post("/things/a", headers=auth(*LAN, at=ago(4))).json()["detail"]
        assert http.post("/things/a", headers=auth(*LAN, at=ago(2))).status_code == 200
        assert http.post("/things/b", headers=auth("u-import", "importer", at=ago(700))).status_code == 200
        assert http.post("/things/c", headers=auth(*ADMIN, at=ago(3650))).status_code == 200
        malformed = http.post("/things/d", headers=auth(*ADMIN, at="last Tuesday"))
        assert malformed.status_code == 422 and "X-Occurred-At" in malformed.json()["detail"]


def test_an_activity_is_scheduled_back_dated_with_its_due_time_judged_then(apps: dict[str, TestClient]) -> None:
    http = apps["agenda"]
    lan = auth(*LAN, team="north")
    body = {"kind": "phone", "subject_type": "deal", "subject_id": str(DEAL), "title": "gọi lại", "due_at": ago(1)}
    assert problem(http.post("/activities", json=body, headers=lan | {"X-Occurred-At": ago(8)})) == (
        403,
        "backdate_limit",
    )
    early = http.post("/activities", json=body | {"due_at": ago(3)}, headers=lan | {"X-Occurred-At": ago(2)})
    assert problem(early) == (422, "due_in_the_past")
    r = http.post("/activities", json=body, headers=lan | {"X-Occurred-At": ago(2)})  # due yesterday, booked before
    assert r.status_code == 201, r.text
    (scheduled,) = history(http, f"/activities/{r.json()['id']}", lan)
    assert occurred(scheduled) == NOW - timedelta(days=2)


def test_pipelines_history_of_an_activity_shows_when_it_happened_and_when_it_was_recorded(
    apps: dict[str, TestClient],
) -> None:
    """``pipelines history activity ID`` (tools.history) against the agenda's API, its requests sent to the app."""
    lan = auth(*LAN, team="north")
    body = {"kind": "phone", "subject_type": "deal", "subject_id": str(DEAL), "title": "gọi lại", "due_at": ago(1)}
    r = apps["agenda"].post("/activities", json=body, headers=lan | {"X-Occurred-At": ago(2)})
    assert r.status_code == 201, r.text

    def send(request: httpx.Request) -> httpx.Response:
        answer = apps["agenda"].request(request.method, request.url.raw_path.decode(), headers=request.headers)
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    settings = operator_settings(Settings())
    activity = uuid.UUID(r.json()["id"])
    got = asyncio.run(histories.history(settings, "activity", activity, None, transport=httpx.MockTransport(send)))
    (scheduled,) = got.events
    assert scheduled.event_type == "pipelines.agenda.ActivityScheduled"
    assert scheduled.occurred_at == NOW - timedelta(days=2)
    assert scheduled.recorded_at > NOW, "recorded when it was entered"
    assert got.state is not None and got.state["title"] == "gọi lại"
