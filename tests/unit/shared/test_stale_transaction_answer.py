"""A command whose transaction the store refused for its age (``StaleTransactionError``: it wrote something else
first and a younger transaction wrote the stream meanwhile) is answered 409 ``conflict`` as a lost race is, a
problem saying nothing was written, never a 500."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared.edge.problems import install_problem_handlers
from shared.store import StaleTransactionError


def test_a_stale_transaction_is_a_409_conflict() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/deals/{deal_id}/move")
    async def move(deal_id: str) -> None:
        raise StaleTransactionError(f"deal-{deal_id}")

    r = TestClient(app, raise_server_exceptions=False).post("/deals/d1/move")
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("conflict") or body.get("rule") == "conflict", body
    assert "nothing was written" in body["detail"] and "deal-d1" in body["detail"], body
