"""The per-subject key store on PostgreSQL (see ``shared.privacy.pii``): keys wrapped under epoch keys, erasures kept,
rotation, export and restore (decisions 0006 and 0015).

- A subject key is stored wrapped (AES-256-GCM) by ``wrapping_key(master key, epoch key, epoch)`` with the epoch
  it was wrapped under: the master key alone (the settings) opens nothing, nor does the keyring alone
  (``shared.privacy.keyring``, a volume outside the database).
- **Rotation** (``rotate``; ``KeyRotator`` runs it every half of ``PIPELINES_ERASURE_WINDOW_HOURS`` in the one
  process that holds its advisory lock): the epoch new keys are wrapped under moves to ``n + 1`` (under an exclusive
  advisory lock that every insert takes shared, so no key is ever wrapped under ``n`` after it), every live key is
  re-wrapped under ``n + 1``, the live keys are exported (``<keyring dir>/<schema>.<store id>.keys.jsonl``),
  and the keyring file is advanced, which destroys epoch ``n``'s key. Every copy of a wrapped key made before
  (WAL, dead tuples, replicas, backups) is then unreadable: an erased subject's key is gone for good at most one
  rotation interval after the erasure, plus the rotation's own time.
- The keyring of a key store is ``<PIPELINES_KEYRING_DIR>/<schema>.<store id>.epoch`` (the store id is made with
  its tables): stores in different databases never share one.
- Keys wrapped before epochs existed (epoch 0) are opened with the master key alone until the first rotation,
  which runs at once on such a store.
- **Restore** (``restore``, run by ``python -m shared.messaging.restore``): the keys of a store restored from a backup older
  than the window are under destroyed epochs; they come back from the export, erasures recorded since (the export's,
  the store's, and the erasure events on the topics) are applied again, and whatever is kept is wrapped anew.

``python -m shared.store.keystore status|rotate|export [PATH]`` does these by hand.
"""

# long because: wrapping, epochs, rotation, export and restore are one protocol over one table and one advisory
# lock (decision 0015): each step's guarantee rests on the others', so they are read together.

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hmac
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.ops.metrics import PII_EPOCH_AGE
from shared.ops.settings import Settings
from shared.privacy.keyring import Keyring, KeyringError, wrapping_key
from shared.privacy.pii import KEY_BYTES, NONCE_BYTES
from shared.store.db import connect, create_pool
from shared.store.migrations import Migration, apply

log = structlog.get_logger(__name__)

EPOCH_REFUSED = "PK001"  # SQLSTATE of the guard refusing a key wrapped under another epoch than the store's
EXPORT_FORMAT = "pipelines.pii.keys.v1"

KEYS_0002 = """
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM information_schema.columns
                   WHERE table_schema = '{s}' AND table_name = 'subject_keys' AND column_name = 'epoch') THEN
        ALTER TABLE "{s}".subject_keys ADD COLUMN epoch integer NOT NULL DEFAULT 0;
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS "{s}".keyring_state (
    one            boolean PRIMARY KEY DEFAULT true CHECK (one),
    store_id       uuid NOT NULL DEFAULT gen_random_uuid(),
    epoch          integer NOT NULL,
    fingerprint    text,
    rotated_at     timestamptz NOT NULL DEFAULT now(),
    rotating_since timestamptz);
-- the key store's identity names its keyring file; keys wrapped before epochs existed make a rotation due at once
INSERT INTO "{s}".keyring_state (epoch, rotated_at)
    SELECT 1, CASE WHEN EXISTS (SELECT FROM "{s}".subject_keys) THEN 'epoch'::timestamptz ELSE now() END
    ON CONFLICT (one) DO NOTHING;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname = '{s}' AND p.proname = 'subject_key_epoch_guard') THEN
        CREATE FUNCTION "{s}".subject_key_epoch_guard() RETURNS trigger LANGUAGE plpgsql AS $f$
        DECLARE
            store_epoch integer;
        BEGIN
            -- a rotation switches epochs under the exclusive form of this lock: an insert commits before the switch
            -- (and the rotation re-wraps it) or waits for it and sees the new epoch (a volatile function's query
            -- takes a new snapshot)
            PERFORM pg_advisory_xact_lock_shared(hashtext('pipelines.keyring'), hashtext(TG_TABLE_SCHEMA));
            SELECT epoch INTO store_epoch FROM "{s}".keyring_state;
            IF store_epoch IS NULL OR NEW.epoch <> store_epoch THEN
                RAISE EXCEPTION 'a subject key wrapped under epoch % while the key store is at epoch %',
                    NEW.epoch, store_epoch USING ERRCODE = 'PK001';
            END IF;
            RETURN NEW;
        END $f$;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = '"{s}".subject_keys'::regclass
                                            AND tgname = 'subject_keys_epoch_guard') THEN
        CREATE TRIGGER subject_keys_epoch_guard BEFORE INSERT ON "{s}".subject_keys
            FOR EACH ROW EXECUTE FUNCTION "{s}".subject_key_epoch_guard();
    END IF;
END $$;
"""


