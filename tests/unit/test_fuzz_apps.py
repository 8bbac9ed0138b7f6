"""schemathesis over the APIs the real-service run does not build (tests/integration/test_api_fuzz.py fuzzes the five
services on PostgreSQL and Kafka): the sign-in service and the board, in memory, and any app testkit.apps adds.

As every caller of testkit.fuzz.CALLERS (each role, and none), valid and invalid requests to every operation, then
scenarios chaining them: no 5xx (but the documented 503 of an in-memory app without read models or a dependency), and
every answer's status, content type and body as the OpenAPI document says. ``make fuzz`` runs it longer.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient

from testkit import fuzz
from testkit.apps import apps

pytestmark = pytest.mark.slow

IN_MEMORY = sorted(set(apps()) - set(fuzz.REAL))


def test_every_api_is_fuzzed_here_or_on_the_real_services() -> None:
    assert set(fuzz.REAL) <= set(apps())
    assert {"signin", "web"} <= set(IN_MEMORY)


@pytest.mark.parametrize("name", IN_MEMORY)
def test_generated_requests_get_documented_answers_and_no_5xx(name: str) -> None:
    app = apps()[name]
    schema = schemathesis.openapi.from_dict(app.openapi(), config=schemathesis.Config())
    with TestClient(app, base_url="http://api", raise_server_exceptions=False) as http:

        def send(request: dict[str, object]) -> object:
            return http.request(**request)

        operations = fuzz.every_operation(schema, send, fuzz.IN_MEMORY_CHECKS)
        chains = fuzz.scenarios(schema, send, fuzz.IN_MEMORY_CHECKS)
    print(f"{name}: operations {operations.summary()}; scenarios {chains.summary()}")
    assert operations.sent >= sum(len(ops) for ops in app.openapi()["paths"].values())  # each at least once
    assert operations.failures + chains.failures == [], "\n\n".join(operations.failures + chains.failures)


def test_each_request_carries_its_callers_credential_whatever_schemathesis_made_of_it() -> None:
    """A finding of the first scenarios: schemathesis fills the bearer scheme itself (a random token, or none for its
    "missing auth" cases), and a third of the steps went out without the caller's token."""
    schema = schemathesis.openapi.from_dict(apps()["deals"].openapi(), config=schemathesis.Config())
    op = next(r.ok() for r in schema.get_all_operations() if r.ok().label == "GET /follow-ups")
    case = op.Case(headers={"Authorization": "Bearer )]L"})
    admin = fuzz.CALLERS[0][1]
    assert fuzz.request_of(case, admin)["headers"]["Authorization"] == admin["Authorization"]
    assert not {k.lower() for k in fuzz.request_of(case, {})["headers"]} & {"authorization"}
