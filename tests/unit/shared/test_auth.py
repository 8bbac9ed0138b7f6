"""Bearer tokens: who gets in, with which roles; every refusal is a clear 401 or 403."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from shared.auth import InvalidTokenError, Principal, TokenVerifier, current_principal, issue_token, require
from shared.settings import Settings, SettingsError

OLD, NEW = b"o" * 32, b"n" * 32


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier({"2026-01": OLD, "2026-06": NEW}, issuer="pipelines", audience="pipelines")

    @app.get("/me")
    async def me(p: Annotated[Principal, Depends(current_principal)]) -> dict:
        return {"user": p.user_id, "roles": sorted(p.roles), "team": p.team}

    @app.post("/deals", dependencies=[Depends(require("sales", "sales_manager"))])
    async def open_deal() -> dict:
        return {"ok": True}

    return TestClient(app)


def token(kid: str = "2026-06", secret: bytes = NEW, **kw) -> dict[str, str]:
    args = {"user_id": "u-1", "roles": ["sales"], "team": "north"} | kw
    return {"Authorization": f"Bearer {issue_token(key_id=kid, secret=secret, **args)}"}


def test_valid_token_carries_user_roles_and_team(client: TestClient) -> None:
    r = client.get("/me", headers=token())
    assert r.status_code == 200
    assert r.json() == {"user": "u-1", "roles": ["sales"], "team": "north"}


def test_a_token_signed_with_the_previous_key_still_works_during_rotation(client: TestClient) -> None:
    assert client.get("/me", headers=token(kid="2026-01", secret=OLD)).status_code == 200


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "bearer token required"),
        ({"Authorization": "Bearer not-a-jwt"}, "malformed token"),
        (token(kid="2025-01"), "unknown key id"),
        (token(secret=OLD), "Signature verification failed"),
        (token(now=datetime.now(UTC) - timedelta(hours=3)), "expired"),
        (token(audience="someone-else"), "Audience doesn't match"),
        (token(issuer="evil"), "Invalid issuer"),
    ],
)
def test_refused_tokens_get_401_with_the_reason(client: TestClient, headers: dict, reason: str) -> None:
    r = client.get("/me", headers=headers)
    assert r.status_code == 401
    assert reason in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_role_checks_give_403_and_admin_passes(client: TestClient) -> None:
    assert client.post("/deals", headers=token(roles=["sales"])).status_code == 200
    r = client.post("/deals", headers=token(roles=["marketing", "auditor"]))
    assert r.status_code == 403
    assert "sales_manager" in r.json()["detail"]
    assert client.post("/deals", headers=token(roles=["admin"])).status_code == 200


def test_unknown_roles_are_refused_when_issuing_and_when_verifying() -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        issue_token(key_id="k", secret=NEW, user_id="u", roles=["wizard"])
    with pytest.raises(ValueError, match="unknown roles"):
        require("wizard")


def test_verifier_from_settings_needs_long_enough_keys() -> None:
    settings = Settings(jwt_keys='{"k1": "short"}')
    with pytest.raises(SettingsError, match="shorter than 32 bytes"):
        TokenVerifier.from_settings(settings)
    with pytest.raises(SettingsError, match="PIPELINES_JWT_KEYS"):
        TokenVerifier.from_settings(Settings(jwt_keys="{}"))
    verifier = TokenVerifier.from_settings(Settings(jwt_keys='{"k1": "' + "x" * 40 + '"}'))
    principal = verifier.verify(issue_token(key_id="k1", secret=b"x" * 40, user_id="u-9", roles=["auditor"]))
    assert principal == Principal("u-9", frozenset({"auditor"}))


def test_a_verified_token_is_remembered_until_it_expires() -> None:
    verifier = TokenVerifier({"k": NEW}, issuer="pipelines", audience="pipelines", leeway_s=0)
    good = issue_token(key_id="k", secret=NEW, user_id="u-1", roles=["sales"], ttl=timedelta(seconds=2))
    assert verifier.verify(good).user_id == "u-1"
    assert verifier.verify(good).user_id == "u-1"  # remembered
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    with pytest.raises(InvalidTokenError):  # another token string is verified on its own
        verifier.verify(forged)
    time.sleep(2.1)
    with pytest.raises(InvalidTokenError, match="expired"):  # remembered, but not past its expiry
        verifier.verify(good)
