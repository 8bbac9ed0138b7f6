"""Where the sign-in service keeps what it knows, in its own schema (``signin``; no event store: nothing here is a
business fact, and a password hash must never reach an event or a topic). ``PostgresStore`` for the process,
``MemoryStore`` for unit tests; both answer the ``Store`` protocol.

Tables (migration ``signin.0001``):

- ``credentials``: user id → argon2id hash (never a password), when it was set.
- ``attempts``: the failed passwords per email, by a keyed hash of the email (``services.signin.domain.lockout``).
- ``sessions``: sha256 of the session secret, the session id, user, started, last seen, ended, the CSRF token, and
  until when tokens minted for it live (what a revocation must cover).
- ``resets``: sha256 of a one-time reset link token, user, expires, used.
- ``oidc_logins``: the OpenID Connect sign-ins under way (state, nonce, PKCE verifier, browser binding's sha256,
  next path, started): the "oidc" part's (services/signin/oidc.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

import asyncpg

from services.signin.domain.lockout import CLEAR, Attempts
from shared.store.db import identifier
from shared.store.migrations import Migration, apply

MIGRATIONS = (
    Migration(
        "signin.0001",
        "credentials, attempts, sessions, resets, oidc_logins",
        """
CREATE TABLE credentials (
    user_id text PRIMARY KEY, hash text NOT NULL, set_at timestamptz NOT NULL);
CREATE TABLE attempts (
    login_key text PRIMARY KEY, failures integer NOT NULL, first_failure timestamptz, locked_until timestamptz);
CREATE TABLE sessions (
    digest text PRIMARY KEY, sid text NOT NULL UNIQUE, user_id text NOT NULL, method text NOT NULL,
    started timestamptz NOT NULL, last_seen timestamptz NOT NULL, ended timestamptz, csrf text NOT NULL,
    tokens_until timestamptz NOT NULL);
CREATE INDEX sessions_open_by_user ON sessions (user_id) WHERE ended IS NULL;
CREATE TABLE resets (
    digest text PRIMARY KEY, user_id text NOT NULL, expires timestamptz NOT NULL, used timestamptz);
CREATE TABLE oidc_logins (
    state text PRIMARY KEY, nonce text NOT NULL, verifier text NOT NULL, binding_hash text NOT NULL,
    next_path text, started timestamptz NOT NULL);
