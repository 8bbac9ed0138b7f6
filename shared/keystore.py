"""The per-subject key store on PostgreSQL (see ``shared.pii``): keys wrapped by the master key, erasures kept."""

from __future__ import annotations

import os
from collections.abc import Iterable

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.db import run_ddl
from shared.pii import KEY_BYTES, NONCE_BYTES


class PostgresKeyStore:
    """Subject keys in PostgreSQL, each wrapped (AES-GCM) by the master key, so a dump alone reveals nothing."""

    def __init__(self, pool: asyncpg.Pool, master_key: bytes, schema: str = "pii") -> None:
        if len(master_key) != KEY_BYTES:
            raise ValueError("the personal-data master key must be 32 bytes")
        self._pool = pool
        self._master = AESGCM(master_key)
        self._schema = schema

    async def setup(self) -> None:
        # deploy/postgres/roles.sql makes these same tables beforehand, owned by a role every service may use
        s = self._schema
        await run_ddl(
            self._pool,
            f"""
                CREATE SCHEMA IF NOT EXISTS "{s}";
                CREATE TABLE IF NOT EXISTS "{s}".subject_keys (
                    subject_id text PRIMARY KEY,
                    wrapped_key bytea NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now());
                CREATE TABLE IF NOT EXISTS "{s}".erasures (
                    subject_id text PRIMARY KEY,
                    erased_at timestamptz NOT NULL DEFAULT now(),
                    reason text NOT NULL DEFAULT '');
                """,
        )

    def _wrap(self, subject: str, key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._master.encrypt(nonce, key, subject.encode())

    def _unwrap(self, subject: str, wrapped: bytes) -> bytes:
        return self._master.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], subject.encode())

    async def keys_for(self, subjects: Iterable[str], *, create: bool = False) -> dict[str, bytes]:
        wanted = sorted(set(subjects))
        if not wanted:
            return {}
        s = self._schema
        async with self._pool.acquire() as conn:
            if create:
                fresh = [(x, self._wrap(x, AESGCM.generate_key(bit_length=256))) for x in wanted]
                await conn.executemany(
                    f"""INSERT INTO "{s}".subject_keys (subject_id, wrapped_key)
                        SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM "{s}".erasures WHERE subject_id = $1)
                        ON CONFLICT (subject_id) DO NOTHING""",
                    fresh,
                )
            rows = await conn.fetch(
                f'SELECT subject_id, wrapped_key FROM "{s}".subject_keys WHERE subject_id = ANY($1::text[])', wanted
            )
        return {r["subject_id"]: self._unwrap(r["subject_id"], r["wrapped_key"]) for r in rows}

    async def erase(self, subject: str, *, reason: str = "") -> bool:
        s = self._schema
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f'INSERT INTO "{s}".erasures (subject_id, reason) VALUES ($1, $2) ON CONFLICT DO NOTHING',
                subject,
                reason,
            )
            deleted: str = await conn.execute(f'DELETE FROM "{s}".subject_keys WHERE subject_id = $1', subject)
        return deleted != "DELETE 0"

    async def is_erased(self, subject: str) -> bool:
        async with self._pool.acquire() as conn:
            return bool(await conn.fetchval(f'SELECT 1 FROM "{self._schema}".erasures WHERE subject_id = $1', subject))
