"""The command routes' fast path (decision 0033) answers every request exactly as the route FastAPI built does.

The same requests go to two deals apps on their own in-memory stores, one with the fast path and one without; each
answer (status, the headers a client reads, the body with the app's own ids replaced) must be the same. The fast
path must take the plain commands (else the comparison proves nothing) and hand the others to the routes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared.edge.auth import issue_token
from shared.edge.fastpath import FastPath
from testkit.apps import apps
from testkit.services import TEST_KEYS

ACTIVITY = {"activity_type": "call", "channel": "phone", "outcome": "asked for a quote", "duration_minutes": 5}
HEADERS_READ = ("content-type", "etag", "location", "www-authenticate", "idempotent-replayed", "retry-after")


def token(user: str, *roles: str, team: str | None = "north") -> str:
    return issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)


LAN, BINH = token("u-lan", "sales"), token("u-binh", "sales")
MARKETING, MANAGER = token("u-mkt", "marketing"), token("u-mai", "sales_manager")
DEAL = {"title": "Tủ mát", "customer": "Cửa hàng Hòa", "owner_id": "u-lan", "team_id": "north"}


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


# (name, path after /deals/{deal}, headers, body: a dict sent as JSON or raw bytes)
CASES: list[tuple[str, str, dict[str, str], Any]] = [
    ("plain", "log-activity", bearer(LAN), ACTIVITY),
    ("again", "log-activity", bearer(LAN), ACTIVITY),
    ("manager of the team", "log-activity", bearer(MANAGER), ACTIVITY),
    ("no token", "log-activity", {}, ACTIVITY),
    ("bad token", "log-activity", bearer("not.a.token"), ACTIVITY),
    ("lowercase scheme", "log-activity", {"Authorization": f"bearer {LAN}"}, ACTIVITY),
    ("role without the right", "log-activity", bearer(MARKETING), ACTIVITY),
    ("another salesperson's deal", "log-activity", bearer(BINH), ACTIVITY),
    ("missing field", "log-activity", bearer(LAN), {"channel": "phone"}),
    ("wrong type", "log-activity", bearer(LAN), ACTIVITY | {"duration_minutes": "long"}),
    ("out of bounds", "log-activity", bearer(LAN), ACTIVITY | {"duration_minutes": 100_000}),
    ("extra field", "log-activity", bearer(LAN), ACTIVITY | {"nonsense": 1}),
    ("not JSON", "log-activity", bearer(LAN), b"{not json"),
    ("empty body", "log-activity", bearer(LAN), b""),
    ("a JSON list", "log-activity", bearer(LAN), b"[1, 2]"),
    ("nested past the parser", "log-activity", bearer(LAN), b"[" * 50_000 + b"]" * 50_000),
    ("text content type", "log-activity", bearer(LAN) | {"Content-Type": "text/plain"}, json.dumps(ACTIVITY).encode()),
    ("If-Match right", "log-activity", bearer(LAN) | {"If-Match": '"5"'}, ACTIVITY),
    ("If-Match wrong", "log-activity", bearer(LAN) | {"If-Match": '"1"'}, ACTIVITY),
    ("Idempotency-Key", "log-activity", bearer(LAN) | {"Idempotency-Key": "k-1"}, ACTIVITY),
    ("Idempotency-Key replayed", "log-activity", bearer(LAN) | {"Idempotency-Key": "k-1"}, ACTIVITY),
    ("X-Occurred-At", "log-activity", bearer(LAN) | {"X-Occurred-At": "2026-11-24T09:30:00+07:00"}, ACTIVITY),
    ("X-Occurred-At too early", "log-activity", bearer(LAN) | {"X-Occurred-At": "2026-11-01T09:00:00+07:00"}, ACTIVITY),
    ("X-Correlation-ID", "log-activity", bearer(LAN) | {"X-Correlation-ID": "c-42"}, ACTIVITY),
    ("another command, invalid", "record-needs", bearer(LAN), {"needs": "two cold rooms"}),
    ("an unknown command", "fly-away", bearer(LAN), ACTIVITY),
    ("lost", "lose", bearer(LAN), {"reason": "price"}),
    ("lost again: the domain's answer", "lose", bearer(LAN), {"reason": "price"}),
    ("a lost deal's stage", "move-stage", bearer(LAN), {"stage_id": "proposal"}),
    ("reopened", "reopen", bearer(LAN), {"reason": "they called back"}),
]


def deals_app(fast: bool) -> FastAPI:
    app = apps()["deals"]
    app.state.command_fast_path = fast
    return app


def fast_path(app: FastAPI) -> FastPath:
    return next(r for r in app.router.routes if isinstance(r, FastPath))


def answer(client: TestClient, deal: str, path: str, headers: dict[str, str], body: Any) -> dict[str, Any]:
    url = f"/deals/{deal}/{path}"
    if isinstance(body, bytes):
        sent = client.post(url, content=body, headers={"Content-Type": "application/json"} | headers)
    else:
        sent = client.post(url, json=body, headers=headers)
    text = sent.text.replace(deal, "<deal>")
    given = {k: sent.headers.get(k, "").replace(deal, "<deal>") for k in HEADERS_READ}
    body_seen: Any = json.loads(text) if text and given["content-type"].endswith("json") else text
    if isinstance(body_seen, dict):
        body_seen.pop("instance", None)  # the request's own urn
    return {"status": sent.status_code, "headers": given, "body": body_seen}


def opened(client: TestClient) -> str:
    client.portal.call(client.app.state.deals.deals.ensure_default_pipeline)  # type: ignore[attr-defined]
    r = client.post("/deals", json=DEAL, headers=bearer(LAN))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_every_answer_is_the_routes_own() -> None:
    fast_app, slow_app = deals_app(True), deals_app(False)
    with TestClient(fast_app) as fast, TestClient(slow_app) as slow:
        deals = opened(fast), opened(slow)
        for name, path, headers, body in CASES:
            got = answer(fast, deals[0], path, headers, body)
            want = answer(slow, deals[1], path, headers, body)
            assert got == want, name
    assert fast_path(fast_app).taken >= 5  # the plain commands were its own
    assert fast_path(fast_app).declined >= 10  # the others went to the routes
    assert fast_path(slow_app).taken == fast_path(slow_app).declined == 0


def test_a_deal_id_not_in_canonical_form_is_left_to_the_route() -> None:
    app = deals_app(True)
    with TestClient(app) as client:
        deal = opened(client)
        upper = client.post(f"/deals/{deal.upper()}/log-activity", json=ACTIVITY, headers=bearer(LAN))
        unknown = client.post(f"/deals/{uuid.uuid4()}/log-activity", json=ACTIVITY, headers=bearer(LAN))
    assert upper.status_code == 200  # the route reads any UUID form; the fast path only the canonical one
    assert unknown.status_code == 404
    assert fast_path(app).taken == 1


@pytest.mark.parametrize("service", ["deals", "leads", "production", "agenda"])
def test_every_service_with_command_routes_has_the_fast_path_first(service: str) -> None:
    app = apps()[service]
    first = app.router.routes[0]
    assert isinstance(first, FastPath)
    assert first.patterns and all(commands for _, commands in first.patterns)


def test_a_traces_route_name_is_the_template_never_the_ids() -> None:
    from opentelemetry.instrumentation.fastapi import _get_route_details  # what names a request's server span

    app = deals_app(True)
    deal = str(uuid.uuid4())
    scope = {"type": "http", "method": "POST", "path": f"/deals/{deal}/log-activity", "app": app, "root_path": ""}
    assert _get_route_details(scope) == "/deals/{deal_id}/log-activity"
