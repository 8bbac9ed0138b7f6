"""The epoch keyring (decision 0015): a one-way ratchet kept in one file, written by one rotator, read by every
process; the wrapping key needs both the master key and the epoch key."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.privacy.keyring import EpochKey, Keyring, KeyringError, next_epoch_key, wrapping_key

MASTER = b"m" * 32


def test_the_ratchet_goes_one_way_and_each_epoch_wraps_with_its_own_key() -> None:
    first = EpochKey(1, b"e" * 32)
    second, third = first.next(), first.next().next()
    assert second == EpochKey(2, next_epoch_key(first.key, 1)) and third.epoch == 3
    assert len({first.key, second.key, third.key}) == 3
    assert first.next() == second, "deterministic: a process derives the next epoch's key itself"
    keys = {wrapping_key(MASTER, k.key, k.epoch) for k in (first, second, third)}
    assert len(keys) == 3
    assert wrapping_key(MASTER, first.key, 1) != wrapping_key(b"o" * 32, first.key, 1), "the master key counts"
    assert wrapping_key(MASTER, first.key, 1) not in {MASTER, first.key}, "neither half alone is the wrapping key"
    nonce = os.urandom(12)
    sealed = AESGCM(wrapping_key(MASTER, first.key, 1)).encrypt(nonce, b"k" * 32, b"1:lead-1")
    for other in (MASTER, second.key, wrapping_key(MASTER, second.key, 2), wrapping_key(MASTER, first.key, 2)):
        with pytest.raises(InvalidTag):
            AESGCM(other).decrypt(nonce, sealed, b"1:lead-1")
    assert first.fingerprint() != second.fingerprint() and first.key.hex() not in first.fingerprint()


def test_processes_starting_together_write_one_keyring_and_it_is_private(tmp_path: Path) -> None:
    a, b = Keyring(tmp_path / "ring", "pii"), Keyring(tmp_path / "ring", "pii")
    with pytest.raises(KeyringError, match="no keyring at"):
        a.current()
    first = a.create()
    assert b.create() == first, "the second process reads the first one's keyring"
    assert first.epoch == 1
    assert stat.S_IMODE(a.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(a.directory.stat().st_mode) == 0o700
    assert [p.name for p in a.directory.iterdir()] == ["pii.epoch"], "no temporary file left"
    assert Keyring(tmp_path / "ring", "other").exists() is False, "one keyring per key store"


def test_advancing_destroys_the_retired_key_and_every_process_picks_the_new_one_up(tmp_path: Path) -> None:
    rotator = Keyring(tmp_path, "pii", recheck_s=0)
    reader = Keyring(tmp_path, "pii", recheck_s=3600)  # another process, which looked a moment ago
    first = rotator.create()
    assert reader.current() == first
    assert reader.key_of(2) == first.next().key, "during a rotation the next epoch is derived, not handed out"
    rotator.advance(first.next())
    rotator.advance(first.next())  # a rotation resumed after this step: nothing to do
    with pytest.raises(KeyringError, match="cannot go to 4"):
        rotator.advance(first.next().next().next())
    assert rotator.current() == first.next()
    assert reader.current() == first, "cached until it looks again"
    assert reader.key_of(3) == first.next().next().key, "an epoch past what it can derive makes it look again"
    assert reader.current() == first.next()
    assert reader.key_of(1) is None, "a retired epoch's key is gone"
    files = list(tmp_path.iterdir())
    assert [p.name for p in files] == ["pii.epoch"], "the retired file was scrubbed and removed"
    on_disk = b"".join(p.read_bytes() for p in files)
    assert base64.b64encode(first.key) not in on_disk and json.loads(on_disk)["epoch"] == 2


def test_a_malformed_keyring_is_refused(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, "pii")
    ring.path.write_text('{"epoch": 1, "key": "c2hvcnQ="}')
    with pytest.raises(KeyringError, match="malformed"):
        ring.current()
    ring.path.write_text("not json")
    with pytest.raises(KeyringError, match="cannot be read"):
        ring.current(fresh=True)
