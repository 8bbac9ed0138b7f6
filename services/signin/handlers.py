"""The sign-in service's use cases, without HTTP: a password sign-in, a session started for a user (the OpenID
Connect sign-in's end too), a fresh API token for a session, signing out (one session, everywhere, by an admin),
and password reset links (decision 0022).

Ending a session publishes its ``sid`` on the revocation topic before anything is recorded (``Revoker``): when Kafka
refuses, nothing is ended and the caller says so (503); once it is published, every API refuses the session's tokens
within about a second (shared/edge/revocation.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from services.signin.directory import DirectoryUser, Users
from services.signin.domain import lockout, passwords, sessions
from services.signin.domain.errors import (
    LockedError,
    PasswordRejectedError,
    ResetInvalidError,
    SessionEndedError,
    SignInRefusedError,
    TooManyAttemptsError,
    UnavailableError,
    UnknownUserError,
)
from services.signin.store import Session, Store
from shared.core import normalize
from shared.edge.auth import issue_token
from shared.edge.keys import SigningKeys
from shared.ops.metrics import SESSIONS_ENDED, SESSIONS_STARTED, SIGNIN_ATTEMPTS, TOKENS_MINTED
from shared.ops.settings import Settings

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]
RESET_S = 24 * 3600  # a reset link's lifetime
HASHING_AT_ONCE = 4  # argon2 hashes computed at once (each takes its memory cost: 64 MiB)


for _result in ("ok", "bad_credentials", "locked", "too_many_requests", "unavailable"):
    SIGNIN_ATTEMPTS.labels(_result)  # each result scraped from the start, at 0


def utc_now() -> datetime:
    return datetime.now(UTC)


class Revoker(Protocol):
    async def publish_session(self, sid: str, expires: float) -> None: ...


@dataclass(frozen=True)
class Config:
    max_failures: int
    lock_s: int
    per_minute: int
    timeouts: sessions.Timeouts
    attempts_key: bytes  # keys the hash of an email the failures are counted under
    issuer: str = "pipelines"
    audience: str = "pipelines"

    @classmethod
    def of(cls, s: Settings) -> Config:
        return cls(
            max_failures=s.signin_max_failures,
            lock_s=s.signin_lock_s,
            per_minute=s.signin_rate,
            timeouts=sessions.Timeouts(s.session_token_s, s.session_idle_s, s.session_absolute_s),
            attempts_key=hmac.new(s.master_key(), b"pipelines.signin.attempts", hashlib.sha256).digest(),
            issuer=s.jwt_issuer,
            audience=s.jwt_audience,
        )


@dataclass(frozen=True)
class Issued:
    """A token for a session (and, when the session has just started, its secret)."""

    token: str
    expires: datetime
    csrf: str
    user: DirectoryUser
    session: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"session": self.session} if self.session is not None else {}
        return out | {
            "csrf": self.csrf,
            "token": self.token,
            "token_expires_at": self.expires.isoformat(),
            "user": self.user.summary(),
        }


class Signin:
    def __init__(
        self,
        store: Store,
        directory: Users,
        keys: SigningKeys,
        revoker: Revoker,
        config: Config,
        *,
        hasher: passwords.Passwords | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.directory = directory
        self.keys = keys
        self.revoker = revoker
        self.config = config
        self.passwords = hasher or passwords.Passwords()
        self.clock = clock
        self.throttle = lockout.Throttle(config.per_minute)
        self._hashing = asyncio.Semaphore(HASHING_AT_ONCE)
        self.pool = getattr(store, "pool", None)  # the PostgreSQL pool (None in memory): the OpenID Connect part's

    def attempts_key(self, email: str) -> str:
        normalised = normalize.email(email) or email.strip().lower()
        return hmac.new(self.config.attempts_key, normalised.encode(), hashlib.sha256).hexdigest()

    async def _hash_work(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self._hashing:
            return await asyncio.to_thread(fn, *args)

    async def sign_in_password(self, email: str, password: str, client: str) -> Issued:
        """A session for the user with this email and password; ``TooManyAttempts``, ``Locked``, ``SignInRefused``.

        The attempt is counted as a failure before the password is checked (and the count cleared when it is
        right), atomically: a burst of concurrent guesses gets no more than ``max_failures`` of them checked."""
        now = self.clock()
        if (wait := self.throttle.check(client, now)) is not None:
            SIGNIN_ATTEMPTS.labels("too_many_requests").inc()
            raise TooManyAttemptsError("too many sign-in attempts from this address", retry_after=wait)
        try:
            user = await self.directory.by_email(email)
        except UnavailableError:
            SIGNIN_ATTEMPTS.labels("unavailable").inc()
            raise
        key, c = self.attempts_key(email), self.config

        def counted(a: lockout.Attempts) -> lockout.Attempts | None:
            if lockout.locked_for(a, now) is not None:
                return None  # locked: left as it is (guessing on does not extend the lock)
            return lockout.after_failure(a, now, max_failures=c.max_failures, lock_s=c.lock_s)

        before = await self.store.count_attempt(key, counted)
        if (wait := lockout.locked_for(before, now)) is not None:
            SIGNIN_ATTEMPTS.labels("locked").inc()
            raise LockedError("too many failed sign-ins: locked for now", retry_after=wait)
        stored = await self.store.credential(user.user_id) if user is not None and user.active else None
        if user is None or not await self._hash_work(self.passwords.verify, stored, password):
            SIGNIN_ATTEMPTS.labels("bad_credentials").inc()
            raise SignInRefusedError("wrong email or password")
        assert stored is not None
        await self.store.save_attempts(key, lockout.CLEAR)
        if self.passwords.needs_rehash(stored):  # the parameters changed since it was set
            await self.store.set_credential(user.user_id, await self._hash_work(self.passwords.hash, password), now)
        SIGNIN_ATTEMPTS.labels("ok").inc()
        return await self._start(user, "password", now)

    async def start_session(self, user_id: str, *, method: str = "oidc") -> Issued:
        """A session for a user the directory has and who is active (how the OpenID Connect sign-in ends); answers
        as ``sign_in_password``. ``SignInRefusedError`` for anyone else."""
        user = await self.directory.user(user_id)
        if user is None or not user.active:
            raise SignInRefusedError("no active user")
        return await self._start(user, method, self.clock())

    async def _start(self, user: DirectoryUser, method: str, now: datetime) -> Issued:
        secret = sessions.new_secret()
        digest = sessions.digest(secret)
        sid = sessions.session_id(digest)
        expires = sessions.token_expiry(now, now, self.config.timeouts)
        csrf = sessions.new_secret()
        await self.store.add_session(Session(digest, sid, user.user_id, method, now, now, None, csrf, expires))
        SESSIONS_STARTED.labels(method).inc()
        log.info("signin.session_started", user_id=user.user_id, sid=sid, method=method)
        return Issued(self._mint(user, sid, now, expires), expires, csrf, user, secret)

    def _mint(self, user: DirectoryUser, sid: str, now: datetime, expires: datetime) -> str:
        TOKENS_MINTED.inc()
        c = self.config
        return issue_token(
            self.keys,
            user_id=user.user_id,
            roles=user.roles,
            team=user.team,
            ttl=expires - now,
            session_id=sid,
            issuer=c.issuer,
            audience=c.audience,
            now=now,
        )

    async def _open(self, secret: str, now: datetime) -> Session:
        """The session this secret opens, live now; an idle or expired one is ended here (and revoked while a token
        minted for it may still live: an idle timeout shorter than the tokens'). ``SessionEndedError`` otherwise."""
        s = await self.store.session(sessions.digest(secret)) if sessions.well_formed(secret) else None
        if s is None or s.ended is not None:
            raise SessionEndedError("no such session, or it has ended")
        if (why := sessions.over(s.started, s.last_seen, now, self.config.timeouts)) is not None:
            if s.tokens_until > now:
                await self._end([s], now, why)
            elif await self.store.end_sessions([s.digest], now):
                SESSIONS_ENDED.labels(why).inc()
            raise SessionEndedError(f"the session has ended ({why})")
        return s

    async def token(self, secret: str) -> Issued:
        """A fresh API token for a live session, with the roles and team the directory gives now."""
        now = self.clock()
        s = await self._open(secret, now)
        user = await self.directory.user(s.user_id)
        if user is None or not user.active:
            await self._end([s], now, "deactivated")
            raise SessionEndedError("the user is no longer active")
        expires = sessions.token_expiry(now, s.started, self.config.timeouts)
        token = self._mint(user, s.sid, now, expires)
        await self.store.touch(s.digest, now, expires)
        return Issued(token, expires, s.csrf, user)

    async def _end(self, ended: list[Session], now: datetime, reason: str) -> int:
        try:  # revoked everywhere first: when Kafka refuses, nothing is recorded as ended (503: try again)
            for s in ended:
                await self.revoker.publish_session(s.sid, s.tokens_until.timestamp())
        except Exception as exc:
            log.warning("signin.revocation_refused", error=repr(exc))
            raise UnavailableError("the revocation could not be published: nothing ended; try again") from None
        count = await self.store.end_sessions([s.digest for s in ended], now) if ended else 0
        SESSIONS_ENDED.labels(reason).inc(count)
        for s in ended:
            log.info("signin.session_ended", user_id=s.user_id, sid=s.sid, reason=reason)
        return count

    async def end(self, secret: str) -> int:
        """Sign out: this session ends (also one already idle)."""
        s = await self.store.session(sessions.digest(secret)) if sessions.well_formed(secret) else None
        if s is None or s.ended is not None:
            raise SessionEndedError("no such session, or it has ended")
        return await self._end([s], self.clock(), "signed_out")

    async def end_all(self, secret: str) -> int:
        """Sign out everywhere: every open session of this live session's user."""
        now = self.clock()
        s = await self._open(secret, now)
        return await self._end(await self.store.open_sessions(s.user_id), now, "everywhere")

    async def end_user(self, user_id: str, *, reason: str = "admin") -> int:
        now = self.clock()
        return await self._end(await self.store.open_sessions(user_id), now, reason)

    async def reset_link(self, user_id: str) -> tuple[str, datetime]:
        """A one-time link token setting the user's password (their first one too), valid ``RESET_S``."""
        if await self.directory.user(user_id) is None:
            raise UnknownUserError(f"no user {user_id}")
        token = sessions.new_secret()
        expires = self.clock() + timedelta(seconds=RESET_S)
        await self.store.add_reset(sessions.digest(token), user_id, expires)
        log.info("signin.reset_link_issued", user_id=user_id)
        return token, expires

    async def reset_password(self, token: str, password: str) -> tuple[str, int]:
        """The link's user's password set (the link used up), their sessions ended, their lockout cleared."""
        now = self.clock()
        digest = sessions.digest(token)
        user_id = await self.store.peek_reset(digest, now) if sessions.well_formed(token) else None
        user = await self.directory.user(user_id) if user_id is not None else None
        if user is None:
            raise ResetInvalidError("no such reset link, or it was used or has expired")
        if (why := passwords.policy_problem(password, user.email)) is not None:
            raise PasswordRejectedError(why)
        hashed = await self._hash_work(self.passwords.hash, password)
        if await self.store.take_reset(digest, now) != user.user_id:
            raise ResetInvalidError("no such reset link, or it was used or has expired")
        await self.store.set_credential(user.user_id, hashed, now)
        if user.email:
            await self.store.save_attempts(self.attempts_key(user.email), lockout.CLEAR)
        ended = await self.end_user(user.user_id, reason="password_reset")
        log.info("signin.password_set", user_id=user.user_id)
        return user.user_id, ended
