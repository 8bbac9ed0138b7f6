"""Bearer tokens for every service API: JWT (HS256) with a key id, carrying a user id, roles and a team.

- Keys come from the settings (``PIPELINES_JWT_KEYS``: key id → secret). A token names its key in the ``kid``
  header, so a new key can be added, used for new tokens, and the old one removed once its tokens expire.
  Every key listed verifies; new tokens are signed with ``PIPELINES_JWT_ACTIVE_KID`` (``signing_key``).
  The rotation procedure is in docs/OPERATIONS.md.
- Claims: ``sub`` (user id), ``roles`` (of ROLES), ``team`` (optional), ``exp`` (required), ``iss``, ``aud``,
  ``jti`` (required: the token's id, what a revocation names), ``iat`` (optional).
- Bounds: a token longer than ``MAX_TOKEN_BYTES`` is refused before it is decoded; ``exp``, ``iat`` and ``nbf`` must
  be numbers; a token may live at most ``PIPELINES_JWT_MAX_LIFETIME_S`` (``exp - iat``, and ``exp`` from now).
- Revocation: a verifier is given the process's revocation list (``shared.edge.revocation``); a revoked ``jti`` is
  refused, also when the token was verified and remembered before.
- ``current_principal`` is the FastAPI dependency: 401 (with ``WWW-Authenticate: Bearer``) for a missing,
  malformed, expired, foreign or unsigned token; ``require(...)`` adds 403 when no role allows the call.
  ``admin`` is allowed everywhere.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Container, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.ops.settings import Settings, SettingsError

# ``importer`` runs imports and back-dates facts further than PIPELINES_BACKDATE_LIMIT_DAYS, and nothing else: it reads
# no personal data (decision 0021)
ROLES = frozenset(
    {"marketing", "sales", "sales_manager", "sales_director", "production", "auditor", "importer", "admin"}
)
ALGORITHM = "HS256"
MIN_KEY_BYTES = 32
VERIFIED_TOKENS = 10_000  # tokens a verifier remembers as verified (forgotten all at once when full)
MAX_TOKEN_BYTES = 8192  # a longer token is refused unread (ours are ~400 bytes; an IdP's with many claims, a few KiB)
MAX_TOKEN_ID_CHARS = 128  # the jti: it travels on the revocations topic and is kept in memory by every API
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


@dataclass(frozen=True)
class VerifiedToken:
    principal: Principal
    token_id: str  # the jti
    expires: float  # the exp, in seconds since the epoch


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class TokenVerifier:
    def __init__(
        self,
        keys: Mapping[str, bytes],
        *,
        issuer: str,
        audience: str,
        leeway_s: int = 30,
        max_lifetime_s: int = DEFAULT_MAX_LIFETIME_S,
        revoked: Container[str] = frozenset(),
    ) -> None:
        if not keys:
            raise SettingsError("no JWT keys: set PIPELINES_JWT_KEYS to a JSON object of key id to secret")
        for kid, key in keys.items():
            if len(key) < MIN_KEY_BYTES:
                raise SettingsError(f"JWT key {kid!r} is shorter than {MIN_KEY_BYTES} bytes")
        self._keys = dict(keys)
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.max_lifetime_s = max_lifetime_s
        self.revoked = revoked  # the token ids (jti) refused before their expiry: shared.edge.revocation.RevocationList
        # token → what it was verified as: a token verified once stays valid until it expires or is revoked (the
        # keys of a verifier never change), so a client's next requests skip the HMAC and the claims' checks
        self._verified: dict[str, VerifiedToken] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, revoked: Container[str] = frozenset()) -> TokenVerifier:
        keys = {kid: secret.get_secret_value().encode() for kid, secret in settings.jwt_keys.items()}
        return cls(
            keys,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            max_lifetime_s=settings.jwt_max_lifetime_s,
            revoked=revoked,
        )

    def verify(self, token: str) -> Principal:
        return self.check(token).principal

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
        return known

    def _verify(self, token: str) -> VerifiedToken:
        if len(token) > MAX_TOKEN_BYTES or not token.isascii():
            raise InvalidTokenError(f"malformed token: longer than {MAX_TOKEN_BYTES} bytes or not ASCII")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"malformed token: {exc}") from None
        kid = header.get("kid")
        if kid not in self._keys:
            raise InvalidTokenError(f"unknown key id {kid!r}")
        try:  # the times' types first: PyJWT would take "1700000000" and True as times, or call them expired
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"malformed token: {exc}") from None
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
        expires = float(claims["exp"])
        if expires - time.time() > self.max_lifetime_s + self.leeway_s:
            raise InvalidTokenError(f"exp is further ahead than the longest token lifetime ({self.max_lifetime_s} s)")
        if "iat" in claims and expires - claims["iat"] > self.max_lifetime_s:
            raise InvalidTokenError(f"exp - iat is longer than the longest token lifetime ({self.max_lifetime_s} s)")
        token_id = claims["jti"]
        if not isinstance(token_id, str) or not 0 < len(token_id) <= MAX_TOKEN_ID_CHARS:
            raise InvalidTokenError(f"jti must be a string of 1 to {MAX_TOKEN_ID_CHARS} characters")
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidTokenError("roles must be a list of strings")
        unknown = set(roles) - ROLES
        if unknown:
            raise InvalidTokenError(f"unknown roles {sorted(unknown)}")
        team = claims.get("team")
        principal = Principal(user_id=str(claims["sub"]), roles=frozenset(roles), team=str(team) if team else None)
        return VerifiedToken(principal, token_id, expires)


def signing_key(settings: Settings) -> tuple[str, bytes]:
    """The key id and secret new tokens are signed with: ``PIPELINES_JWT_ACTIVE_KID`` (or the only key)."""
    kid = settings.jwt_active_kid
    if kid is None:
        if len(settings.jwt_keys) != 1:
            raise SettingsError("set PIPELINES_JWT_ACTIVE_KID to the key id new tokens are signed with")
        kid = next(iter(settings.jwt_keys))
    if kid not in settings.jwt_keys:
        raise SettingsError(f"PIPELINES_JWT_ACTIVE_KID {kid!r} is not one of PIPELINES_JWT_KEYS")
    return kid, settings.jwt_keys[kid].get_secret_value().encode()


def issue_token(
    *,
    key_id: str,
    secret: bytes,
    user_id: str,
    roles: Iterable[str],
    team: str | None = None,
    ttl: timedelta = timedelta(hours=1),
    issuer: str = "pipelines",
    audience: str = "pipelines",
    now: datetime | None = None,
) -> str:
    """A signed token (for the demo, the CLI and tests; production tokens come from the identity provider), with a
    random ``jti`` (what signing out revokes) and its ``iat``."""
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
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": key_id})


_bearer = HTTPBearer(auto_error=False, description="JWT signed with one of the configured keys (kid header)")


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
        principal = verifier.verify(credentials.credentials)
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

    return allowed
