"""Secrets sealed at rest: AES-256-GCM under a key derived from the master key (``PIPELINES_PII_MASTER_KEY``:
``HMAC-SHA256(master, "pipelines.webhooks.secrets")``), the subscription's id as associated data (a sealed secret
copied onto another subscription does not open). Stored as ``nonce || ciphertext``; never logged, never in an event."""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

LABEL = b"pipelines.webhooks.secrets"
NONCE_BYTES = 12


class Sealer:
    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(hmac.new(master_key, LABEL, hashlib.sha256).digest())

    def seal(self, sid: uuid.UUID, secret: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), sid.bytes)

    def open(self, sid: uuid.UUID, sealed: bytes) -> str:
        return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], sid.bytes).decode()
