"""Signing per the Standard Webhooks specification (https://www.standardwebhooks.com, "Signature scheme").

A secret is ``whsec_`` + base64 of 24–64 random bytes (the service makes 32). Each delivery carries ``webhook-id``
(the event's id: the same on every attempt, so a receiver drops a repeat), ``webhook-timestamp`` (integer Unix
seconds of this attempt) and ``webhook-signature``: ``v1,`` + base64 of HMAC-SHA256 under the secret's bytes of
``<id>.<timestamp>.<body>``; during a rotation window, two space-separated (the new secret's, then the previous
one's), as the spec allows, so a receiver still holding the previous secret verifies too."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_bytes(secret: str) -> bytes:
    """The key of a ``whsec_`` secret; ValueError when it is not one."""
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ and base64") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return key


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header's value for one attempt."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(key: bytes, msg_id: str, timestamp: int, body: bytes, *previous: bytes) -> dict[str, str]:
    """The ``webhook-*`` headers: signed under ``key`` and each of ``previous`` (a rotation window's old secret)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(k, msg_id, timestamp, body) for k in (key, *previous)),
    }