""",
    ),
)


@dataclass(frozen=True)
class Session:
    digest: str
    sid: str
    user_id: str
    method: str  # password | oidc
    started: datetime
    last_seen: datetime
    ended: datetime | None
    csrf: str
    tokens_until: datetime


class Store(Protocol):
    async def credential(self, user_id: str) -> str | None: ...
    async def set_credential(self, user_id: str, hashed: str, now: datetime) -> None: ...
    async def attempts(self, login_key: str) -> Attempts: ...
    async def count_attempt(self, login_key: str, count: Callable[[Attempts], Attempts | None]) -> Attempts: ...
    async def save_attempts(self, login_key: str, a: Attempts) -> None: ...
    async def add_session(self, s: Session) -> None: ...
    async def session(self, digest: str) -> Session | None: ...
    async def touch(self, digest: str, now: datetime, tokens_until: datetime) -> None: ...
    async def open_sessions(self, user_id: str) -> list[Session]: ...
    async def end_sessions(self, digests: list[str], now: datetime) -> int: ...
    async def add_reset(self, digest: str, user_id: str, expires: datetime) -> None: ...
    async def peek_reset(self, digest: str, now: datetime) -> str | None: ...
    async def take_reset(self, digest: str, now: datetime) -> str | None: ...


class MemoryStore:
    def __init__(self) -> None:
        self.credentials: dict[str, str] = {}
        self._attempts: dict[str, Attempts] = {}
        self.sessions: dict[str, Session] = {}
        self.resets: dict[str, tuple[str, datetime, datetime | None]] = {}

    async def credential(self, user_id: str) -> str | None:
        return self.credentials.get(user_id)

    async def set_credential(self, user_id: str, hashed: str, now: datetime) -> None:
        self.credentials[user_id] = hashed

    async def attempts(self, login_key: str) -> Attempts:
        return self._attempts.get(login_key, CLEAR)

    async def save_attempts(self, login_key: str, a: Attempts) -> None:
        self._attempts[login_key] = a

    async def count_attempt(self, login_key: str, count: Callable[[Attempts], Attempts | None]) -> Attempts:
        before = self._attempts.get(login_key, CLEAR)
        if (after := count(before)) is not None:
            self._attempts[login_key] = after
        return before

    async def add_session(self, s: Session) -> None:
        self.sessions[s.digest] = s

    async def session(self, digest: str) -> Session | None:
        return self.sessions.get(digest)

    async def touch(self, digest: str, now: datetime, tokens_until: datetime) -> None:
        s = self.sessions[digest]
        self.sessions[digest] = replace(s, last_seen=now, tokens_until=max(s.tokens_until, tokens_until))

    async def open_sessions(self, user_id: str) -> list[Session]:
        return [s for s in self.sessions.values() if s.user_id == user_id and s.ended is None]

    async def end_sessions(self, digests: list[str], now: datetime) -> int:
        ended = 0
        for d in digests:
            if (s := self.sessions.get(d)) is not None and s.ended is None:
                self.sessions[d] = replace(s, ended=now)
                ended += 1
        return ended

    async def add_reset(self, digest: str, user_id: str, expires: datetime) -> None:
        self.resets[digest] = (user_id, expires, None)

    async def peek_reset(self, digest: str, now: datetime) -> str | None:
        found = self.resets.get(digest)
        return None if found is None or found[2] is not None or found[1] <= now else found[0]

    async def take_reset(self, digest: str, now: datetime) -> str | None:
        found = self.resets.get(digest)
        if found is None or found[2] is not None or found[1] <= now:
            return None
        self.resets[digest] = (found[0], found[1], now)
        return found[0]


_SESSION = "digest, sid, user_id, method, started, last_seen, ended, csrf, tokens_until"


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self._s = identifier(schema)

    async def setup(self) -> None:
        await apply(self.pool, self.schema, MIGRATIONS)

    async def credential(self, user_id: str) -> str | None:
        hashed: str | None = await self.pool.fetchval(
            f"SELECT hash FROM {self._s}.credentials WHERE user_id = $1", user_id
        )
        return hashed

    async def set_credential(self, user_id: str, hashed: str, now: datetime) -> None:
        await self.pool.execute(
            f"""INSERT INTO {self._s}.credentials (user_id, hash, set_at) VALUES ($1, $2, $3)
                ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at""",
            user_id,
            hashed,
            now,
        )

    async def attempts(self, login_key: str) -> Attempts:
        row = await self.pool.fetchrow(
            f"SELECT failures, first_failure, locked_until FROM {self._s}.attempts WHERE login_key = $1", login_key
        )
        return CLEAR if row is None else Attempts(row["failures"], row["first_failure"], row["locked_until"])

    async def count_attempt(self, login_key: str, count: Callable[[Attempts], Attempts | None]) -> Attempts:
        """The email's attempts as they were, and ``count(them)`` stored (None: left as they are), under the row's
        lock: concurrent attempts (another replica's too) are counted one after the other, none lost."""
        s = self._s
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO {s}.attempts (login_key, failures) VALUES ($1, 0) ON CONFLICT DO NOTHING", login_key
            )
            row = await conn.fetchrow(
                f"SELECT failures, first_failure, locked_until FROM {s}.attempts WHERE login_key = $1 FOR UPDATE",
                login_key,
            )
            assert row is not None
            before = Attempts(row["failures"], row["first_failure"], row["locked_until"])
            if (after := count(before)) is not None:
                await conn.execute(
                    f"""UPDATE {s}.attempts SET failures = $2, first_failure = $3, locked_until = $4
                        WHERE login_key = $1""",
                    login_key,
                    after.failures,
                    after.first_failure,
                    after.locked_until,
                )
        return before

    async def save_attempts(self, login_key: str, a: Attempts) -> None:
        if a == CLEAR:
            await self.pool.execute(f"DELETE FROM {self._s}.attempts WHERE login_key = $1", login_key)
            return
        await self.pool.execute(
            f"""INSERT INTO {self._s}.attempts (login_key, failures, first_failure, locked_until)
                VALUES ($1, $2, $3, $4) ON CONFLICT (login_key) DO UPDATE SET failures = excluded.failures,
                first_failure = excluded.first_failure, locked_until = excluded.locked_until""",
            login_key,
            a.failures,
            a.first_failure,
            a.locked_until,
        )

    async def add_session(self, s: Session) -> None:
        await self.pool.execute(
            f"INSERT INTO {self._s}.sessions ({_SESSION}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            s.digest,
            s.sid,
            s.user_id,
            s.method,
            s.started,
            s.last_seen,
            s.ended,
            s.csrf,
            s.tokens_until,
        )

    async def session(self, digest: str) -> Session | None:
        row = await self.pool.fetchrow(f"SELECT {_SESSION} FROM {self._s}.sessions WHERE digest = $1", digest)
        return None if row is None else Session(**dict(row))

    async def touch(self, digest: str, now: datetime, tokens_until: datetime) -> None:
        await self.pool.execute(
            f"""UPDATE {self._s}.sessions SET last_seen = greatest(last_seen, $2),
                    tokens_until = greatest(tokens_until, $3) WHERE digest = $1""",
            digest,
            now,
            tokens_until,
        )

    async def open_sessions(self, user_id: str) -> list[Session]:
        rows = await self.pool.fetch(
            f"SELECT {_SESSION} FROM {self._s}.sessions WHERE user_id = $1 AND ended IS NULL", user_id
        )
        return [Session(**dict(r)) for r in rows]

    async def end_sessions(self, digests: list[str], now: datetime) -> int:
        ended: str = await self.pool.execute(
            f"UPDATE {self._s}.sessions SET ended = $2 WHERE digest = ANY($1) AND ended IS NULL", digests, now
        )
        return int(ended.split()[-1])

    async def add_reset(self, digest: str, user_id: str, expires: datetime) -> None:
        await self.pool.execute(
            f"INSERT INTO {self._s}.resets (digest, user_id, expires) VALUES ($1, $2, $3)", digest, user_id, expires
        )

    async def peek_reset(self, digest: str, now: datetime) -> str | None:
        user_id: str | None = await self.pool.fetchval(
            f"SELECT user_id FROM {self._s}.resets WHERE digest = $1 AND used IS NULL AND expires > $2", digest, now
        )
        return user_id

    async def take_reset(self, digest: str, now: datetime) -> str | None:
        """The reset's user, marking it used, if it is unused and unexpired (one use: the UPDATE decides)."""
        user_id: str | None = await self.pool.fetchval(
            f"""UPDATE {self._s}.resets SET used = $2 WHERE digest = $1 AND used IS NULL AND expires > $2
                RETURNING user_id""",
            digest,
            now,
        )
        return user_id