@dataclass(frozen=True)
class Rotated:
    epoch: int  # the epoch every live key is now wrapped under; the one before it is destroyed
    rewrapped: int
    unreadable: int  # keys no key of this keyring opens (restored from an old backup, or lost): left as they were
    exported: Path | None


@dataclass(frozen=True)
class KeysRestored:
    epoch: int
    kept: int  # live subjects whose key the store holds now
    from_export: int  # of them, keys the restored store lacked or could not open
    erased: int  # subjects whose key the restored store or the export held and an erasure removed
    lost: int  # keys neither the restored store (under a destroyed epoch) nor the export could give


@dataclass(frozen=True)
class Export:
    store_id: str
    epoch: int
    keys: dict[str, tuple[int, bytes]]
    erased: set[str]


def _aad(subject: str, epoch: int) -> bytes:
    # keys wrapped before epochs existed had the subject id alone as associated data
    return subject.encode() if epoch == 0 else f"{epoch}:{subject}".encode()


class PostgresKeyStore:
    """Subject keys in PostgreSQL, each wrapped under an epoch of the store's keyring: a dump alone reveals nothing,
    nor do a dump and the settings once the dump's epoch is rotated out.

    The keyring is the file ``<keyring_dir>/<schema>.<store id>.epoch``: the store id is made with the store's
    tables, so key stores in other databases (a service given its own) never share a keyring file, while a store
    restored from a backup finds its own."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        master_key: bytes,
        *,
        keyring_dir: str | os.PathLike[str],
        schema: str = "pii",
        previous_master_keys: Sequence[bytes] = (),
        recheck_s: float = 1.0,
    ) -> None:
        if any(len(k) != KEY_BYTES for k in (master_key, *previous_master_keys)):
            raise ValueError("the personal-data master key must be 32 bytes")
        self._pool = pool
        self._masters = [master_key, *previous_master_keys]  # the first wraps; all open (a master key replaced)
        self._dir = Path(keyring_dir)
        self._recheck_s = recheck_s
        self._keyring: Keyring | None = None
        self._schema = schema
        self._epoch: int | None = None  # the epoch new keys are wrapped under, as this process last read it
        self._aeads: dict[int, tuple[bytes, list[AESGCM]]] = {}

    @property
    def schema(self) -> str:
        return self._schema

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            raise KeyringError(f"key store {self._schema!r} has not read its keyring yet (setup)")
        return self._keyring

    def _bind(self, store_id: str) -> Keyring:
        name = f"{self._schema}.{store_id}"
        if self._keyring is None or self._keyring.name != name:
            self._keyring = Keyring(self._dir, name, recheck_s=self._recheck_s)
            self._aeads = {}
        return self._keyring

    async def setup(self) -> None:
        """The key tables, made once (``shared.store.migrations``), then the keyring agreed with them (``join``).
        deploy/postgres/roles.sql makes the tables beforehand, with the schema's ``schema_migrations``, owned by a
        role every service may use: the first service records these migrations there, a no-op then."""
        await self.migrate()
        await self.join()

    async def migrate(self) -> None:
        await apply(self._pool, self._schema, self.migrations())

    def migrations(self) -> list[Migration]:
        s = self._schema
        keys = f"""
                CREATE SCHEMA IF NOT EXISTS "{s}";
                CREATE TABLE IF NOT EXISTS "{s}".subject_keys (
                    subject_id text PRIMARY KEY,
                    wrapped_key bytea NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now());
                CREATE TABLE IF NOT EXISTS "{s}".erasures (
                    subject_id text PRIMARY KEY,
                    erased_at timestamptz NOT NULL DEFAULT now(),
                    reason text NOT NULL DEFAULT '');
                """
        return [
            Migration("keystore.0001", "subject keys and erasures", keys),
            Migration("keystore.0002", "wrapping epochs (decision 0015)", KEYS_0002.format(s=s)),
        ]

    async def join(self) -> int:
        """Agree with the database on the keyring; the first process of a new key store writes epoch 1. Refuses
        (``KeyringError``) a keyring that is missing, another deployment's, or an old copy, and a key store that
        is behind its keyring (restored from a backup: ``python -m shared.messaging.restore`` first)."""
        row = await self._state()
        if row is None:
            raise KeyringError(f"key store {self._schema!r} has no keyring state: its migrations were not applied")
        ring = self._bind(str(row["store_id"]))
        if row["fingerprint"] is None:  # a new key store: the first of its processes writes epoch 1's key
            current = ring.current(fresh=True) if ring.exists() else ring.create()
            await self._pool.execute(
                f"""UPDATE "{self._schema}".keyring_state SET fingerprint = $1
                    WHERE fingerprint IS NULL AND epoch = $2""",
                current.fingerprint(),
                current.epoch,
            )
            row = await self._state()
            assert row is not None
        self._epoch = self._agree(row["epoch"], row["fingerprint"])
        return self._epoch

    def _agree(self, epoch: int, fingerprint: str | None) -> int:
        current = self.keyring.current(fresh=True)
        for candidate in (current, current.next()):
            if candidate.epoch == epoch:
                if fingerprint is None or not hmac.compare_digest(candidate.fingerprint(), fingerprint):
                    raise KeyringError(
                        f"the keyring at {self.keyring.path} is not the one key store {self._schema!r} was wrapped "
                        "with (another deployment's?): every process must use the deployment's one keyring volume"
                    )
                return epoch
        if epoch < current.epoch:
            raise KeyringError(
                f"key store {self._schema!r} is at epoch {epoch}, behind its keyring ({current.epoch}): restored "
                "from a backup? `python -m shared.messaging.restore <service>` brings its keys back (docs/OPERATIONS.md)"
            )
        raise KeyringError(
            f"the keyring at {self.keyring.path} is at epoch {current.epoch} and key store {self._schema!r} at "
            f"{epoch}: an old copy of the keyring? every process must use the deployment's one keyring volume"
        )

    async def _state(self) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._pool.fetchrow(
            f'SELECT store_id, epoch, fingerprint, rotated_at, rotating_since FROM "{self._schema}".keyring_state'
        )
        return row

    # ------------------------------------------------------------------ wrapping
    def _openers(self, epoch: int) -> list[AESGCM]:
        """What opens a key wrapped under ``epoch``: nothing once the epoch is retired."""
        if epoch == 0:
            return [AESGCM(m) for m in self._masters]
        key = self.keyring.key_of(epoch)
        if key is None:
            return []
        current = self.keyring.current().epoch
        if any(e < current for e in self._aeads):  # a rotation happened: the retired epoch's keys leave memory
            self._aeads = {e: v for e, v in self._aeads.items() if e >= current}
        cached = self._aeads.get(epoch)
        if cached is None or cached[0] != key:
            cached = self._aeads[epoch] = (key, [AESGCM(wrapping_key(m, key, epoch)) for m in self._masters])
        return cached[1]

    def _wrap(self, subject: str, key: bytes, epoch: int) -> bytes:
        openers = self._openers(epoch)
        if not openers:
            raise KeyringError(f"epoch {epoch} cannot be wrapped under: the keyring at {self.keyring.path} is past it")
        nonce = os.urandom(NONCE_BYTES)
        return nonce + openers[0].encrypt(nonce, key, _aad(subject, epoch))

    def _unwrap(self, subject: str, epoch: int, wrapped: bytes) -> bytes | None:
        for aead in self._openers(epoch):
            try:
                return aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _aad(subject, epoch))
            except InvalidTag:
                continue
        return None

    def try_unwrap(self, subject: str, epoch: int, wrapped: bytes) -> bytes | None:
        """A wrapped key as found anywhere (a backup, the WAL): the subject key, or None if nothing this process
        holds opens it."""
        return self._unwrap(subject, epoch, wrapped)

    # ------------------------------------------------------------------ the KeyStore protocol
    async def keys_for(self, subjects: Iterable[str], *, create: bool = False) -> dict[str, bytes]:
        wanted = sorted(set(subjects))
        if not wanted:
            return {}
        rows = await self._fetch(wanted)
        out: dict[str, bytes] = {}
        if create and (missing := [x for x in wanted if x not in rows]):
            out = await self._create(missing)
            if others := [x for x in missing if x not in out]:  # erased, or given a key by another writer meanwhile
                rows |= await self._fetch(others)
        unreadable = 0
        for subject, (epoch, wrapped) in rows.items():
            key = self._unwrap(subject, epoch, wrapped)
            if key is not None:
                out[subject] = key
            else:
                unreadable += 1
        if unreadable:  # under a destroyed epoch (a store restored without its keys) or the wrong keyring
            log.warning("pii.keys_unreadable", key_store=self._schema, count=unreadable)
        return out

    async def _fetch(self, subjects: list[str]) -> dict[str, tuple[int, bytes]]:
        rows = await self._pool.fetch(
            f"""SELECT subject_id, epoch, wrapped_key FROM "{self._schema}".subject_keys
                WHERE subject_id = ANY($1::text[])""",
            subjects,
        )
        return {r["subject_id"]: (r["epoch"], r["wrapped_key"]) for r in rows}

    async def _create(self, subjects: list[str]) -> dict[str, bytes]:
        """New keys for these subjects, stored in one statement (an import batch's contacts: one round trip); the
        keys it stored. A subject erased, or given a key by another writer meanwhile, is not among them."""
        s = self._schema
        for attempt in range(3):
            epoch = self._epoch
            if epoch is None or self.keyring.key_of(epoch) is None:  # the keyring moved past it: read both again
                epoch = await self.join()
            keys = {x: AESGCM.generate_key(bit_length=256) for x in subjects}
            try:
                rows = await self._pool.fetch(
                    f"""INSERT INTO "{s}".subject_keys (subject_id, wrapped_key, epoch)
                        SELECT t.subject_id, t.wrapped_key, $3
                        FROM unnest($1::text[], $2::bytea[]) AS t(subject_id, wrapped_key)
                        WHERE NOT EXISTS (SELECT 1 FROM "{s}".erasures e WHERE e.subject_id = t.subject_id)
                        ON CONFLICT (subject_id) DO NOTHING
                        RETURNING subject_id""",
                    subjects,
                    [self._wrap(x, keys[x], epoch) for x in subjects],
                    epoch,
                )
                return {r["subject_id"]: keys[r["subject_id"]] for r in rows}
            except asyncpg.PostgresError as exc:
                if exc.sqlstate != EPOCH_REFUSED or attempt == 2:
                    raise
                await self.join()  # a rotation moved the epoch meanwhile: read it (and the keyring) again
        raise AssertionError("unreachable")

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

    # ------------------------------------------------------------------ rotation
    async def epoch_age_s(self) -> float | None:
        """Seconds since the last completed rotation (None before the store is set up)."""
        age = await self._pool.fetchval(
            f'SELECT extract(epoch FROM now() - rotated_at)::float8 FROM "{self._schema}".keyring_state'
        )
        return None if age is None else float(age)

    async def rotation_due(self, interval_s: float) -> bool:
        """A rotation was left half done, or the last one is ``interval_s`` old."""
        row = await self._pool.fetchrow(
            f"""SELECT rotating_since IS NOT NULL AS resume, extract(epoch FROM now() - rotated_at)::float8 AS age
                FROM "{self._schema}".keyring_state"""
        )
        return row is not None and (row["resume"] or row["age"] >= interval_s)

    async def rotate(self, *, batch: int = 1000, export: bool = True) -> Rotated:
        """One rotation (see the module's doc); resumes one left half done. Run by one process at a time
        (``KeyRotator``); a second one running at once would do the same work, not harm it."""
        s = self._schema
        row = await self._state()
        if row is None:
            raise KeyringError(f"key store {s!r} is not set up")
        current = self._bind(str(row["store_id"])).current(fresh=True)
        target = current.next()
        if row["epoch"] == current.epoch:
            self._agree(row["epoch"], row["fingerprint"])
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('pipelines.keyring'), hashtext($1))", s)
                await conn.execute(
                    f"""UPDATE "{s}".keyring_state SET epoch = $1, fingerprint = $2, rotating_since = now()
                        WHERE epoch = $3""",
                    target.epoch,
                    target.fingerprint(),
                    current.epoch,
                )
        else:
            self._agree(row["epoch"], row["fingerprint"])  # raises unless it is the next epoch: a rotation resumed
        self._epoch = target.epoch
        rewrapped = unreadable = 0
        after = ""
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    f"""SELECT subject_id, epoch, wrapped_key FROM "{s}".subject_keys
                        WHERE epoch <> $1 AND subject_id > $2 ORDER BY subject_id LIMIT $3 FOR UPDATE""",
                    target.epoch,
                    after,
                    batch,
                )
                if not rows:
                    break
                after = rows[-1]["subject_id"]
                updates = []
                for r in rows:
                    key = self._unwrap(r["subject_id"], r["epoch"], r["wrapped_key"])
                    if key is None:
                        unreadable += 1
                    else:
                        updates.append((r["subject_id"], self._wrap(r["subject_id"], key, target.epoch), target.epoch))
                if updates:
                    await conn.executemany(
                        f'UPDATE "{s}".subject_keys SET wrapped_key = $2, epoch = $3 WHERE subject_id = $1', updates
                    )
                rewrapped += len(updates)
        exported = await self.export(self.keyring.export_path) if export else None
        self.keyring.advance(target)  # epoch n's key is destroyed: every copy wrapped under it is noise now
        await self._pool.execute(
            f'UPDATE "{s}".keyring_state SET rotated_at = now(), rotating_since = NULL WHERE epoch = $1', target.epoch
        )
        self._openers(target.epoch)  # the retired epoch's wrapping keys leave this process's memory
        if unreadable:
            log.warning("keyring.unreadable_keys", key_store=s, count=unreadable)
        log.info("keyring.rotated", key_store=s, epoch=target.epoch, rewrapped=rewrapped)
        return Rotated(target.epoch, rewrapped, unreadable, exported)

    # ------------------------------------------------------------------ export and restore
    async def export(self, path: Path) -> Path:
        """Every live key this keyring opens, wrapped under the store's epoch, and every erasure, into ``path``
        (written whole, then moved into place). Useless once its epoch is rotated out, like any other copy."""
        s = self._schema
        state = await self._state()
        if state is None:
            raise KeyringError(f"key store {s!r} is not set up")
        epoch = state["epoch"]
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            header = {
                "format": EXPORT_FORMAT,
                "key_store": s,
                "store_id": str(state["store_id"]),
                "epoch": epoch,
                "fingerprint": state["fingerprint"],
            }
            out.write(json.dumps(header | {"written_at": datetime.now(UTC).isoformat()}) + "\n")
            async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                async for r in conn.cursor(
                    f'SELECT subject_id, epoch, wrapped_key FROM "{s}".subject_keys WHERE epoch = $1', epoch
                ):
                    key = base64.b64encode(r["wrapped_key"]).decode()
                    out.write(json.dumps({"subject": r["subject_id"], "epoch": r["epoch"], "key": key}) + "\n")
                async for r in conn.cursor(f'SELECT subject_id FROM "{s}".erasures'):
                    out.write(json.dumps({"erased": r["subject_id"]}) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        return path

    async def find_export(self) -> Path | None:
        """The rotator's export of this key store beside its keyring: by the store id the (restored) store names, or
        the one export of a store of this schema when the store names none it has (a backup from before ids)."""
        await self.migrate()
        state = await self._state()
        assert state is not None
        own = self._bind(str(state["store_id"])).export_path
        if own.exists():
            return own
        found = sorted(self._dir.glob(f"{self._schema}.*.keys.jsonl"))
        if len(found) > 1:
            raise KeyringError(f"several key exports in {self._dir} for {self._schema!r}: name one (--keys-export)")
        return found[0] if found else None

    @staticmethod
    def read_export(path: Path) -> Export:
        keys: dict[str, tuple[int, bytes]] = {}
        erased: set[str] = set()
        with path.open() as f:
            header = json.loads(f.readline())
            if header.get("format") != EXPORT_FORMAT:
                raise KeyringError(f"{path} is not a key export ({EXPORT_FORMAT})")
            for line in f:
                item = json.loads(line)
                if "erased" in item:
                    erased.add(item["erased"])
                else:
                    keys[item["subject"]] = (int(item["epoch"]), base64.b64decode(item["key"]))
        return Export(str(header["store_id"]), int(header["epoch"]), keys, erased)

    async def restore(self, export: Export | None, erased: Iterable[str] = ()) -> KeysRestored:
        """After the key store's schema was restored from a backup, before any service starts: each live subject's
        key from ``export`` (the newest) or the restored store, whichever this keyring opens; every erasure the
        restored store, the export or ``erased`` (the topics' erasure events) records applied again; everything
        kept wrapped anew under the keyring's current epoch, in one transaction."""
        await self.migrate()
        s = self._schema
        state = await self._state()
        assert state is not None
        if export is not None and export.store_id != str(state["store_id"]):  # a backup from before the store had one
            await self._pool.execute(f'UPDATE "{s}".keyring_state SET store_id = $1', export.store_id)
        ring = self._bind(export.store_id if export is not None else str(state["store_id"]))
        if not ring.exists() and export is None:
            if await self._pool.fetchval(f'SELECT EXISTS (SELECT FROM "{s}".subject_keys)'):
                ring.current()  # raises: keys that nothing can open without their keyring
            ring.create()  # a key store that never held a key: its first epoch
        target = ring.current(fresh=True)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('pipelines.keyring'), hashtext($1))", s)
            gone = set(erased) | {r[0] for r in await conn.fetch(f'SELECT subject_id FROM "{s}".erasures')}
            rows = {
                r[0]: (r[1], r[2])
                for r in await conn.fetch(f'SELECT subject_id, epoch, wrapped_key FROM "{s}".subject_keys')
            }
            kept: dict[str, bytes] = {}
            exported: set[str] = set()  # kept from the export: the restored store lacked it or could not open it
            if export is not None:
                gone |= export.erased
                for subject, (epoch, wrapped) in export.keys.items():
                    if (key := self._unwrap(subject, epoch, wrapped)) is not None:
                        kept[subject] = key
                        if subject not in rows or self._unwrap(subject, *rows[subject]) is None:
                            exported.add(subject)
            lost = 0
            for subject, (epoch, wrapped) in rows.items():
                if subject not in kept and subject not in gone:
                    if (key := self._unwrap(subject, epoch, wrapped)) is None:
                        lost += 1
                    else:
                        kept[subject] = key
            re_erased = len(gone & (set(rows) | set(export.keys if export else ())))
            for subject in gone:
                kept.pop(subject, None)
            await conn.execute(
                f"""UPDATE "{s}".keyring_state SET epoch = $1, fingerprint = $2, rotated_at = now(),
                                                   rotating_since = NULL""",
                target.epoch,
                target.fingerprint(),
            )
            await conn.executemany(
                f"""INSERT INTO "{s}".erasures (subject_id, reason) VALUES ($1, 'applied again by a restore')
                    ON CONFLICT DO NOTHING""",
                [(x,) for x in sorted(gone)],
            )
            await conn.execute(f'DELETE FROM "{s}".subject_keys')
            await conn.executemany(
                f'INSERT INTO "{s}".subject_keys (subject_id, wrapped_key, epoch) VALUES ($1, $2, $3)',
                [(x, self._wrap(x, k, target.epoch), target.epoch) for x, k in sorted(kept.items())],
            )
        self._epoch = target.epoch
        if lost:
            log.error("keyring.restore_lost_keys", key_store=s, count=lost)
        return KeysRestored(target.epoch, len(kept), len(exported & set(kept)), re_erased, lost)


class KeyRotator:
    """Rotates a key store every half of the erasure window, in the one process of the deployment that holds its
    advisory lock (like the relay's: the others stand by and take over when its connection goes)."""

    def __init__(
        self, keys: PostgresKeyStore, database_url: str, *, window_s: float, poll_s: float | None = None
    ) -> None:
        self.keys = keys
        self.interval_s = window_s / 2
        self.poll_s = poll_s if poll_s is not None else min(60.0, max(1.0, self.interval_s / 20))
        self._dsn = database_url
        self._conn: asyncpg.Connection | None = None
        self.is_leader = False
        self.last_error = ""

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.step()
                self.last_error = ""
            except Exception as exc:  # the database or the keyring failed: try again at the next poll
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.error("keyring.rotation_failed", key_store=self.keys.schema, error=self.last_error)
                await self.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)
        await self.close()

    async def step(self) -> Rotated | None:
        """Lead if nobody does; rotate if due; report the epoch's age."""
        if self._conn is None or self._conn.is_closed():
            self._conn = await connect(self._dsn)
            self.is_leader = False
        if not self.is_leader:
            self.is_leader = bool(
                await self._conn.fetchval(
                    "SELECT pg_try_advisory_lock(hashtext('pipelines.keyring.rotator'), hashtext($1))",
                    self.keys.schema,
                )
            )
        if not self.is_leader:
            return None
        done = await self.keys.rotate() if await self.keys.rotation_due(self.interval_s) else None
        if (age := await self.keys.epoch_age_s()) is not None:
            PII_EPOCH_AGE.labels(self.keys.schema).set(age)
        return done

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close()  # the lock goes with the session
        self.is_leader = False


def key_store(pool: asyncpg.Pool, settings: Settings) -> PostgresKeyStore:
    """The deployment's key store as its settings name it."""
    return PostgresKeyStore(
        pool,
        settings.master_key(),
        keyring_dir=settings.keyring_directory(),
        schema=settings.pii_schema,
        previous_master_keys=settings.previous_master_keys(),
    )


async def _main(command: str, path: str | None, service: str) -> None:
    settings = Settings()
    pool = await create_pool(settings.database_url_for(service), min_size=1, max_size=2)
    try:
        keys = key_store(pool, settings)
        await keys.setup()
        if command == "rotate":
            done = await keys.rotate()
            print(f"{keys.schema}: epoch {done.epoch}, {done.rewrapped} keys re-wrapped, {done.unreadable} unreadable")
        elif command == "export":
            written = await keys.export(Path(path) if path else keys.keyring.export_path)
            print(f"{keys.schema}: keys exported to {written}")
        age = await keys.epoch_age_s()
        epoch = keys.keyring.current().epoch
        window = settings.erasure_window_hours * 3600
        print(
            f"{keys.schema}: keyring {keys.keyring.path} at epoch {epoch}, last rotation {age or 0:.0f} s ago "
            f"(rotated every {window / 2:.0f} s; erasure window {window:.0f} s)"
        )
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.store.keystore", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("status", "rotate", "export"))
    parser.add_argument("path", nargs="?", help="export: where to (default: beside the keyring)")
    parser.add_argument("--service", default="leads", help="whose database URL reaches the key store (default leads)")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.command, args.path, args.service))


if __name__ == "__main__":
    main()
