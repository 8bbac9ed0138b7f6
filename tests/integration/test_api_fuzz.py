"""schemathesis against every service's OpenAPI, in-process on the real PostgreSQL and Kafka, as callers of every role.

testkit.fuzz's two phases (decision 0029): for each operation a bounded number of generated requests, valid and
invalid (seeded: the same cases every run), each as the next caller (admin, sales, managers, marketing,
production, auditor, importer, nobody); then scenarios chaining operations by the links schemathesis infers (an id
a command answers, taken by the routes that read it). Each answer is checked by schemathesis: no 5xx, the status
documented for the operation, the content type and the body matching what the OpenAPI says of that status. The
fuzzing runs in a worker thread (Hypothesis is synchronous); each request is sent through the app's ASGI transport
on the test's event loop, where the service's database pool lives. The sign-in service, the board and any other
app of testkit.apps are fuzzed in memory (tests/unit/test_fuzz_apps.py).

Generated requests do not reach what an attack on 0eb7972 answered 500 (issue 20, item 7): a lone surrogate in a JSON
body (Hypothesis makes no surrogates), integers and dates past what PostgreSQL and Python hold, fields of the wrong
JSON type in the webhooks' payloads. Those are sent as written (``ATTACKS``), to the same apps on the same stores:
each is answered 4xx, none reaches the database to fail there.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import schemathesis
from pydantic import SecretStr

from services.agenda.main import build as build_agenda
from services.deals.main import build as build_deals
from services.directory.main import build as build_directory
from services.leads.main import build as build_leads
from services.production.main import build as build_production
from shared.edge.service import ServiceCore
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints
from testkit import fuzz
from testkit.services import bearer, drop_everything, isolated_settings, start_parts

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.slow]

ADMIN = bearer("u-admin", "admin")
WEBHOOK_SECRETS = {
    name: SecretStr("w" * 32)
    for name in ("website_form_secret", "ladipage_token", "facebook_app_secret", "facebook_verify_token")
} | {"google_ads_webhook_key": SecretStr("g" * 32)}
BUILD: dict[str, Callable[[Settings], Awaitable[ServiceCore]]] = {
    "leads": build_leads,
    "deals": build_deals,
    "production": build_production,
    "directory": build_directory,
    "agenda": build_agenda,
}


@pytest.fixture(scope="module")
async def cores(endpoints: Endpoints) -> AsyncIterator[dict[str, ServiceCore]]:
    settings = isolated_settings(endpoints).model_copy(update=WEBHOOK_SECRETS)  # configured: no 503 for that
    built = {name: await build(settings) for name, build in BUILD.items()}
    stop = asyncio.Event()
    tasks = []
    for core in built.values():
        await core.ensure_topics()
        tasks += await start_parts(core, stop)
    try:
        yield built
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for core in built.values():
            await core.close()
        await drop_everything(settings)


def test_the_real_run_builds_what_testkit_fuzz_says() -> None:
    assert set(BUILD) == set(fuzz.REAL)


@pytest.mark.parametrize("service", list(BUILD))
async def test_generated_requests_get_documented_answers_and_no_5xx(
    cores: dict[str, ServiceCore], service: str
) -> None:
    app = cores[service].app()
    errors: list[str] = []

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except Exception:
            errors.append(traceback.format_exc(limit=-8))
            raise

    # an exception the app lets out becomes the 500 a server would answer, for schemathesis to report
    transport = httpx.ASGITransport(app=recording, raise_app_exceptions=False)
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        openapi = (await http.get("/openapi.json")).json()
        schema = schemathesis.openapi.from_dict(openapi, config=schemathesis.Config())

        def send(request: dict[str, Any]) -> httpx.Response:  # from the fuzzing thread, on the test's loop
            response = asyncio.run_coroutine_threadsafe(http.request(**request), loop).result()
            if response.status_code >= 500 and errors:
                print(f"{request['method']} {request['url']}: {errors[-1]}")
            return response

        started = time.monotonic()
        operations = await asyncio.to_thread(fuzz.every_operation, schema, send)
        chains = await asyncio.to_thread(fuzz.scenarios, schema, send)
        took = time.monotonic() - started
    print(f"{service}: operations {operations.summary()}; scenarios {chains.summary()}; {took:.1f} s")
    assert operations.sent > 50
    assert operations.failures + chains.failures == [], "\n\n".join(operations.failures + chains.failures)


def cursor(offset: str) -> str:
    return base64.urlsafe_b64encode(f'{{"o": {offset}}}'.encode()).decode().rstrip("=")


def json_body(value: Any) -> dict[str, Any]:
    """``value`` as a JSON body, a lone surrogate written as its escape (``"X\\ud800"``)."""
    return {"content": json.dumps(value).encode(), "headers": {"content-type": "application/json"}}


def website(value: Any) -> dict[str, Any]:
    body = json.dumps(value).encode()
    signature = "sha256=" + hmac.new(b"w" * 32, body, hashlib.sha256).hexdigest()
    return {"content": body, "headers": {"x-pipelines-signature": signature}}


LONE = "X\ud800"
FAR = "0001-01-01T00:00:00+14:00"
GOOGLE = {"google_key": "g" * 32, "lead_id": "g-1"}
SOME = uuid.UUID(int=7)
ACTIVITY = {
    "kind": "phone",
    "subject_type": "deal",
    "subject_id": str(SOME),
    "title": "Gọi",
    "due_at": "2030-01-02T09:00:00Z",
}
ATTACKS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "leads": [
        ("POST", "/leads", json_body({"source": "manual", "contact": {"name": LONE}})),
        ("POST", "/leads", json_body({"source": "manual", "answers": {"q": LONE}})),
        ("POST", "/leads", json_body({"source": "manual", "raw_payload": {LONE: [LONE]}})),
        ("POST", "/leads", json_body({"source": "manual", "captured_at": FAR})),
        ("GET", "/leads", {"params": {"cursor": cursor(str(2**63))}}),
        ("GET", "/leads", {"params": {"cursor": cursor("Infinity")}}),
        ("GET", "/leads", {"params": {"cursor": cursor("1e400")}}),
        ("GET", "/leads", {"params": {"position": 2**63}}),
        ("GET", "/funnel", {"params": {"from": "0001-01-01", "to": "2026-01-01"}}),
        ("GET", "/campaigns", {"params": {"from": "2026-01-01", "to": "9999-12-31"}}),
        ("PUT", f"/campaigns/{SOME}/spend/0", {"json": {"amount": {"amount": "1", "currency": "VND"}}}),
        ("POST", "/webhooks/google-ads", {"content": b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"}),
        ("POST", "/webhooks/google-ads", json_body(GOOGLE | {"user_column_data": 5})),
        ("POST", "/webhooks/google-ads", json_body(GOOGLE | {"user_column_data": [{"column_name": 5}]})),
        ("POST", "/webhooks/google-ads", json_body(GOOGLE | {"user_column_data": [{"string_value": {"a": 1}}]})),
        ("POST", "/webhooks/google-ads", json_body(GOOGLE | {"lead_id": {"a": 1}})),
        ("POST", "/webhooks/website", website({"submission_id": "s-1", "email": "a@b.vn", LONE: "x"})),
        ("POST", "/webhooks/website", website({"submission_id": {"a": 1}, "email": "a@b.vn"})),
        (
            "POST",
            "/webhooks/ladipage",
            {"params": {"token": "w" * 32}, **json_body({"phone": "0912345678", "id": [1]})},
        ),
    ],
    "deals": [
        ("POST", "/deals", json_body({"title": LONE, "customer": "A", "owner_id": "u-admin"})),
        ("GET", "/deals", {"params": {"cursor": cursor(str(2**63))}}),
        ("GET", "/deals", {"params": {"cursor": cursor("-Infinity")}}),
        ("GET", f"/deals/{SOME}/state", {"params": {"version": 2**31}}),
        ("GET", f"/deals/{SOME}/state", {"params": {"at": FAR}}),
        ("GET", "/forecast", {"params": {"as_of": FAR}}),
        ("GET", "/forecast/changes", {"params": {"since": FAR}}),
        ("GET", "/analytics/stages", {"params": {"from": "0001-01-01", "to": "2026-01-01"}}),
        ("GET", "/analytics/lost-reasons", {"params": {"from": "2026-01-01", "to": "9999-12-31"}}),
    ],
    "production": [
        ("POST", "/orders", json_body({"customer": LONE, "lines": [{"product": "A", "quantity": "1"}]})),
        ("GET", "/orders", {"params": {"cursor": cursor(str(2**63))}}),
        ("GET", "/orders", {"params": {"position": 2**63}}),
        ("GET", "/analytics/cycle-times", {"params": {"from": "0001-01-01", "to": "2026-01-01"}}),
        ("GET", "/analytics/delivery", {"params": {"from": "2026-01-01", "to": "9999-12-31"}}),
    ],
    "directory": [
        ("POST", "/teams", json_body({"team_id": "north", "name": LONE})),
        ("POST", "/users", json_body({"user_id": "u-1", "name": LONE, "email": "a@b.vn", "team_id": "north"})),
        ("POST", "/users", json_body({"user_id": LONE, "name": "A", "email": "a@b.vn", "team_id": "north"})),
        (
            "POST",
            "/users",
            json_body({"user_id": "u-1", "name": "A", "email": "a@b.vn", "team_id": "north", "roles": [{"a": 1}]}),
        ),
        (
            "POST",
            "/users",
            json_body(
                {"user_id": "u-1", "name": "A", "email": "a@b.vn", "team_id": "north", "time_zone": "../../etc/passwd"}
            ),
        ),
        ("GET", "/users", {"params": {"cursor": cursor(str(2**63))}}),
        ("GET", "/users", {"params": {"cursor": cursor("Infinity")}}),
        ("GET", "/users", {"params": {"position": 2**63}}),
        ("GET", "/teams", {"params": {"cursor": cursor("1e400")}}),
        ("GET", "/users/u-1/history", {"params": {"cursor": cursor(str(2**63))}}),
    ],
    "agenda": [
        ("POST", "/activities", json_body(ACTIVITY | {"title": LONE})),
        ("POST", "/activities", json_body(ACTIVITY | {"notes": LONE})),
        ("POST", "/activities", json_body(ACTIVITY | {"due_at": FAR})),
        ("POST", "/activities", json_body(ACTIVITY | {"due_at": "9999-12-31T23:59:59-14:00"})),
        ("POST", "/activities", json_body(ACTIVITY | {"subject_id": {"a": 1}})),
        ("POST", f"/activities/{SOME}/reschedule", json_body({"due_at": FAR})),
        ("POST", f"/activities/{SOME}/complete", json_body({"outcome": LONE})),
        ("GET", "/activities", {"params": {"cursor": cursor(str(2**63))}}),
        ("GET", "/activities", {"params": {"cursor": cursor("Infinity")}}),
        ("GET", "/activities", {"params": {"position": 2**63}}),
        ("GET", "/activities", {"params": {"due_from": FAR, "due_to": "9999-12-31T23:59:59-14:00"}}),
        ("GET", "/agenda", {"params": {"owner_id": "u-1", "days": 2**31}}),
        ("GET", f"/activities/{SOME}/history", {"params": {"cursor": cursor("1e400")}}),
    ],
}


@pytest.mark.parametrize("service", list(BUILD))
async def test_what_an_attack_answered_500_is_answered_4xx(cores: dict[str, ServiceCore], service: str) -> None:
    app = cores[service].app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        answered = []
        for method, url, kwargs in ATTACKS[service]:
            headers = ADMIN | kwargs.pop("headers", {})
            r = await http.request(method, url, headers=headers, **kwargs)
            answered.append((method, url, r.status_code, r.text[:300]))
    wrong = [a for a in answered if not 400 <= a[2] < 500]
    assert wrong == [], "\n".join(map(str, wrong))
