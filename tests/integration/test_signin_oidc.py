"""Sign-in with OpenID Connect against a real OpenID Provider (npm ``oidc-provider`` under Node: the
``oidc_provider`` fixture, testkit/oidc), its login and consent pages driven over HTTP as a person would (no
browser: the board's Chromium test does that), the sign-in service's routes on its PostgreSQL tables.

Discovery and JWKS read (and read again when the provider, restarted, signs with a new key); a sign-in matched by
verified email and one by subject; refused: a wrong state, a replayed one, an expired one, a missing or other
browser binding, a nonce that is not the one sent, an issuer parameter naming another provider, an unverified email,
a person the directory lacks. PKCE: the authorization URL carries the S256 challenge of the verifier kept for the
state, the provider refuses an authorization request without a challenge, and refuses the code without the verifier
or with another one (the same code then goes through with the right one).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from services.signin.api import create_app
from services.signin.directory import DirectoryUser, MemoryUsers
from services.signin.domain import sessions
from services.signin.handlers import Config, Signin
from services.signin.main import build as build_signin
from services.signin.oidc import OidcClient, OidcConfig, PostgresLogins
from services.signin.store import PostgresStore
from shared.edge.auth import TokenVerifier
from shared.ops.stack import Endpoints
from testkit.oidc import Account, OidcProvider, sign_in
from testkit.services import TEST_KEYS, drop_schemas, isolated_settings

pytestmark = [pytest.mark.pg]

ANNA = DirectoryUser("anna", "Anna", "anna@example.com", "north", ("sales",), True)


class Clock:
    def __init__(self) -> None:
        self.shift = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


@dataclass
class Signing:
    """The sign-in service's app on its tables, its OpenID Connect client, the provider, a clock to move."""

    http: httpx.AsyncClient
    oidc: OidcClient
    provider: OidcProvider
    pool: asyncpg.Pool
    schema: str
    clock: Clock

    async def start(self, next_path: str | None = "/deals") -> dict[str, Any]:
        answer = await self.http.get("/oidc/start", params={"next": next_path} if next_path else None)
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        return dict(answer.json())

    async def at_provider(self, login: str, next_path: str | None = "/deals") -> tuple[dict[str, str], str]:
        """Started here, signed in at the provider: (the callback's code, state and iss; the browser's binding)."""
        started = await self.start(next_path)
        back = sign_in(started["authorize_url"], login)
        assert back.startswith(self.provider.redirect_uris[0] + "?"), back
        return dict(parse_qsl(urlsplit(back).query)), started["binding"]

    async def callback(self, params: dict[str, str], binding: str | None, **more: Any) -> httpx.Response:
        body = {k: v for k, v in params.items() if k in ("code", "state", "iss")} | more
        if binding is not None:
            body["binding"] = binding
        return await self.http.post("/oidc/callback", json=body)


async def _ready() -> dict[str, str]:
    return {"postgresql": "ok"}


@pytest.fixture
async def signing(
    oidc_provider: OidcProvider, pg_pool: asyncpg.Pool, pg_schema: str
) -> AsyncIterator[Callable[..., Signing]]:
    store = PostgresStore(pg_pool, pg_schema)
    await store.setup()
    config = Config(5, 900, 1000, sessions.Timeouts(300, 1800, 43_200), b"k" * 32)
    clients: list[httpx.AsyncClient] = []

    def make(match: str = "email") -> Signing:
        clock = Clock()
        svc = Signin(store, MemoryUsers(ANNA), TEST_KEYS, None, config, clock=clock)
        verifier = TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines")
        app = create_app(svc, verifier, _ready)
        p = oidc_provider
        oidc_config = OidcConfig(p.issuer, p.client_id, p.client_secret, p.redirect_uris[0], match)
        app.state.oidc = OidcClient(oidc_config, PostgresLogins(pg_pool, pg_schema), clock=clock)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://signin")
        clients.append(http)
        return Signing(http, app.state.oidc, p, pg_pool, pg_schema, clock)

    yield make
    for http in clients:
        await http.aclose()


def _person(provider: OidcProvider, email: str = "anna@example.com", verified: bool = True, sub: str = "") -> str:
    """A new account at the provider; its login (its ``sub``)."""
    return provider.add_account(Account(sub or f"p-{uuid.uuid4().hex[:12]}", email, verified, "Anna")).sub


