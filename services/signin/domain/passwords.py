"""Passwords: argon2id (``argon2-cffi``), its parameters in one place (``PARAMETERS``), and what a new password
must be.

- A stored hash made with other parameters is rehashed with these at the next successful sign-in (``needs_rehash``),
  so raising them reaches every user who signs in.
- Verifying for an email no one has (or a user without a password) verifies against a dummy hash made with the same
  parameters (``verify(None, …)``): the same work, the same time, the same answer.
- A password is never logged, kept in clear, nor put in an event or a topic; only the hash is kept (the ``credentials``
  table of the sign-in service's own schema).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from shared.core import normalize

MIN_CHARS, MAX_CHARS = 12, 128


@dataclass(frozen=True)
class Parameters:
    """argon2id's costs: RFC 9106's second recommended option (64 MiB, 3 passes), 2 lanes (our hosts' CPUs)."""

    time_cost: int = 3
    memory_cost_kib: int = 64 * 1024
    parallelism: int = 2
    hash_len: int = 32
    salt_len: int = 16


PARAMETERS = Parameters()  # the one place: a change here rehashes each user's password at their next sign-in
FAST = Parameters(time_cost=1, memory_cost_kib=1024, parallelism=1)  # unit tests only


class Passwords:
    def __init__(self, parameters: Parameters = PARAMETERS) -> None:
        p = parameters
        self._hasher = PasswordHasher(
            time_cost=p.time_cost,
            memory_cost=p.memory_cost_kib,
            parallelism=p.parallelism,
            hash_len=p.hash_len,
            salt_len=p.salt_len,
            type=Type.ID,
        )
        self._dummy = self._hasher.hash(secrets.token_urlsafe(24))  # what an unknown email is checked against

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` is the one ``stored`` was made from; with no hash, the same work and False."""
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            return True


def policy_problem(password: str, email: str | None) -> str | None:
    """Why ``password`` may not be a user's new password (None: it may): 12 to 128 characters, not their email."""
    if not MIN_CHARS <= len(password) <= MAX_CHARS:
        return f"a password has {MIN_CHARS} to {MAX_CHARS} characters"
    if email and normalize.email(password.strip()) == normalize.email(email):
        return "a password may not be the email"
    return None
