"""Limits on request and payload sizes, on every service's real API (in-process, real PostgreSQL).

A body over PIPELINES_MAX_BODY_BYTES answers 413 with a JSON error before it is parsed, whether its
Content-Length says so or it comes in chunks without one, on commands and webhooks alike; nothing is stored.
A body under the limit whose fields are too large (a 100 kB deal title, 10,000 lines, a 5,000-character reason)
answers 422 naming the field.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.agenda.main import build as build_agenda
from services.deals.main import build as build_deals
from services.directory.main import build as build_directory
from services.leads.main import build as build_leads
from services.production.main import build as build_production
from shared.edge.service import ServiceCore
from shared.ops.stack import Endpoints
from testkit.services import bearer, client_for, drop_everything, isolated_settings

pytestmark = [pytest.mark.pg]

LIMIT = 900_000  # not the default (1 MiB): the setting is what counts
ADMIN = bearer("u-admin", "admin")
# A command route of each API, with a valid body to pad.
ROUTES: dict[str, tuple[str, dict[str, Any]]] = {
    "deals": ("/deals", {"title": "Tủ đông", "customer": "Bình An", "owner_id": "u-lan"}),
    "leads": ("/leads", {"source": "manual", "contact": {"phone": "0905123456"}}),
    "production": (
        "/orders",
        {"customer": "Bình An", "lines": [{"product": "A", "quantity": "1"}], "due_date": "2027-01-10"},
    ),
    "directory": ("/teams", {"team_id": "north", "name": "Miền Bắc"}),
    "agenda": (
        "/activities",
        {
            "kind": "meeting",
            "subject_type": "deal",
            "subject_id": str(uuid.UUID(int=25)),
            "title": "Gặp chị Yến",
            "due_at": "2030-01-02T09:00:00+07:00",
        },
    ),
}
# what a body at the limit answers: taken; the agenda's names a deal its replica has not (no projector runs here),
# so its 422 naming ``subject_id`` shows the body was read and parsed, and nothing is stored
AT_LIMIT = {"agenda": 422}


@pytest.fixture(scope="module")
async def cores(endpoints: Endpoints) -> AsyncIterator[dict[str, ServiceCore]]:
    settings = isolated_settings(endpoints).model_copy(update={"max_body_bytes": LIMIT})
    built = {"deals": await build_deals(settings), "leads": await build_leads(settings)}
    built["production"] = await build_production(settings)
    built["directory"] = await build_directory(settings)
    built["agenda"] = await build_agenda(settings)
    for runner in built["agenda"].runners():  # its commands read its replicas: their tables, as its api makes them
        await runner.setup()
    try:
        yield built
    finally:
        for core in built.values():
            await core.close()
        await drop_everything(settings)


def padded(body: dict[str, Any], size: int) -> bytes:
    """The body as JSON, padded to ``size`` bytes with spaces (still valid JSON)."""
    raw = json.dumps(body).encode()
    return raw + b" " * (size - len(raw))


async def stored_events(core: ServiceCore) -> int:
    async with core.storage.pool.acquire() as conn:
        return int(await conn.fetchval(f"SELECT count(*) FROM {core.storage.store.schema}.events"))


@pytest.mark.parametrize("service", list(ROUTES))
async def test_a_body_over_the_limit_answers_413_before_it_is_parsed(
    cores: dict[str, ServiceCore], service: str
) -> None:
    path, body = ROUTES[service]
    before = await stored_events(cores[service])
    async with client_for(cores[service].app()) as http:
        headers = ADMIN | {"Content-Type": "application/json"}
        r = await http.post(path, headers=headers, content=padded(body, LIMIT + 1))
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json() | {"instance": None} == {
            "type": "urn:pipelines:problem:body_too_large",
            "title": "Body too large",
            "status": 413,
            "detail": f"the request body is larger than {LIMIT} bytes",
            "rule": "body_too_large",
            "instance": None,
        }
        assert r.headers["x-correlation-id"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it is read
            data = padded(body, LIMIT + 1)
            for i in range(0, len(data), 64 * 1024):
                yield data[i : i + 64 * 1024]

        r = await http.post(path, headers=headers, content=chunks())
        assert r.status_code == 413, r.text
        assert "larger than" in r.json()["detail"]

        r = await http.post(path, headers=headers, content=padded(body, LIMIT))  # at the limit: taken
        assert r.status_code == AT_LIMIT.get(service, 201), r.text
        if r.status_code == 422:
            assert [e["loc"] for e in r.json()["errors"]] == [["body", "subject_id"]], r.text
    assert await stored_events(cores[service]) == before + (r.status_code == 201)


async def test_a_webhook_body_over_the_limit_answers_413(cores: dict[str, ServiceCore]) -> None:
    async with client_for(cores["leads"].app()) as http:
        r = await http.post("/webhooks/website", content=b"{" + b" " * LIMIT + b"}")
        assert r.status_code == 413, r.text
        assert r.json()["detail"] == f"the request body is larger than {LIMIT} bytes"


def field_errors(r: httpx.Response) -> list[tuple[Any, ...]]:
    assert r.status_code == 422, r.text
    return [tuple(e["loc"]) for e in r.json()["errors"]]


async def test_oversized_fields_answer_422_naming_the_field(cores: dict[str, ServiceCore]) -> None:
    line = {"product": "Tủ đông", "quantity": "1", "unit_price": {"amount": "1000"}}
    deal = ROUTES["deals"][1]
    async with client_for(cores["deals"].app()) as http:
        r = await http.post("/deals", headers=ADMIN, json=deal | {"title": "T" * 100_000})
        assert ("body", "title") in field_errors(r)
        r = await http.post("/deals", headers=ADMIN, json=deal | {"lines": [line] * 10_000})
        assert ("body", "lines") in field_errors(r)
        r = await http.post("/deals", headers=ADMIN, json=deal | {"team_id": "t" * 5000})
        assert ("body", "team_id") in field_errors(r)
        r = await http.post(f"/deals/{uuid.uuid4()}/move-stage", headers=ADMIN, json={"stage_id": "s" * 5000})
        assert ("body", "stage_id") in field_errors(r)

    order = ROUTES["production"][1]
    async with client_for(cores["production"].app()) as http:
        r = await http.post(
            "/orders", headers=ADMIN, json=order | {"lines": [{"product": "A", "quantity": "1"}] * 10_000}
        )
        assert ("body", "lines") in field_errors(r)
        r = await http.post(
            f"/orders/{uuid.uuid4()}/plan",
            headers=ADMIN,
            json={"planned_start": "2026-12-01", "planned_end": "2026-12-10", "work_centre": "w" * 5000},
        )
        assert ("body", "work_centre") in field_errors(r)

    async with client_for(cores["leads"].app()) as http:
        r = await http.post(f"/leads/{uuid.uuid4()}/stop-nurture", headers=ADMIN, json={"reason": "r" * 5000})
        assert ("body", "reason") in field_errors(r)
        r = await http.post(f"/leads/{uuid.uuid4()}/segment", headers=ADMIN, json={"segments": ["smb"] * 1000})
        assert ("body", "segments") in field_errors(r)

    user = {"user_id": "u-1", "name": "Lan", "email": "lan@pipelines.vn", "team_id": "north"}
    async with client_for(cores["directory"].app()) as http:
        r = await http.post("/users", headers=ADMIN, json=user | {"name": "N" * 100_000})
        assert ("body", "name") in field_errors(r)
        r = await http.post("/users", headers=ADMIN, json=user | {"roles": ["sales"] * 10_000})
        assert ("body", "roles") in field_errors(r)
        r = await http.post("/users/u-1/deactivate", headers=ADMIN, json={"handed_to": "u-2", "reason": "r" * 5000})
        assert ("body", "reason") in field_errors(r)

    activity = ROUTES["agenda"][1]
    async with client_for(cores["agenda"].app()) as http:
        r = await http.post("/activities", headers=ADMIN, json=activity | {"title": "T" * 100_000})
        assert ("body", "title") in field_errors(r)
        r = await http.post("/activities", headers=ADMIN, json=activity | {"notes": "N" * 100_000})
        assert ("body", "notes") in field_errors(r)
        r = await http.post("/activities", headers=ADMIN, json=activity | {"duration_minutes": 10**9})
        assert ("body", "duration_minutes") in field_errors(r)
        r = await http.post(f"/activities/{uuid.uuid4()}/cancel", headers=ADMIN, json={"reason": "r" * 5000})
        assert ("body", "reason") in field_errors(r)


async def test_text_with_a_nul_character_answers_422_and_stores_nothing(cores: dict[str, ServiceCore]) -> None:
    """PostgreSQL cannot store NUL in text or jsonb: a body string with one is bad input (a query parameter with
    one, e.g. GET /leads?status=%00, is answered the same way: the same handler)."""
    deals = cores["deals"]
    before = await stored_events(deals)
    async with client_for(deals.app()) as http:
        body = {"title": "Tủ\x00 mát", "customer": "An", "owner_id": "u-admin"}
        r = await http.post("/deals", json=body, headers=ADMIN)
        assert (r.status_code, r.json()["rule"]) == (422, "invalid_text"), r.text
    assert await stored_events(deals) == before