async def test_discovery_and_jwks_come_from_the_provider(signing: Callable[..., Signing]) -> None:
    s = signing()
    metadata = await s.oidc.metadata()
    assert metadata["issuer"] == s.provider.issuer
    assert "S256" in metadata["code_challenge_methods_supported"]
    keys = (await s.oidc.jwks())["keys"]
    assert keys and all(k["kty"] == "RSA" and k["kid"] and "d" not in k for k in keys)


async def test_a_person_signs_in_matched_by_verified_email(signing: Callable[..., Signing]) -> None:
    s = signing()
    params, binding = await s.at_provider(_person(s.provider))
    answer = await s.callback(params, binding)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["user"] == {"user_id": "anna", "name": "Anna", "roles": ["sales"], "team": "north"}
    assert body["next"] == "/deals" and body["session"] and body["csrf"]
    token = TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines").check(body["token"])
    assert token.principal.user_id == "anna" and token.session_id
    method = await s.pool.fetchval(f'SELECT method FROM "{s.schema}".sessions WHERE sid = $1', token.session_id)
    assert method == "oidc"
    # the session works as a password one: a fresh token for it
    assert (await s.http.post("/sessions/token", json={"session": body["session"]})).status_code == 200


async def test_a_person_signs_in_matched_by_subject(signing: Callable[..., Signing]) -> None:
    s = signing("subject")
    login = _person(s.provider, email="someone-else@example.com", verified=False, sub="anna")
    params, binding = await s.at_provider(login, next_path=None)
    answer = await s.callback(params, binding)
    assert answer.status_code == 201, answer.text
    assert answer.json()["user"]["user_id"] == "anna" and answer.json()["next"] is None


def _refused(answer: httpx.Response, status: int, rule: str) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["rule"] == rule, answer.text
    return str(answer.json()["detail"])


async def test_states_are_single_use_bound_to_the_browser_and_short_lived(signing: Callable[..., Signing]) -> None:
    s = signing()
    login = _person(s.provider)

    params, binding = await s.at_provider(login)
    _refused(await s.callback(params | {"state": "x" * 43}, binding), 400, "oidc_state_invalid")  # never started
    assert (await s.callback(params, binding)).status_code == 201
    _refused(await s.callback(params, binding), 400, "oidc_state_invalid")  # replayed

    params, binding = await s.at_provider(login)  # a login CSRF: the attacker's code and state, without the binding
    missing = await s.callback(params, None)
    assert missing.status_code == 422 and missing.json()["errors"][0]["loc"] == ["body", "binding"]
    _refused(await s.callback(params, "another-browsers-binding"), 403, "oidc_binding_mismatch")
    _refused(await s.callback(params, binding), 400, "oidc_state_invalid")  # that state is spent

    params, binding = await s.at_provider(login)
    s.clock.shift = timedelta(minutes=10, seconds=1)
    assert "10 minutes" in _refused(await s.callback(params, binding), 400, "oidc_state_invalid")
    s.clock.shift = timedelta()
    stored = await s.pool.fetchval(f'SELECT count(*) FROM "{s.schema}".oidc_logins WHERE state = $1', params["state"])
    assert stored == 0  # taken, not left behind

    params, binding = await s.at_provider(login)  # an answer said to come from another provider (RFC 9207)
    _refused(await s.callback(params | {"iss": "https://evil.example.com"}, binding), 400, "oidc_provider_refused")


async def test_of_two_callbacks_at_once_with_one_state_one_signs_in(signing: Callable[..., Signing]) -> None:
    s, other = signing(), signing()  # two replicas on the same tables
    params, binding = await s.at_provider(_person(s.provider))
    answers = await asyncio.gather(s.callback(params, binding), other.callback(params, binding))
    assert sorted(a.status_code for a in answers) == [201, 400]


async def test_an_id_token_for_another_nonce_is_refused(signing: Callable[..., Signing]) -> None:
    s = signing()
    params, binding = await s.at_provider(_person(s.provider))
    # the provider put the nonce it was sent in its ID token; the one kept for this state is now another
    await s.pool.execute(
        f'UPDATE "{s.schema}".oidc_logins SET nonce = $2 WHERE state = $1', params["state"], "not-the-nonce-sent"
    )
    assert "nonce" in _refused(await s.callback(params, binding), 401, "oidc_id_token_invalid")


