"""Sign-in with OpenID Connect: the sign-in service as the client (relying party) of one OpenID Provider.

``authlib`` does the protocol's client side over our httpx client: its RFC 6749/7636 parts build the authorization
URL (PKCE S256) and the code's exchange (with the verifier and the client's secret, client_secret_basic; a client
without a secret sends its id); ``joserfc`` (authlib's JOSE) checks the ID token's signature against the provider's
JWKS, and authlib's ``CodeIDToken`` its claims: ``iss`` (the issuer named by
``PIPELINES_OIDC_ISSUER``, as its discovery document says it), ``aud`` (our client id, ``azp`` when several),
``exp`` and ``iat``, the ``nonce`` we sent, ``at_hash``.

A sign-in has two steps:

- ``start(next_path)``: a new ``state``, ``nonce``, PKCE verifier and browser *binding*, kept (the binding as its
  sha256 only) in ``oidc_logins``; the answer is the provider's authorization URL and the binding, which the board
  keeps in a cookie of the browser that started.
- ``finish(code, state, binding)``: the state is taken (one use: deleted as it is read) and must be under
  ``STATE_TTL`` old; the binding must be the one it was started with (a login CSRF: an attacker's own code and
  state, planted in a victim's browser, come without the victim's binding); the code is exchanged; the ID token
  checked; its person matched to a directory user by email (``PIPELINES_OIDC_MATCH=email``, only with
  ``email_verified`` true; the email from the ID token, else from the userinfo endpoint, whose ``sub`` must be the
  ID token's) or by subject (``subject``: the directory user's id is the provider's ``sub``).

Discovery and the JWKS are read when first needed and kept (``METADATA_TTL_S``); an ID token naming a key id the
kept JWKS lacks rereads it once (the provider rotated its keys).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, cast
from urllib.parse import quote, urlsplit

import asyncpg
import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from services.signin.directory import DirectoryUser, Users
from services.signin.domain.errors import SignInError, UnavailableError
from shared.ops.settings import Settings, SettingsError
from shared.store.db import identifier

STATE_TTL = timedelta(minutes=10)  # how long a started sign-in may take at the provider
METADATA_TTL_S = 3600.0  # discovery and JWKS kept this long
SCOPE = "openid email profile"
TIMEOUT_S = 10.0
LEEWAY_S = 60  # clock skew allowed on the ID token's exp and iat
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


# ------------------------------------------------------------------------------------------------- refusals
class OidcNotConfiguredError(SignInError):
    status, rule = 404, "oidc_not_configured"


class StateInvalidError(SignInError):
    """No sign-in under way with this state: never started, already finished (a replay), or expired."""

    status, rule = 400, "oidc_state_invalid"


class BindingMismatchError(SignInError):
    """The callback came without the binding of the browser that started the sign-in (login CSRF)."""

    status, rule = 403, "oidc_binding_mismatch"


class ProviderRefusedError(SignInError):
    """The provider refused the code (used, expired, not ours, or without its PKCE verifier) or answered an error."""

    status, rule = 400, "oidc_provider_refused"


class IdTokenInvalidError(SignInError):
    """The ID token's signature or one of its claims (iss, aud, exp, nonce, …) is wrong."""

    status, rule = 401, "oidc_id_token_invalid"


class EmailUnverifiedError(SignInError):
    status, rule = 403, "email_unverified"


class NoSuchUserError(SignInError):
    """The provider's person is no active user of the directory."""

    status, rule = 403, "no_such_user"


# -------------------------------------------------------------------------------------- the sign-ins under way
@dataclass(frozen=True)
class PendingLogin:
    state: str
    nonce: str
    verifier: str
    binding_hash: str
    next_path: str | None
    started: datetime


class Logins(Protocol):
    async def add(self, login: PendingLogin) -> None: ...
    async def take(self, state: str) -> PendingLogin | None: ...
    async def prune(self, before: datetime) -> int: ...


class MemoryLogins:
    def __init__(self) -> None:
        self.logins: dict[str, PendingLogin] = {}

    async def add(self, login: PendingLogin) -> None:
        self.logins[login.state] = login

    async def take(self, state: str) -> PendingLogin | None:
        return self.logins.pop(state, None)

    async def prune(self, before: datetime) -> int:
        old = [s for s, login in self.logins.items() if login.started < before]
        for s in old:
            del self.logins[s]
        return len(old)


_LOGIN = "state, nonce, verifier, binding_hash, next_path, started"


