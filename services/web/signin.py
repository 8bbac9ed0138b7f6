"""The board's calls to the sign-in service (decision 0022): a password or an OpenID Connect login makes a session,
a session gives short-lived API tokens, a session ends (or all of the user's), a reset link sets a password.

The board never sees a signing key: it holds the session's secret (in the browser's cookie) and, per session, the
last API token the sign-in service gave for it, in memory until 30 s before it expires (``Tokens``). A refusal is a
``SignInError``: the sign-in service's problem ``rule`` (``bad_credentials``, ``locked``, ``too_many_requests``,
``session_ended``, …), its status and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from shared.ops.settings import Settings

EARLY_S = 30.0  # a kept token is asked again this long before it expires
KEPT = 10_000  # sessions whose token is kept at once; past it the oldest go (asked again when next seen)


class SignInError(Exception):
    """The sign-in service said no (``rule``: its problem's rule), or did not answer (``unavailable``)."""

    def __init__(self, rule: str, status: int, retry_after: int | None = None, detail: str | None = None) -> None:
        super().__init__(f"{status} {rule}")
        self.rule, self.status, self.retry_after, self.detail = rule, status, retry_after, detail


@dataclass(frozen=True)
class Grant:
    """A session's API token as the sign-in service gave it (and, for a new session, its secret)."""

    token: str
    expires_at: float  # seconds since the epoch
    csrf: str
    user: dict[str, Any]
    session: str | None = None  # a new session's secret: the cookie's value
    next: str | None = None  # an OpenID Connect login's page to go back to


def _epoch(value: Any) -> float:
    """``token_expires_at`` as seconds since the epoch (a number, or an ISO 8601 time)."""
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def grant_of(body: dict[str, Any]) -> Grant:
    return Grant(
        token=str(body["token"]),
        expires_at=_epoch(body["token_expires_at"]),
        csrf=str(body["csrf"]),
        user=body.get("user") or {},
        session=body.get("session"),
        next=body.get("next"),
    )


def refusal_of(r: httpx.Response) -> SignInError:
    rule, detail = "unavailable", None
    try:
        body = r.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        rule = str(body.get("rule") or rule)
        detail = body.get("detail") if isinstance(body.get("detail"), str) else None
    raw = r.headers.get("retry-after", "")
    return SignInError(rule, r.status_code, int(raw) if raw.isdigit() else None, detail)


def key_of(session: str) -> str:
    """What the board keeps a session's token under: not the secret itself."""
    return hashlib.sha256(session.encode()).hexdigest()


@dataclass
class Tokens:
    """Each session's last API token, until ``EARLY_S`` before it expires; one request to the sign-in service at a
    time per session (a page's panels, its badge and its event stream arrive together)."""

    kept: dict[str, Grant] = field(default_factory=dict)
    asking: dict[str, asyncio.Future[Grant]] = field(default_factory=dict)

    def fresh(self, key: str) -> Grant | None:
        grant = self.kept.get(key)
        if grant is not None and grant.expires_at - EARLY_S > time.time():
            return grant
        self.kept.pop(key, None)
        return None

    def keep(self, key: str, grant: Grant) -> None:
        self.kept.pop(key, None)
        if len(self.kept) >= KEPT:
            now = time.time()
            for k in [k for k, g in self.kept.items() if g.expires_at - EARLY_S <= now] or list(self.kept)[:1000]:
                del self.kept[k]
        self.kept[key] = grant

    def forget(self, key: str) -> None:
        self.kept.pop(key, None)


class SignIn:
    """The sign-in service, as the board's client (``PIPELINES_SIGNIN_URL``)."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = settings.signin_base_url()
        self.http = httpx.AsyncClient(timeout=10, transport=transport)
        self.tokens = Tokens()

    async def _post(self, path: str, body: dict[str, Any], client: str | None = None) -> dict[str, Any]:
        headers = {"X-Forwarded-For": client} if client else {}
        try:
            r = await self.http.post(self.url + path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SignInError("unavailable", 503, detail=type(exc).__name__) from exc
        if r.status_code >= 300:
            raise refusal_of(r)
        answer: dict[str, Any] = r.json() if r.content else {}
        return answer

    async def password(self, email: str, password: str, client: str | None) -> Grant:
        """A new session for a user's email and password."""
        grant = grant_of(await self._post("/sessions/password", {"email": email, "password": password}, client))
        assert grant.session is not None
        self.tokens.keep(key_of(grant.session), grant)
        return grant

    async def token(self, session: str) -> Grant:
        """The session's API token: the kept one, else a new one (``SignInError("session_ended")`` once it ended)."""
        key = key_of(session)
        if (grant := self.tokens.fresh(key)) is not None:
            return grant
        if (pending := self.tokens.asking.get(key)) is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()
        self.tokens.asking[key] = future
        try:
            grant = grant_of(await self._post("/sessions/token", {"session": session}))
            self.tokens.keep(key, grant)
            future.set_result(grant)
            return grant
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        except BaseException:  # cancelled: whoever else waits asks again
            future.cancel()
            raise
        finally:
            del self.tokens.asking[key]

    async def end(self, session: str, *, everywhere: bool = False) -> None:
        """Sign out (this session, or every session of its user); the tokens are revoked before it answers."""
        await self._post("/sessions/end-all" if everywhere else "/sessions/end", {"session": session})
        self.tokens.forget(key_of(session))

    async def reset(self, token: str, password: str) -> None:
        await self._post("/password-resets", {"token": token, "password": password})

    async def oidc_start(self, next_path: str) -> tuple[str, str]:
        """Where to send the browser (the provider's authorize URL), and the binding to keep in its cookie."""
        try:
            r = await self.http.get(self.url + "/oidc/start", params={"next": next_path})
        except httpx.HTTPError as exc:
            raise SignInError("unavailable", 503, detail=type(exc).__name__) from exc
        if r.status_code != 200:
            raise refusal_of(r)
        body = r.json()
        return str(body["authorize_url"]), str(body["binding"])

    async def oidc_callback(self, code: str, state: str, binding: str, client: str | None) -> Grant:
        grant = grant_of(await self._post("/oidc/callback", {"code": code, "state": state, "binding": binding}, client))
        assert grant.session is not None
        self.tokens.keep(key_of(grant.session), grant)
        return grant

    async def close(self) -> None:
        await self.http.aclose()
