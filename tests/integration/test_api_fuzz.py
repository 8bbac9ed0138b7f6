"""schemathesis against every service's OpenAPI, in-process on the real PostgreSQL and Kafka, as admin.

For each operation a bounded number of generated requests, valid and invalid (seeded: the same cases every run),
each checked by schemathesis: no 5xx, the status documented for the operation, the content type and the body
matching what the OpenAPI says of that status. Cases are drawn first (Hypothesis is synchronous) and then sent
through the app's ASGI transport on the test's event loop, where the service's database pool lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
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

from services.deals.main import build as build_deals
from services.leads.main import build as build_leads
from services.production.main import build as build_production
from shared.service import ServiceCore
from shared.settings import Settings
from shared.stack import Endpoints
from tests.support.services import bearer, drop_everything, isolated_settings, start_parts

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
