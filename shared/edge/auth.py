"""Bearer tokens for every service API: EdDSA (Ed25519) JWTs with a key id, carrying a user id, roles and a team.

- Keys (``shared.edge.keys``, decision 0022): tokens are signed by the sign-in service (and an operator's ``pipelines
  token``) with ``PIPELINES_JWT_SIGNING_KEYS``; every API, the board and the notifier verify with public keys only:
  ``PIPELINES_JWT_PUBLIC_KEYS`` (a JWKS document) and the JWKS read from ``PIPELINES_JWKS_URL`` at start, on a token
  naming an unknown key id (at most once per ``UNKNOWN_KID_REFETCH_S``), and every ``PIPELINES_JWKS_REFRESH_S``; a
  failed read keeps the keys it has. The header's ``kid`` picks the key; only ``alg`` ``EdDSA`` is accepted (an
  HS256 token "signed" with a public key's bytes, ``alg: none``, RS256: refused). Rotation: docs/OPERATIONS.md.
- Claims: ``sub`` (user id), ``roles`` (of ROLES), ``team`` (optional), ``exp`` (required), ``iss``, ``aud``,
  ``jti`` (required: the token's id, what a revocation names), ``sid`` (optional: the sign-in session), ``iat``.
- Bounds: a token longer than ``MAX_TOKEN_BYTES`` is refused before it is decoded; ``exp``, ``iat`` and ``nbf`` must
  be numbers; a token may live at most ``PIPELINES_JWT_MAX_LIFETIME_S`` (``exp - iat``, and ``exp`` from now).
- Revocation: a verifier is given the process's revocation list (``shared.edge.revocation``); a revoked ``jti``, or
  a token of a revoked session (``sid``, kept in the list as ``"sid:" + sid``), is refused, also when the token was
  verified and remembered before.
- ``current_principal`` is the FastAPI dependency: 401 (with ``WWW-Authenticate: Bearer``) for a missing,
  malformed, expired, foreign or unsigned token; ``require(...)`` adds 403 when no role allows the call.
  ``admin`` is allowed everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from collections.abc import Callable, Container, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.edge.keys import ALGORITHM, PublicKeys, SigningKeys
from shared.ops.settings import Settings, SettingsError

# ``importer`` runs imports and back-dates facts further than PIPELINES_BACKDATE_LIMIT_DAYS, and nothing else: it reads
# no personal data (decision 0021)
ROLES = frozenset(
    {"marketing", "sales", "sales_manager", "sales_director", "production", "auditor", "importer", "admin"}
)
log = structlog.get_logger(__name__)
VERIFIED_TOKENS = 10_000  # tokens a verifier remembers as verified (forgotten all at once when full)
MAX_TOKEN_BYTES = 8192  # a longer token is refused unread (ours are ~400 bytes; an IdP's with many claims, a few KiB)
MAX_TOKEN_ID_CHARS = 128  # the jti (and sid): it travels on the revocations topic and is kept in memory by every API
UNKNOWN_KID_REFETCH_S = 10.0  # a token naming an unknown key id rereads the JWKS at most this often
JWKS_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 256 * 1024  # a larger JWKS answer is refused unread (ours: ~150 bytes a key)
DEFAULT_MAX_LIFETIME_S = 24 * 3600  # PIPELINES_JWT_MAX_LIFETIME_S


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[str]
    team: str | None = None

    def has_any(self, roles: Iterable[str]) -> bool:
        return "admin" in self.roles or bool(self.roles & set(roles))


class InvalidTokenError(Exception):
    pass


class UnknownKeyError(InvalidTokenError):
    """The token names a key id this verifier does not know (yet: the JWKS may be reread)."""


@dataclass(frozen=True)
class VerifiedToken:
    principal: Principal
    token_id: str  # the jti
    expires: float  # the exp, in seconds since the epoch
    session_id: str | None = None  # the sid: the sign-in session the token was minted for


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bounded_id(claims: Mapping[str, Any], claim: str) -> str:
    value = claims[claim]
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TOKEN_ID_CHARS:
        raise InvalidTokenError(f"{claim} must be a string of 1 to {MAX_TOKEN_ID_CHARS} characters")
    return value


class TokenVerifier:
    """Verifies tokens with Ed25519 public keys only: those given, and those read from ``jwks_url`` (``run``)."""

    def __init__(
        self,
        keys: Mapping[str, Ed25519PublicKey],
        *,
        issuer: str,
        audience: str,
        leeway_s: int = 30,
        max_lifetime_s: int = DEFAULT_MAX_LIFETIME_S,
        revoked: Container[str] = frozenset(),
        jwks_url: str | None = None,
        refresh_s: float = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not keys and not jwks_url:
            raise SettingsError("no public keys: set PIPELINES_JWT_PUBLIC_KEYS (a JWKS) or PIPELINES_JWKS_URL")
        self._static = keys if isinstance(keys, PublicKeys) else PublicKeys(keys)
        self._keys = self._static
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.max_lifetime_s = max_lifetime_s
        self.revoked = revoked  # the token ids (jti) refused before their expiry: shared.edge.revocation.RevocationList
        self.jwks_url = jwks_url
        self.refresh_s = refresh_s
        self._transport = transport
        self._clock = clock
        self._last_unknown_read = float("-inf")
        self._reading: asyncio.Lock | None = None
        self.jwks_problem: str | None = None  # why the last read of the JWKS failed (None: it did not)
        # token → what it was verified as: a token verified once stays valid until it expires or is revoked (or its
        # key is removed: the memory is forgotten whenever the keys change), so a client's next requests skip the
        # signature and the claims' checks
        self._verified: dict[str, VerifiedToken] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, revoked: Container[str] = frozenset()) -> TokenVerifier:
        """``PIPELINES_JWT_PUBLIC_KEYS`` and ``PIPELINES_JWKS_URL`` (read by ``run``); never a signing key."""
        return cls(
            PublicKeys.from_settings(settings),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            max_lifetime_s=settings.jwt_max_lifetime_s,
            revoked=revoked,
            jwks_url=settings.jwks_url,
            refresh_s=settings.jwks_refresh_s,
        )

    @property
    def keys(self) -> PublicKeys:
        return self._keys

    def use(self, fetched: PublicKeys) -> None:
        """The keys are now the configured ones and ``fetched`` (a key no longer listed stops verifying at once)."""
        keys = self._static.union(fetched)
        if keys != self._keys:
            log.info("auth.keys_changed", kids=sorted(keys), before=sorted(self._keys))
            self._keys = keys
            self._verified.clear()

    def _lock(self) -> asyncio.Lock:
        if self._reading is None:  # made in the event loop that uses it
            self._reading = asyncio.Lock()
        return self._reading

    async def refresh(self) -> bool:
        """Read the JWKS at ``jwks_url`` and use its keys; on failure keep the keys (logged). True when read."""
        async with self._lock():  # one read at a time: a request naming a key the read brings waits for it
            return await self._refresh()

    async def _refresh(self) -> bool:
        if not self.jwks_url:
            return False
        try:
            body = await self._read_jwks(self.jwks_url)
            self.use(PublicKeys.from_jwks(body))
        except (httpx.HTTPError, ValueError) as exc:  # SettingsError is a ValueError
            self.jwks_problem = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("auth.jwks_read_failed", url=self.jwks_url, error=self.jwks_problem, kept=sorted(self._keys))
            return False
        self.jwks_problem = None
        return True

    async def _read_jwks(self, url: str) -> bytes:
        async with (
            httpx.AsyncClient(transport=self._transport, timeout=JWKS_TIMEOUT_S) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as answer,
        ):
            answer.raise_for_status()
            body = b""
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
        return body

    async def run(self, stop: asyncio.Event) -> None:
        """Read the JWKS now and every ``refresh_s`` until ``stop`` (nothing to do without ``jwks_url``)."""
        while self.jwks_url and not stop.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.refresh_s)

    def verify(self, token: str) -> Principal:
        return self.check(token).principal

    async def averify(self, token: str) -> Principal:
        return (await self.acheck(token)).principal

    async def acheck(self, token: str) -> VerifiedToken:
        """``check``, rereading the JWKS first when the token names an unknown key id (at most once per
        ``UNKNOWN_KID_REFETCH_S``): a key added and made active is accepted on first sight."""
        try:
            return self.check(token)
        except UnknownKeyError:
            if not self.jwks_url:
                raise
        async with self._lock():  # concurrent requests naming the new key share one read
            with contextlib.suppress(UnknownKeyError):
                return self.check(token)  # a read that ran meanwhile (the first, at start) brought the key
            if self._clock() - self._last_unknown_read >= UNKNOWN_KID_REFETCH_S:
                self._last_unknown_read = self._clock()
                await self._refresh()
        return self.check(token)

    def check(self, token: str) -> VerifiedToken:
        """The token's principal, id and expiry; ``InvalidTokenError`` if it is not valid now (or revoked)."""
        known = self._verified.get(token)
        if known is None or time.time() >= known.expires + self.leeway_s:
            self._verified.pop(token, None)
            known = self._verify(token)
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = known
        if known.token_id in self.revoked:
            raise InvalidTokenError("token revoked (signed out)")
        if known.session_id is not None and "sid:" + known.session_id in self.revoked:
            raise InvalidTokenError("session ended (signed out)")
        return known

    def _verify(self, token: str) -> VerifiedToken:
        if len(token) > MAX_TOKEN_BYTES or not token.isascii():
            raise InvalidTokenError(f"malformed token: longer than {MAX_TOKEN_BYTES} bytes or not ASCII")
        try:
            header = jwt.get_unverified_header(token)
            # the times' types first: PyJWT would take "1700000000" and True as times, or call them expired
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"malformed token: {exc}") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidTokenError(f"algorithm {str(header.get('alg'))[:20]!r} refused: tokens are {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in self._keys:
            raise UnknownKeyError(f"unknown key id {str(kid)[:64]!r}")
        for claim in ("exp", "iat", "nbf"):
            if claim in unverified and not _is_time(unverified[claim]):
                raise InvalidTokenError(f"{claim} must be a number (seconds since the epoch)")
        try:
            claims = jwt.decode(
                token,
                self._keys[kid],
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "sub", "iss", "aud", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from None
        return self._verified_claims(claims)

    def _verified_claims(self, claims: Mapping[str, Any]) -> VerifiedToken:
        expires = float(claims["exp"])
        if expires - time.time() > self.max_lifetime_s + self.leeway_s:
            raise InvalidTokenError(f"exp is further ahead than the longest token lifetime ({self.max_lifetime_s} s)")
        if "iat" in claims and expires - claims["iat"] > self.max_lifetime_s:
            raise InvalidTokenError(f"exp - iat is longer than the longest token lifetime ({self.max_lifetime_s} s)")
        token_id = _bounded_id(claims, "jti")
        session_id = _bounded_id(claims, "sid") if "sid" in claims else None
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidTokenError("roles must be a list of strings")
        unknown = set(roles) - ROLES
        if unknown:
            raise InvalidTokenError(f"unknown roles {sorted(unknown)}")
        team = claims.get("team")
        principal = Principal(user_id=str(claims["sub"]), roles=frozenset(roles), team=str(team) if team else None)
        return VerifiedToken(principal, token_id, expires, session_id)


def issue_token(
    keys: SigningKeys,
    *,
    user_id: str,
    roles: Iterable[str],
    team: str | None = None,
    ttl: timedelta = timedelta(hours=1),
    session_id: str | None = None,
    issuer: str = "pipelines",
    audience: str = "pipelines",
    now: datetime | None = None,
) -> str:
    """A token signed with the active one of ``keys`` (the sign-in service's, the CLI's with an operator's keys, the
    tests'), with a random ``jti`` (what a revocation names), its ``iat``, and ``sid`` when minted for a session."""
    roles = sorted(roles)
    if unknown := set(roles) - ROLES:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": user_id,
        "roles": roles,
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    if team:
        claims["team"] = team
    if session_id is not None:
        claims["sid"] = session_id
    return keys.sign(claims)


_bearer = HTTPBearer(
    auto_error=False, description="EdDSA JWT signed by the sign-in service (kid header: one of its published keys)"
)


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=f"not authenticated: {reason}",
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
    )


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="not authenticated: bearer token required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = await verifier.averify(credentials.credentials)
    except InvalidTokenError as exc:
        raise _unauthorized(str(exc).replace('"', "'")) from None
    request.state.principal = principal
    return principal


def require(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency allowing callers with any of ``roles`` (or admin); others get 403."""
    if unknown := set(roles) - ROLES:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    async def allowed(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.has_any(roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"forbidden: needs one of the roles {sorted(roles)}")
        return principal

    _REQUIRED[allowed] = frozenset(roles)
    return allowed


_REQUIRED: dict[Callable[..., Any], frozenset[str]] = {}  # each ``require`` dependency → its roles


def required_roles(dependency: Any) -> frozenset[str] | None:
    """The roles a ``require(...)`` dependency allows (admin besides); None for any other dependency."""
    return _REQUIRED.get(dependency)
