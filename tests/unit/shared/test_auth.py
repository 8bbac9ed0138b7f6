"""Bearer tokens: who gets in, with which roles; every refusal is a clear 401 or 403."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from shared.edge.auth import InvalidTokenError, Principal, TokenVerifier, current_principal, issue_token, require
from shared.edge.keys import SigningKeys
from shared.edge.revocation import FORGET_AFTER_S, RevocationList, parse
from shared.ops.settings import Settings, SettingsError
from testkit.services import KEY_SETTINGS

OLD = SigningKeys.from_seeds({"2026-01": b"o" * 32})
NEW = SigningKeys.from_seeds({"2026-06": b"n" * 32})


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(OLD.public().union(NEW.public()), issuer="pipelines", audience="pipelines")

    @app.get("/me")
    async def me(p: Annotated[Principal, Depends(current_principal)]) -> dict:
        return {"user": p.user_id, "roles": sorted(p.roles), "team": p.team}

    @app.post("/deals", dependencies=[Depends(require("sales", "sales_manager"))])
    async def open_deal() -> dict:
        return {"ok": True}

    return TestClient(app)


def token(keys: SigningKeys = NEW, **kw) -> dict[str, str]:
    args = {"user_id": "u-1", "roles": ["sales"], "team": "north"} | kw
    return {"Authorization": f"Bearer {issue_token(keys, **args)}"}


def test_valid_token_carries_user_roles_and_team(client: TestClient) -> None:
    r = client.get("/me", headers=token())
    assert r.status_code == 200
    assert r.json() == {"user": "u-1", "roles": ["sales"], "team": "north"}


def test_a_token_signed_with_the_previous_key_still_works_during_rotation(client: TestClient) -> None:
    assert client.get("/me", headers=token(OLD)).status_code == 200


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "bearer token required"),
        ({"Authorization": "Bearer not-a-jwt"}, "malformed token"),
        (token(SigningKeys.from_seeds({"2025-01": b"n" * 32})), "unknown key id"),
        (token(SigningKeys.from_seeds({"2026-06": b"o" * 32})), "Signature verification failed"),
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
        issue_token(NEW, user_id="u", roles=["wizard"])
    with pytest.raises(ValueError, match="unknown roles"):
        require("wizard")


def test_verifier_from_settings_needs_public_keys_and_refuses_a_private_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_SETTINGS:  # a shell with `scripts/stack env` evaluated has them
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SettingsError, match="PIPELINES_JWT_PUBLIC_KEYS .* or PIPELINES_JWKS_URL"):
        TokenVerifier.from_settings(Settings(_env_file=None))
    leaked = NEW.jwks()
    leaked["keys"][0]["d"] = "bm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm4"
    with pytest.raises(SettingsError, match="private member"):
        TokenVerifier.from_settings(Settings(_env_file=None, jwt_public_keys=json.dumps(leaked)))
    verifier = TokenVerifier.from_settings(Settings(_env_file=None, jwt_public_keys=json.dumps(NEW.jwks())))
    principal = verifier.verify(issue_token(NEW, user_id="u-9", roles=["auditor"]))
    assert principal == Principal("u-9", frozenset({"auditor"}))
    assert len(TokenVerifier.from_settings(Settings(_env_file=None, jwks_url="http://127.0.0.1:9/jwks")).keys) == 0


def test_a_verified_token_is_remembered_until_it_expires() -> None:
    verifier = TokenVerifier(NEW.public(), issuer="pipelines", audience="pipelines", leeway_s=0)
    good = issue_token(NEW, user_id="u-1", roles=["sales"], ttl=timedelta(seconds=2))
    assert verifier.verify(good).user_id == "u-1"
    assert verifier.verify(good).user_id == "u-1"  # remembered
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    with pytest.raises(InvalidTokenError):  # another token string is verified on its own
        verifier.verify(forged)
    time.sleep(2.1)
    with pytest.raises(InvalidTokenError, match="expired"):  # remembered, but not past its expiry
        verifier.verify(good)


# Issue 20 item 8: bounds on what a token may claim, and revocation.


def signed(claims: dict[str, Any], keys: SigningKeys = NEW) -> str:
    """A token signed with a valid key whatever its claims (what an issuer that holds a key could make)."""
    now = int(time.time())
    base = {"sub": "u-1", "roles": ["sales"], "iss": "pipelines", "aud": "pipelines", "iat": now, "exp": now + 600}
    base |= {"jti": "t-" + uuid.uuid4().hex}
    return keys.sign({k: v for k, v in (base | claims).items() if v is not None})


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": str(int(time.time()) + 600)}, "exp must be a number"),
        ({"exp": True}, "exp must be a number"),  # True is 1 to PyJWT, and no number here
        ({"exp": str(int(time.time()) - 3600)}, "exp must be a number"),  # not "expired": the type comes first
        ({"iat": str(int(time.time()))}, "iat must be a number"),
        ({"nbf": str(int(time.time()))}, "nbf must be a number"),
        ({"exp": 1e20}, "longest token lifetime"),
        ({"exp": 1e20, "iat": None}, "longest token lifetime"),  # no iat: exp counts from now
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) + 86400 - 3600}, "exp - iat is longer"),
        ({"jti": None}, "Token is missing the 'jti' claim"),
        ({"jti": ""}, "jti must be a string of 1 to 128"),
        ({"jti": "x" * 129}, "jti must be a string of 1 to 128"),
        ({"jti": 7}, "JWT ID must be a string"),
        ({"sid": ""}, "sid must be a string of 1 to 128"),
        ({"sid": ["s"]}, "sid must be a string of 1 to 128"),
        ({"team": "north", "pad": "x" * 1_300_000}, "longer than 8192 bytes"),  # a 1.3 MB token
    ],
)
def test_tokens_past_the_bounds_are_refused(client: TestClient, claims: dict[str, Any], reason: str) -> None:
    r = client.get("/me", headers={"Authorization": f"Bearer {signed(claims)}"})
    assert r.status_code == 401 and reason in r.json()["detail"], r.json()


def test_a_huge_token_is_refused_before_it_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(NEW.public(), issuer="pipelines", audience="pipelines")

    def no_decoding(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("decoded")

    monkeypatch.setattr(jwt, "get_unverified_header", no_decoding)
    monkeypatch.setattr(jwt, "decode", no_decoding)
    with pytest.raises(InvalidTokenError, match="longer than 8192"):
        verifier.verify("e" * 1_300_000)
    with pytest.raises(InvalidTokenError, match="not ASCII"):
        verifier.verify("é" * 100)


def test_the_longest_lifetime_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINES_JWT_MAX_LIFETIME_S", "3600")
    settings = Settings(_env_file=None, jwt_public_keys=json.dumps(NEW.jwks()))
    verifier = TokenVerifier.from_settings(settings)
    now = int(time.time())
    assert verifier.verify(signed({"exp": now + 3600})).user_id == "u-1"
    with pytest.raises(InvalidTokenError, match=r"longest token lifetime \(3600 s\)"):
        verifier.verify(signed({"exp": now + 3700}))
    monkeypatch.delenv("PIPELINES_JWT_MAX_LIFETIME_S")
    assert Settings(_env_file=None).jwt_max_lifetime_s == 86400  # a day: the CLI's tokens (12 hours) pass


def test_issued_tokens_carry_a_random_id_and_when_they_were_issued() -> None:
    first, second = (
        jwt.decode(
            issue_token(NEW, user_id="u", roles=["sales"]), NEW.public()["2026-06"], ["EdDSA"], audience="pipelines"
        )
        for _ in range(2)
    )
    assert len(first["jti"]) >= 20 and first["jti"] != second["jti"]
    assert first["exp"] - first["iat"] == 3600


def test_a_revoked_token_is_refused_even_once_remembered_and_others_still_work() -> None:
    revocations = RevocationList()  # no settings: this process's list only (publish revokes here)
    verifier = TokenVerifier(NEW.public(), issuer="pipelines", audience="pipelines", revoked=revocations)
    signed_out = issue_token(NEW, user_id="u-1", roles=["sales"])
    other = issue_token(NEW, user_id="u-1", roles=["sales"])
    checked = verifier.check(signed_out)  # now remembered as verified
    assert checked.principal.user_id == "u-1"
    asyncio.run(revocations.publish(checked.token_id, checked.expires))
    with pytest.raises(InvalidTokenError, match="revoked"):
        verifier.verify(signed_out)
    assert verifier.verify(other).user_id == "u-1"


def test_revocations_are_forgotten_once_their_tokens_expired_and_junk_is_skipped() -> None:
    now = [1_000_000.0]
    revocations = RevocationList(clock=lambda: now[0])
    revocations.revoke("a", 1_000_100.0)
    revocations.revoke("a", 1_000_050.0)  # an earlier expiry does not shorten it
    revocations.revoke("b", 1_000_010.0)
    now[0] = 1_000_010.0 + FORGET_AFTER_S + 61
    revocations.revoke("c", now[0] + 10)  # pruning runs at most once a minute, on a revocation or a read
    assert "a" in revocations and "b" not in revocations and len(revocations) == 2
    assert parse(b'{"jti": "x", "exp": 5}') == ("x", 5.0)
    assert parse(b'{"sid": "s-1", "exp": 5}') == ("sid:s-1", 5.0)  # a session's: every token naming it
    junk_sids = (b'{"sid": "", "exp": 5}', b'{"sid": 7, "exp": 5}', b'{"sid": "s", "jti": "x", "exp": 5}')
    for junk in (
        b"",
        b"[]",
        b"not json",
        b'{"jti": "x"}',
        b'{"jti": "", "exp": 5}',
        b'{"jti": "x", "exp": true}',
        *junk_sids,
    ):
        assert parse(junk) is None, junk
