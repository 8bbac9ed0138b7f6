"""The key store's epochs on a real PostgreSQL (decision 0015): several processes share one keyring; one elected
rotator re-wraps every live key under the next epoch and then destroys the old one; a process still holding the
old epoch never writes a key under it and picks the new one up; keys from before epochs existed and a replaced
master key are re-wrapped by the next rotation; a keyring that is not the store's is refused."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.ops.stack import Endpoints
from shared.privacy.keyring import Keyring, KeyringError
from shared.store.keystore import KeyRotator, PostgresKeyStore
from shared.store.migrations import apply

pytestmark = [pytest.mark.pg]

MASTER, NEW_MASTER = b"m" * 32, b"n" * 32


@pytest.fixture
def ring(tmp_path: Path) -> Path:
    return tmp_path / "keyring"


def process(pool: asyncpg.Pool, schema: str, ring: Path, *, master: bytes = MASTER, **kw: object) -> PostgresKeyStore:
    """The key store as one process sees it: its own view of the keyring (looked at again only when it must)."""
    return PostgresKeyStore(pool, master, keyring_dir=ring, schema=schema, recheck_s=3600, **kw)


async def epochs(pool: asyncpg.Pool, schema: str) -> dict[str, int]:
    return {r[0]: r[1] for r in await pool.fetch(f'SELECT subject_id, epoch FROM "{schema}".subject_keys')}


async def test_a_process_holding_the_old_epoch_never_wraps_under_it_and_picks_the_new_one_up(
    pg_pool: asyncpg.Pool, pg_schema: str, ring: Path
) -> None:
    rotator, other = process(pg_pool, pg_schema, ring), process(pg_pool, pg_schema, ring)
    await rotator.setup()
    await other.setup()
    first = await other.keys_for(["lead-1", "lead-2"], create=True)
    assert await epochs(pg_pool, pg_schema) == {"lead-1": 1, "lead-2": 1}

    # the rotator's switch, held open: an insert of the old epoch waits for it, then is refused and wraps again
    async with pg_pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('pipelines.keyring'), hashtext($1))", pg_schema)
        await conn.execute(
            f'UPDATE "{pg_schema}".keyring_state SET epoch = 2, fingerprint = $1',
            rotator.keyring.current().next().fingerprint(),
        )
        creating = asyncio.create_task(other.keys_for(["lead-3"], create=True))
        await asyncio.sleep(0.5)
        assert not creating.done(), "it waits for the switch"
    assert set(await creating) == {"lead-3"}
    assert (await epochs(pg_pool, pg_schema))["lead-3"] == 2, "written under the new epoch, derived by itself"
    await pg_pool.execute(f'UPDATE "{pg_schema}".keyring_state SET rotating_since = now()')

    done = await rotator.rotate()  # resumes the rotation begun above
    assert (done.epoch, done.rewrapped, done.unreadable) == (2, 2, 0)
    assert await epochs(pg_pool, pg_schema) == {"lead-1": 2, "lead-2": 2, "lead-3": 2}
    assert other.keyring.current().epoch == 1, "the other process has not looked at the keyring since"
    assert await other.keys_for(["lead-1", "lead-2"]) == first, "epoch 2 it derives from epoch 1"
    assert (await rotator.rotate()).epoch == 3
    assert await other.keys_for(["lead-1", "lead-2"]) == first, "epoch 3 it cannot derive: it reads the keyring"
    assert other.keyring.current().epoch == 3 and list(other._aeads) == [3], "epoch 1's key left its memory"
    await other.keys_for(["lead-4"], create=True)  # its cached epoch (1) is refused: it joins again
    assert (await epochs(pg_pool, pg_schema))["lead-4"] == 3


async def test_keys_created_during_a_rotation_are_all_readable_after_it(
    pg_pool: asyncpg.Pool, pg_schema: str, ring: Path
) -> None:
    rotator = process(pg_pool, pg_schema, ring)
    await rotator.setup()
    writers = [process(pg_pool, pg_schema, ring) for _ in range(4)]
    for w in writers:
        await w.setup()
    await rotator.keys_for([f"old-{i}" for i in range(300)], create=True)

    async def write(w: PostgresKeyStore, n: int) -> None:
        for i in range(25):
            await w.keys_for([f"new-{n}-{i}-{j}" for j in range(4)], create=True)

    results = await asyncio.gather(rotator.rotate(batch=50), *(write(w, n) for n, w in enumerate(writers)))
    assert results[0].unreadable == 0
    stored = await epochs(pg_pool, pg_schema)
    assert len(stored) == 300 + 4 * 25 * 4
    assert set(stored.values()) == {2}, "nothing is left under the destroyed epoch"
    fresh = process(pg_pool, pg_schema, ring)
    await fresh.setup()
    assert len(await fresh.keys_for(stored)) == len(stored)


async def test_keys_from_before_epochs_and_a_replaced_master_key_are_rewrapped_by_the_next_rotation(
    pg_pool: asyncpg.Pool, pg_schema: str, ring: Path
) -> None:
    old = process(pg_pool, pg_schema, ring)
    await apply(pg_pool, pg_schema, old.migrations()[:1])  # a store made before epochs existed
    legacy_key = os.urandom(32)
    nonce = os.urandom(12)
    legacy = nonce + AESGCM(MASTER).encrypt(nonce, legacy_key, b"lead-old")  # as the store wrapped before epochs
    await pg_pool.execute(
        f'INSERT INTO "{pg_schema}".subject_keys (subject_id, wrapped_key) VALUES ($1, $2)', "lead-old", legacy
    )
    await old.setup()  # the upgrade: epoch 1, and a first rotation due at once
    assert await old.keys_for(["lead-old"]) == {"lead-old": legacy_key}, "opened with the master key alone"
    assert await old.rotation_due(24 * 3600)
    await old.keys_for(["lead-new"], create=True)

    # the master key replaced (the old one was in every process's settings): one rotation re-wraps everything
    replaced = process(pg_pool, pg_schema, ring, master=NEW_MASTER, previous_master_keys=[MASTER])
    await replaced.setup()
    done = await replaced.rotate()
    assert (done.rewrapped, done.unreadable) == (2, 0)
    after = process(pg_pool, pg_schema, ring, master=NEW_MASTER)  # the previous master key removed
    await after.setup()
    assert (await after.keys_for(["lead-old"]))["lead-old"] == legacy_key
    assert after.try_unwrap("lead-old", 0, legacy) is None, "the old master key is no longer needed, nor given"
    assert not await after.rotation_due(24 * 3600)


async def test_a_keyring_that_is_not_the_stores_is_refused(
    pg_pool: asyncpg.Pool, pg_schema: str, ring: Path, tmp_path: Path
) -> None:
    keys = process(pg_pool, pg_schema, ring)
    await keys.setup()
    Keyring(tmp_path / "elsewhere", keys.keyring.name).create()  # another deployment's keyring, or a wrong copy
    with pytest.raises(KeyringError, match="another deployment's"):
        await process(pg_pool, pg_schema, tmp_path / "elsewhere").setup()
    keys.keyring.path.rename(ring / "moved")
    with pytest.raises(KeyringError, match="no keyring at"):
        await process(pg_pool, pg_schema, ring).setup()  # never a new one over a store that has an epoch


async def test_one_rotator_leads_and_rotates_when_half_the_window_has_passed(
    pg_pool: asyncpg.Pool, pg_schema: str, ring: Path, endpoints: Endpoints
) -> None:
    keys = process(pg_pool, pg_schema, ring)
    await keys.setup()
    one = KeyRotator(keys, endpoints.database_url, window_s=2.0)
    two = KeyRotator(process(pg_pool, pg_schema, ring), endpoints.database_url, window_s=2.0)
    try:
        assert await one.step() is None and one.is_leader, "not due yet"
        assert await two.step() is None and not two.is_leader, "the other stands by"
        await asyncio.sleep(1.1)
        assert (await one.step()) is not None
        assert await one.step() is None, "not due again until another half window"
        await one.close()  # the leader goes: the other takes over
        assert await two.step() is None and two.is_leader
    finally:
        await one.close()
        await two.close()
