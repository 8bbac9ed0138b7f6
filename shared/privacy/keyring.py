"""The epoch keyring: the second half of every wrapping key, kept outside the database and ratcheted one way.

A subject's key (``shared.privacy.pii``) is stored wrapped by ``HKDF(master key ‖ epoch key, epoch)``: the master key comes
from the settings, the epoch key from this keyring, so neither alone unwraps anything. The keyring is one file per
key store, ``<directory>/<key store>.epoch`` (the directory is ``PIPELINES_KEYRING_DIR``: a volume of its own that
every process of a deployment mounts, never in a backup), holding only the current epoch's number and key.

Each rotation (``shared.store.keystore``) re-wraps every live subject key under the next epoch, then replaces the file
with the next epoch's key, which is ``HMAC(current key, epoch + 1)``: one way, so nothing left (this file, the
database, the settings, a backup) gives a retired epoch's key back, and every copy of a wrapped key made before
the rotation (WAL, dead tuples, replicas, backups) is noise from then on. Until then a process holding epoch ``n``
opens keys wrapped under ``n`` and ``n + 1`` (it derives the next key itself), so the rotator never has to hand
out a key. Decision 0015.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
RATCHET_LABEL = b"pipelines.keyring.ratchet.v1:"
WRAP_LABEL = b"pipelines.pii.wrap.v1:"
FINGERPRINT_LABEL = b"pipelines.keyring.fingerprint.v1:"


class KeyringError(RuntimeError):
    """The keyring is missing, unreadable, or not the one the key store was wrapped with; the message says what to do."""


def next_epoch_key(key: bytes, epoch: int) -> bytes:
    """The key of epoch ``epoch + 1`` from epoch ``epoch``'s: HMAC-SHA256, which cannot be run backwards."""
    return hmac.new(key, RATCHET_LABEL + str(epoch + 1).encode(), hashlib.sha256).digest()


def wrapping_key(master_key: bytes, epoch_key: bytes, epoch: int) -> bytes:
    """The AES-256 key that wraps subject keys during ``epoch``: both halves are needed."""
    hkdf = HKDF(algorithm=SHA256(), length=KEY_BYTES, salt=None, info=WRAP_LABEL + str(epoch).encode())
    return hkdf.derive(master_key + epoch_key)


@dataclass(frozen=True)
class EpochKey:
    epoch: int
    key: bytes = field(repr=False)

    def next(self) -> EpochKey:
        return EpochKey(self.epoch + 1, next_epoch_key(self.key, self.epoch))

    def fingerprint(self) -> str:
        """What the database keeps to recognise this keyring (a keyring of another deployment, an old copy): a
        one-way value of the key, which gives the key back no more than a hash does."""
        return hmac.new(self.key, FINGERPRINT_LABEL + str(self.epoch).encode(), hashlib.sha256).hexdigest()[:32]


class Keyring:
    """One key store's keyring file. Reads are cached and the file looked at again at most every ``recheck_s``
    (a rotation elsewhere is picked up within that); only the elected rotator writes it (``advance``)."""

    def __init__(self, directory: str | os.PathLike[str], name: str, *, recheck_s: float = 1.0) -> None:
        self.directory = Path(directory)
        self.name = name
        self.path = self.directory / f"{name}.epoch"
        self.recheck_s = recheck_s
        self._cached: EpochKey | None = None
        self._stat: tuple[int, int, int] | None = None
        self._checked = 0.0

    def __repr__(self) -> str:
        return f"Keyring({str(self.path)!r})"

    @property
    def export_path(self) -> Path:
        """Where the rotator writes the live subject keys, wrapped under the new epoch, after each rotation."""
        return self.directory / f"{self.name}.keys.jsonl"

    def exists(self) -> bool:
        return self.path.exists()

    def current(self, *, fresh: bool = False) -> EpochKey:
        """The current epoch and its key (read again when the file changed, or at once with ``fresh``)."""
        now = time.monotonic()
        if self._cached is not None and not fresh and now - self._checked < self.recheck_s:
            return self._cached
        self._checked = now
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise KeyringError(
                f"no keyring at {self.path}: PIPELINES_KEYRING_DIR must be the deployment's keyring volume, the same "
                "for every process (without it no personal data can be read; decision 0015)"
            ) from None
        stat = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cached is None or stat != self._stat:
            self._cached, self._stat = self._read(), stat
        return self._cached

    def key_of(self, epoch: int) -> bytes | None:
        """Epoch ``epoch``'s key when it can still be had (the current one or the next); None once retired."""
        for attempt in (False, True):
            current = self.current(fresh=attempt)
            if epoch == current.epoch:
                return current.key
            if epoch == current.epoch + 1:
                return current.next().key
            if epoch < current.epoch:
                return None
        return None

    def create(self) -> EpochKey:
        """The first epoch's random key, written unless another process wrote it first (then that one is read)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        first = EpochKey(1, secrets.token_bytes(KEY_BYTES))
        tmp = self._write_tmp(first)
        try:
            os.link(tmp, self.path)  # fails if the file exists: two processes starting together write one keyring
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        _fsync_dir(self.directory)
        return self.current(fresh=True)

    def advance(self, to: EpochKey) -> None:
        """Replace the current epoch's key with the next one's and scrub the old file's bytes. Only the rotator
        calls this, once every live subject key is wrapped under ``to``."""
        current = self.current(fresh=True)
        if current.epoch == to.epoch and current.key == to.key:
            return  # done before (a rotation resumed after this step)
        if to.epoch != current.epoch + 1 or current.next() != to:
            raise KeyringError(f"the keyring at {self.path} is at epoch {current.epoch}: it cannot go to {to.epoch}")
        tmp = self._write_tmp(to)
        retired = self.directory / f".{self.name}.epoch.retired"
        with contextlib.suppress(FileNotFoundError):
            retired.unlink()
        os.link(self.path, retired)  # the old key's inode, kept only to overwrite it below
        os.replace(tmp, self.path)
        _fsync_dir(self.directory)
        _scrub(retired)
        _fsync_dir(self.directory)
        self.current(fresh=True)

    def _read(self) -> EpochKey:
        try:
            doc = json.loads(self.path.read_text())
            key = base64.b64decode(doc["key"], validate=True)
            epoch = int(doc["epoch"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyringError(f"the keyring at {self.path} cannot be read: {type(exc).__name__}") from None
        if len(key) != KEY_BYTES or epoch < 1:
            raise KeyringError(f"the keyring at {self.path} is malformed")
        return EpochKey(epoch, key)

    def _write_tmp(self, key: EpochKey) -> Path:
        tmp = self.directory / f".{self.name}.epoch.{uuid.uuid4().hex}.tmp"
        doc = {
            "epoch": key.epoch,
            "key": base64.b64encode(key.key).decode(),
            "written_at": datetime.now(UTC).isoformat(),
            "note": "the current epoch key of the personal-data key store; never back this file up (decision 0015)",
        }
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, json.dumps(doc).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return tmp


def _scrub(path: Path) -> None:
    """Overwrite a retired key file in place, then remove it: on a filesystem that writes in place the old key's
    blocks no longer hold it (on copy-on-write or flash storage this is best effort: decision 0015)."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        os.write(fd, b"\0" * size)
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