async def test_only_verified_emails_of_directory_users_sign_in(signing: Callable[..., Signing]) -> None:
    s = signing()
    params, binding = await s.at_provider(_person(s.provider, verified=False))
    _refused(await s.callback(params, binding), 403, "email_unverified")
    params, binding = await s.at_provider(_person(s.provider, email="stranger@example.com"))
    _refused(await s.callback(params, binding), 403, "no_such_user")
    s = signing("subject")
    params, binding = await s.at_provider(_person(s.provider))  # anna's email, but not her id as its subject
    _refused(await s.callback(params, binding), 403, "no_such_user")


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def test_pkce_the_provider_refuses_the_code_without_its_verifier(signing: Callable[..., Signing]) -> None:
    s = signing()
    login = _person(s.provider)
    started = await s.start()
    query = parse_qs(urlsplit(started["authorize_url"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
    assert "openid" in query["scope"][0].split()
    state = query["state"][0]
    kept = await s.pool.fetchrow(f'SELECT verifier, nonce FROM "{s.schema}".oidc_logins WHERE state = $1', state)
    assert query["code_challenge"] == [_s256(kept["verifier"])] and query["nonce"] == [kept["nonce"]]

    # without a challenge, the provider does not even start
    plain = {k: v[0] for k, v in query.items() if not k.startswith("code_challenge")}
    url = urlunsplit(urlsplit(started["authorize_url"])._replace(query=urlencode(plain)))
    back = dict(parse_qsl(urlsplit(sign_in(url, login)).query))
    assert back["error"] == "invalid_request" and "PKCE" in back["error_description"]

    params = dict(parse_qsl(urlsplit(sign_in(started["authorize_url"], login)).query))
    metadata = await s.oidc.metadata()
    p = s.provider
    exchange = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": p.redirect_uris[0]}
    async with httpx.AsyncClient(auth=(p.client_id, p.client_secret)) as http:
        for verifier in (None, "x" * 64):  # none, or another one than the challenge's
            form = exchange | ({"code_verifier": verifier} if verifier else {})
            refused = await http.post(metadata["token_endpoint"], data=form)
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    # the same code with the verifier kept for its state: a session
    assert (await s.callback(params, started["binding"])).status_code == 201


async def test_new_provider_keys_are_read_when_an_id_token_names_one(signing: Callable[..., Signing]) -> None:
    s = signing()
    login = _person(s.provider)
    params, binding = await s.at_provider(login)
    assert (await s.callback(params, binding)).status_code == 201
    before = {k["kid"] for k in (await s.oidc.jwks())["keys"]}
    s.provider.restart()  # a new signing key (each start makes one); the client still holds the old JWKS
    params, binding = await s.at_provider(login)
    assert (await s.callback(params, binding)).status_code == 201
    after = {k["kid"] for k in (await s.oidc.jwks())["keys"]}
    assert after and not after & before


async def test_the_service_built_from_settings_signs_in_with_its_provider(
    oidc_provider: OidcProvider, endpoints: Endpoints
) -> None:
    """``services.signin.main.build`` on the PIPELINES_OIDC_* settings the provider gives: the routes on, the state
    kept in the service's own schema."""
    env = oidc_provider.settings()
    settings = isolated_settings(endpoints).model_copy(
        update={name.removeprefix("PIPELINES_").lower(): value for name, value in env.items()}
    )
    settings = settings.model_copy(update={"oidc_client_secret": SecretStr(env["PIPELINES_OIDC_CLIENT_SECRET"])})
    service = await build_signin(settings, keys=TEST_KEYS)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app()), base_url="http://s") as http:
            started = (await http.get("/oidc/start", params={"next": "/sales"})).json()
        assert started["authorize_url"].startswith(f"{oidc_provider.issuer}/auth?")
        state = parse_qs(urlsplit(started["authorize_url"]).query)["state"][0]
        schema = settings.schema_name("signin")
        kept = await service.pool.fetchrow(
            f'SELECT binding_hash, next_path FROM "{schema}".oidc_logins WHERE state = $1', state
        )
        assert kept["next_path"] == "/sales"
        assert kept["binding_hash"] == hashlib.sha256(started["binding"].encode()).hexdigest()  # never the binding
    finally:
        await service.close()
        await drop_schemas(settings)
