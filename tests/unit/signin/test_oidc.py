"""The OpenID Connect client's own checks, without a provider: the ID token's claims (iss, aud, azp, exp, nonce,
at_hash) on tokens signed here, matching a person to a directory user, the settings it refuses, the one-use state
in memory, and the start route's bounds. The protocol against a real provider: tests/integration/test_signin_oidc.py.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from services.signin.api import create_app
from services.signin.directory import DirectoryUser, MemoryUsers
from services.signin.domain import sessions
from services.signin.handlers import Config, Signin
from services.signin.oidc import (
    EmailUnverifiedError,
    Identity,
    MemoryLogins,
    NoSuchUserError,
    OidcClient,
    OidcConfig,
    PendingLogin,
    check_claims,
    match_user,
)
from services.signin.store import MemoryStore
from shared.edge.auth import TokenVerifier
from shared.ops.settings import Settings, SettingsError
from testkit.services import TEST_KEYS

ISSUER = "https://id.example.com"
CONFIG = OidcConfig(ISSUER, "pipelines", "secret", "https://board.example.com/login/oidc/callback", "email")
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
ANNA = DirectoryUser("anna", "Anna", "anna@example.com", "north", ("sales",), True)
GONE = DirectoryUser("gone", "Gone", "gone@example.com", "north", ("sales",), False)


def id_token(**changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "pipelines", "sub": "s-1", "iat": now, "exp": now + 300, "nonce": "n-1"} | changes
    claims = {k: v for k, v in claims.items() if v is not None}
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, KEY)
    decoded = jwt.decode(token, KEY)
    return decoded.claims, decoded.header


def test_a_good_id_token_passes() -> None:
    claims, header = id_token()
    assert check_claims(claims, header, CONFIG, "n-1", None)["sub"] == "s-1"
    claims, header = id_token(aud=["pipelines", "other"], azp="pipelines")  # several audiences: azp names us
    assert check_claims(claims, header, CONFIG, "n-1", None)["sub"] == "s-1"


@pytest.mark.parametrize(
    ("changes", "claim"),
    [
        ({"iss": "https://evil.example.com"}, "iss"),
        ({"iss": None}, "iss"),
        ({"aud": "someone-else"}, "aud"),
        ({"aud": ["pipelines", "other"], "azp": "other"}, "azp"),
        ({"aud": ["pipelines", "other"]}, "azp"),  # several audiences and no azp
        ({"exp": int(time.time()) - 3600}, "exp"),
        ({"exp": None}, "exp"),
        ({"nonce": "n-2"}, "nonce"),  # another sign-in's ID token
        ({"nonce": None}, "nonce"),
        ({"sub": None}, "sub"),
        ({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}, "at_hash"),  # not the access token's
    ],
)
def test_a_wrong_claim_is_refused_naming_it(changes: dict[str, Any], claim: str) -> None:
    claims, header = id_token(**changes)
    with pytest.raises(JoseError) as refused:
        check_claims(claims, header, CONFIG, "n-1", "the-access-token")
    assert claim in f"{refused.value.error} {refused.value.description}"


async def test_a_person_matches_by_verified_email_or_by_subject() -> None:
    users = MemoryUsers(ANNA, GONE)
    verified = Identity("s-1", "Anna@Example.com", True, {})
    assert (await match_user(verified, users, "email")).user_id == "anna"
    with pytest.raises(EmailUnverifiedError):
        await match_user(Identity("s-1", "anna@example.com", False, {}), users, "email")
    with pytest.raises(NoSuchUserError):
        await match_user(Identity("s-1", None, False, {}), users, "email")
    with pytest.raises(NoSuchUserError):
        await match_user(Identity("s-1", "nobody@example.com", True, {}), users, "email")
    with pytest.raises(NoSuchUserError):  # inactive
        await match_user(Identity("s-1", "gone@example.com", True, {}), users, "email")
    assert (await match_user(Identity("anna", None, False, {}), users, "subject")).user_id == "anna"
    with pytest.raises(NoSuchUserError):
        await match_user(Identity("s-1", "anna@example.com", True, {}), users, "subject")
    with pytest.raises(NoSuchUserError):
        await match_user(Identity("gone", None, False, {}), users, "subject")


def test_settings_turn_it_on_whole_or_not_at_all() -> None:
    base = Settings(_env_file=None)
    assert OidcConfig.from_settings(base) is None
    with pytest.raises(SettingsError, match="PIPELINES_OIDC_CLIENT_ID"):
        OidcConfig.from_settings(base.model_copy(update={"oidc_issuer": ISSUER}))
    full = {"oidc_issuer": ISSUER + "/", "oidc_client_id": "c", "oidc_redirect_url": "https://b/login/oidc/callback"}
    config = OidcConfig.from_settings(base.model_copy(update=full))
    assert config is not None and config.issuer == ISSUER and config.client_secret is None and config.match == "email"
    with pytest.raises(SettingsError, match="https"):
        OidcConfig.from_settings(base.model_copy(update=full | {"oidc_issuer": "http://id.example.com"}))
    loopback = OidcConfig.from_settings(base.model_copy(update=full | {"oidc_issuer": "http://127.0.0.1:9000"}))
    assert loopback is not None
    with pytest.raises(ValueError, match="oidc_match"):
        Settings(_env_file=None, oidc_match="name")
    with pytest.raises(ValueError, match="oidc_client_id"):
        Settings(_env_file=None, oidc_client_id="x" * 256)
    with pytest.raises(ValueError, match="oidc_client_secret"):
        Settings(_env_file=None, oidc_client_secret="x" * 1025)
    with pytest.raises(ValueError, match="oidc_redirect_url"):
        Settings(_env_file=None, oidc_redirect_url="javascript:alert(1)")


async def test_a_state_is_taken_once() -> None:
    logins = MemoryLogins()
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    await logins.add(PendingLogin("s", "n", "v", "b", None, t0))
    await logins.add(PendingLogin("old", "n", "v", "b", None, t0 - timedelta(minutes=11)))
    assert await logins.prune(t0 - timedelta(minutes=10)) == 1
    assert (await logins.take("s")) is not None
    assert (await logins.take("s")) is None


async def _ready() -> dict[str, str]:
    return {}


async def test_the_routes_say_when_oidc_is_off_and_bound_their_input() -> None:
    config = Config(3, 600, 100, sessions.Timeouts(300, 1800, 7200), b"k" * 32)
    svc = Signin(MemoryStore(), MemoryUsers(ANNA), TEST_KEYS, None, config)
    app = create_app(svc, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"), _ready)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://signin") as c:
        off = await c.get("/oidc/start")
        assert off.status_code == 404 and off.json()["rule"] == "oidc_not_configured"
        body = {"code": "c", "state": "s", "binding": "b"}
        assert (await c.post("/oidc/callback", json=body)).json()["rule"] == "oidc_not_configured"
        app.state.oidc = OidcClient(CONFIG, MemoryLogins())  # on, at a provider never reached: all refused before
        for bad in ("//evil.example.com/x", "https://evil.example.com", "/\\evil", "deals", "/" + "x" * 500):
            answer = await c.get("/oidc/start", params={"next": bad})
            assert answer.status_code == 422, bad
            assert answer.json()["errors"][0]["loc"] == ["query", "next"]
        for field, value in (("code", "c" * 2049), ("state", "s" * 129), ("binding", ""), ("iss", "i" * 2049)):
            answer = await c.post("/oidc/callback", json=body | {field: value})
            assert answer.status_code == 422 and answer.json()["errors"][0]["loc"] == ["body", field]
        missing = await c.post("/oidc/callback", json={"code": "c", "state": "s"})
        assert missing.status_code == 422 and missing.json()["errors"][0]["loc"] == ["body", "binding"]
        assert (await c.post("/oidc/callback", json=body | {"extra": 1})).status_code == 422