class PostgresLogins:
    """The ``oidc_logins`` table of the sign-in schema (migration signin.0001, services/signin/store.py)."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self._s = identifier(schema)

    async def add(self, login: PendingLogin) -> None:
        await self.pool.execute(
            f"INSERT INTO {self._s}.oidc_logins ({_LOGIN}) VALUES ($1, $2, $3, $4, $5, $6)",
            login.state,
            login.nonce,
            login.verifier,
            login.binding_hash,
            login.next_path,
            login.started,
        )

    async def take(self, state: str) -> PendingLogin | None:
        """The login, deleted in the same statement: of two callbacks with one state, one gets it."""
        row = await self.pool.fetchrow(f"DELETE FROM {self._s}.oidc_logins WHERE state = $1 RETURNING {_LOGIN}", state)
        return None if row is None else PendingLogin(**dict(row))

    async def prune(self, before: datetime) -> int:
        done: str = await self.pool.execute(f"DELETE FROM {self._s}.oidc_logins WHERE started < $1", before)
        return int(done.split()[-1])


# ------------------------------------------------------------------------------------------------- the client
@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    redirect_url: str
    match: Literal["email", "subject"]

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """None when ``PIPELINES_OIDC_ISSUER`` is unset (OpenID Connect off); SettingsError when half set."""
        if not settings.oidc_issuer:
            return None
        missing = [n for n in ("oidc_client_id", "oidc_redirect_url") if not getattr(settings, n)]
        if missing:
            names = ", ".join(f"PIPELINES_{n.upper()}" for n in missing)
            raise SettingsError(f"PIPELINES_OIDC_ISSUER is set, so {names} must be too")
        issuer = settings.oidc_issuer.rstrip("/")
        if urlsplit(issuer).scheme != "https" and urlsplit(issuer).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SettingsError("PIPELINES_OIDC_ISSUER must be https (plain http only on this machine's loopback)")
        secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
        return cls(issuer, str(settings.oidc_client_id), secret, str(settings.oidc_redirect_url), settings.oidc_match)


@dataclass(frozen=True)
class Identity:
    """The person the provider vouches for, as its ID token (and userinfo) say."""

    sub: str
    email: str | None
    email_verified: bool
    claims: dict[str, Any]


def binding_hash(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()


class OidcClient:
    def __init__(
        self,
        config: OidcConfig,
        logins: Logins,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.logins = logins
        self.clock = clock
        self._transport = transport
        self._metadata: tuple[dict[str, Any], float] | None = None
        self._jwks: tuple[dict[str, Any], float] | None = None

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=TIMEOUT_S, transport=self._transport, headers={"Accept": "application/json"})

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._http() as http:
                answer = await http.get(url)
                answer.raise_for_status()
                body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UnavailableError(f"the OpenID Provider does not answer: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise UnavailableError("the OpenID Provider answered something other than a JSON object")
        return body

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (kept METADATA_TTL_S); its issuer must be the one configured."""
        if self._metadata is None or self._metadata[1] < time.monotonic():
            found = await self._get_json(f"{self.config.issuer}/.well-known/openid-configuration")
            if str(found.get("issuer", "")).rstrip("/") != self.config.issuer:
                raise UnavailableError(f"the discovery document names another issuer: {str(found.get('issuer'))[:200]}")
            for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(needed), str):
                    raise UnavailableError(f"the discovery document has no {needed}")
            self._metadata = (found, time.monotonic() + METADATA_TTL_S)
        return self._metadata[0]

    async def jwks(self, *, reread: bool = False) -> dict[str, Any]:
        """The provider's public keys (kept METADATA_TTL_S; ``reread`` on a key id they lack)."""
        if reread or self._jwks is None or self._jwks[1] < time.monotonic():
            found = await self._get_json((await self.metadata())["jwks_uri"])
            self._jwks = (found, time.monotonic() + METADATA_TTL_S)
        return self._jwks[0]

    async def start(self, next_path: str | None) -> tuple[str, str]:
        """(the provider's authorization URL for this sign-in, the browser binding to keep in a cookie)."""
        endpoint = (await self.metadata())["authorization_endpoint"]
        now = self.clock()
        await self.logins.prune(now - STATE_TTL)
        binding = secrets.token_urlsafe(32)
        login = PendingLogin(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),  # 86 characters: within PKCE's 43..128
            binding_hash=binding_hash(binding),
            next_path=next_path,
            started=now,
        )
        await self.logins.add(login)
        url = prepare_grant_uri(
            endpoint,
            self.config.client_id,
            "code",
            redirect_uri=self.config.redirect_url,
            scope=SCOPE,
            state=login.state,
            nonce=login.nonce,
            code_challenge=create_s256_code_challenge(login.verifier),
            code_challenge_method="S256",
        )
        return url, binding

    async def finish(self, code: str, state: str, binding: str, iss: str | None = None) -> tuple[Identity, str | None]:
        """The person the provider signed in, and the next path given at the start; or a refusal (SignInError)."""
        login = await self.logins.take(state)
        if login is None or login.started <= self.clock() - STATE_TTL:
            raise StateInvalidError(
                "no sign-in under way with this state: unknown, already used, or older than 10 minutes"
            )
        if not hmac.compare_digest(binding_hash(binding), login.binding_hash):
            raise BindingMismatchError("this sign-in was started in another browser")
        metadata = await self.metadata()
        if iss is not None and iss.rstrip("/") != self.config.issuer:  # RFC 9207: an answer from another provider
            raise ProviderRefusedError("the answer names another issuer than this service's provider")
        token = await self._exchange(metadata["token_endpoint"], code, login.verifier)
        claims = await self._id_token(token, login.nonce)
        identity = Identity(
            sub=str(claims["sub"]),
            email=claims.get("email"),
            email_verified=claims.get("email_verified") is True,
            claims=claims,
        )
        if self.config.match == "email" and identity.email is None and metadata.get("userinfo_endpoint"):
            identity = await self._userinfo(metadata["userinfo_endpoint"], token, identity)
        return identity, login.next_path

    async def _exchange(self, endpoint: str, code: str, verifier: str) -> dict[str, Any]:
        """The token endpoint's answer to the code and its PKCE verifier (client_secret_basic with a secret)."""
        config = self.config
        public = config.client_secret is None
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=config.redirect_url,
            code_verifier=verifier,
            client_id=config.client_id if public else None,
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if not public:  # RFC 6749 2.3.1: each part form-encoded, then Basic
            pair = f"{quote(config.client_id, safe='')}:{quote(str(config.client_secret), safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        try:
            async with self._http() as http:
                answer = await http.post(endpoint, content=body, headers=headers)
            token = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UnavailableError(f"the OpenID Provider does not answer: {type(exc).__name__}") from None
        if answer.status_code >= 500 or not isinstance(token, dict):
            raise UnavailableError(f"the OpenID Provider's token endpoint answered {answer.status_code}")
        if answer.status_code != 200 or "error" in token:
            said = f"{token.get('error')}: {token.get('error_description', '')}"
            raise ProviderRefusedError(f"the provider refused the code: {said}"[:300])
        return token

    async def _id_token(self, token: dict[str, Any], nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature (the provider's JWKS) and claims are checked."""
        raw = token.get("id_token")
        if not isinstance(raw, str):
            raise IdTokenInvalidError("the provider sent no ID token (is the scope openid allowed for this client?)")
        registry = JWSRegistry(algorithms=ID_TOKEN_ALGORITHMS)
        try:
            try:
                decoded = jwt.decode(raw, KeySet.import_key_set(cast(Any, await self.jwks())), registry=registry)
            except InvalidKeyIdError:
                decoded = jwt.decode(
                    raw, KeySet.import_key_set(cast(Any, await self.jwks(reread=True))), registry=registry
                )
            return check_claims(decoded.claims, decoded.header, self.config, nonce, token.get("access_token"))
        except JoseError as exc:
            raise IdTokenInvalidError(
                f"the ID token is not valid: {exc.error}: {exc.description or ''}"[:300]
            ) from None

    async def _userinfo(self, endpoint: str, token: dict[str, Any], identity: Identity) -> Identity:
        try:
            async with self._http() as http:
                answer = await http.get(endpoint, headers={"Authorization": f"Bearer {token.get('access_token')}"})
                answer.raise_for_status()
                info = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UnavailableError(f"the provider's userinfo does not answer: {type(exc).__name__}") from None
        if not isinstance(info, dict) or info.get("sub") != identity.sub:
            raise IdTokenInvalidError("the userinfo answer is about another subject than the ID token")
        email = info.get("email")
        return Identity(
            sub=identity.sub,
            email=email if isinstance(email, str) else None,
            email_verified=info.get("email_verified") is True,
            claims=identity.claims | {k: info[k] for k in ("email", "email_verified", "name") if k in info},
        )


async def match_user(identity: Identity, users: Users, match: Literal["email", "subject"]) -> DirectoryUser:
    """The active directory user the provider's person is: by verified email, or by subject; else NoSuchUserError."""
    if match == "subject":
        user = await users.user(identity.sub)
    else:
        if identity.email is None:
            raise NoSuchUserError("the provider gave no email for this person (is the scope email allowed?)")
        if not identity.email_verified:
            raise EmailUnverifiedError("the provider does not say this email is verified: it cannot name a user")
        user = await users.by_email(identity.email)
    if user is None or not user.active:
        raise NoSuchUserError("no active user of the directory is this person")
    return user


def check_claims(
    claims: dict[str, Any], header: dict[str, Any], config: OidcConfig, nonce: str, access_token: str | None
) -> dict[str, Any]:
    """The ID token's claims, checked: iss, aud (and azp), exp, iat, sub, nonce, at_hash (JoseError if not)."""
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": config.issuer},
        "aud": {"essential": True, "value": config.client_id},
        "exp": {"essential": True},
        "sub": {"essential": True},
        "nonce": {"essential": True, "value": nonce},
    }
    params = {"nonce": nonce, "client_id": config.client_id, "access_token": access_token}
    checked = CodeIDToken(claims, header, options, params)
    checked.validate(leeway=LEEWAY_S)
    return dict(checked)
