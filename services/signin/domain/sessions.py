"""Sessions, pure: their secrets, ids and timeouts.

- The secret the browser holds (in the board's HttpOnly cookie): 32 random bytes, base64url (43 characters). Only
  its sha256 is kept; the session id (``sid``, in every token minted for it and what a revocation names) is the
  first 32 hex characters of that digest, so neither the id nor the table leads back to the secret.
- The CSRF token: 32 random bytes, base64url, kept with the session (the board checks every state-changing request
  against it).
- A session ends ``idle_s`` after its last token was asked (idle), ``absolute_s`` after it started (absolute), or when
  ended (signed out, everywhere, by an admin, by a password reset, by the user's deactivation).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

SECRET_BYTES = 32
SECRET_PATTERN = r"^[A-Za-z0-9_-]{43}$"  # what a session secret, a CSRF token or a reset link token looks like  # noqa: S105
_SECRET = re.compile(SECRET_PATTERN)


def new_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()


def digest(secret: str) -> str:
    """The sha256 (hex) of a secret: what the tables keep."""
    return hashlib.sha256(secret.encode()).hexdigest()


def session_id(secret_digest: str) -> str:
    return secret_digest[:32]


def well_formed(secret: str) -> bool:
    return bool(_SECRET.fullmatch(secret))


@dataclass(frozen=True)
class Timeouts:
    token_s: int
    idle_s: int
    absolute_s: int


def over(started: datetime, last_seen: datetime, now: datetime, t: Timeouts) -> str | None:
    """Why a session still open is over at ``now`` (``"idle"``, ``"absolute"``), or None while it is live."""
    if now >= started + timedelta(seconds=t.absolute_s):
        return "absolute"
    if now >= last_seen + timedelta(seconds=t.idle_s):
        return "idle"
    return None


def token_expiry(now: datetime, started: datetime, t: Timeouts) -> datetime:
    """A token minted at ``now`` lives ``token_s``, never past the session's absolute end."""
    return min(now + timedelta(seconds=t.token_s), started + timedelta(seconds=t.absolute_s))
