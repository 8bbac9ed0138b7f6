"""schemathesis against every service's OpenAPI, in-process on the real PostgreSQL and Kafka, as admin.

For each operation a bounded number of generated requests, valid and invalid (seeded: the same cases every run),
each checked by schemathesis: no 5xx, the status documented for the operation, the content type and the body
matching what the OpenAPI says of that status. Cases are drawn first (Hypothesis is synchronous) and then sent
through the app's ASGI transport on the test's event loop, where the service's database pool lives.

Generated requests do not reach what an attack on 0eb7972 answered 500 (issue 20, item 7): a lone surrogate in a JSON
body (Hypothesis makes no surrogates), integers and dates past what PostgreSQL and Python hold, fields of the wrong
JSON type in the webhooks' payloads. Those are sent as written (``ATTACKS``), to the same apps on the same stores:
each is answered 4xx, none reaches the database to fail there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.agenda.main import build as build_agenda
from services.deals.main import build as build_deals
from services.directory.main import build as build_directory
from services.leads.main import build as build_leads
from services.production.main import build as build_production
from shared.edge.service import ServiceCore
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints
from testkit.services import bearer, drop_everything, isolated_settings, start_parts

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.slow]

EXAMPLES = 6  # per operation and per mode (valid, invalid)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
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


def draw_cases(strategy: Any, n: int) -> list[schemathesis.Case]:
    """``n`` cases at most from the strategy, the same ones every run."""
    cases: list[schemathesis.Case] = []

    @hypothesis.settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: schemathesis.Case) -> None:
        cases.append(case)

    with contextlib.suppress(hypothesis.errors.Unsatisfiable):  # nothing to make invalid: no inputs
        collect()
    return cases


def request_of(case: schemathesis.Case) -> dict[str, Any]:
    """The generated request as httpx arguments (schemathesis serializes for requests)."""
    kw = case.as_transport_kwargs(base_url="http://api", headers=ADMIN)
    out: dict[str, Any] = {k: kw[k] for k in ("method", "url", "headers", "params") if kw.get(k) is not None}
    if "json" in kw:
        out["json"] = kw["json"]
    elif isinstance(kw.get("data"), bytes | str):
        out["content"] = kw["data"]
    elif kw.get("data") is not None:
        out["data"] = kw["data"]
    return out


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
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        openapi = (await http.get("/openapi.json")).json()
        schema = schemathesis.openapi.from_dict(openapi, config=schemathesis.Config())
        failures: list[str] = []
        sent = 0
        started = time.monotonic()
        for result in schema.get_all_operations():
            op = result.ok()
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
                for case in draw_cases(op.as_strategy(generation_mode=mode), EXAMPLES):
                    response = await http.request(**request_of(case))
                    sent += 1
                    try:
                        case.validate_response(response, checks=CHECKS)
                    except FailureGroup as exc:
                        cause = f"\n{errors[-1]}" if errors and response.status_code >= 500 else ""
                        failures.append(f"{op.label} {mode.value}: {str(exc)[:1500]}{cause}")
        print(f"{service}: {sent} requests in {time.monotonic() - started:.1f} s")
    assert sent > 100
    assert failures == [], "\n\n".join(failures)


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
