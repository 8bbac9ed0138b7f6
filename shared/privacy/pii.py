"""Personal data under per-subject keys, so deleting a key forgets that person everywhere (crypto-shredding).

An event's personal fields are stored and published as self-describing tokens
``pii:v1:<subject id>:<base64url(nonce ‖ AES-256-GCM ciphertext)>``; the plaintext is the field's JSON.
Each subject (a lead, a customer contact) has its own random key, kept wrapped by the master key from the
settings together with an epoch key kept outside the database (``shared.store.keystore``, ``shared.privacy.keyring``). Erasing a
subject deletes its key and records the erasure: every stored event and every Kafka message holding its tokens
becomes unreadable, and those fields read back as ``None``; the copies of its wrapped key that PostgreSQL keeps (WAL,
backups) become unreadable when the epoch rotates, within the erasure window (decision 0015). An erased subject gets
no new key: personal data sent for it later is dropped (stored as ``None``), never stored readable.

Keys live in one schema shared by the services (``pii`` by default): the deals service must read the contact a
lead brought, and one erasure must reach every service. It is the one table services share; only this module
touches it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.core.events import DomainEvent, registry

TOKEN_PREFIX = "pii:v1:"  # noqa: S105 - a marker, not a secret
NONCE_BYTES = 12
KEY_BYTES = 32


class KeyStore(Protocol):
    async def keys_for(self, subjects: Iterable[str], *, create: bool = False) -> dict[str, bytes]:
        """The keys of these subjects (created when missing and ``create``; never for an erased subject)."""
        ...

    async def erase(self, subject: str, *, reason: str = "") -> bool:
        """Delete the subject's key; True if there was one. Recorded, and final."""
        ...

    async def is_erased(self, subject: str) -> bool: ...


class InMemoryKeyStore:
    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}
        self._erased: set[str] = set()

    async def keys_for(self, subjects: Iterable[str], *, create: bool = False) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for s in set(subjects):
            if create and s not in self._keys and s not in self._erased:
                self._keys[s] = AESGCM.generate_key(bit_length=256)
            if s in self._keys:
                out[s] = self._keys[s]
        return out

    async def erase(self, subject: str, *, reason: str = "") -> bool:
        self._erased.add(subject)
        return self._keys.pop(subject, None) is not None

    async def is_erased(self, subject: str) -> bool:
        return subject in self._erased


def keys_of(store: object) -> KeyStore | None:
    """The key store an event store seals with (both stores have one; without it, None)."""
    personal = getattr(store, "personal_data", None)
    return personal.keys if isinstance(personal, PersonalData) else None


def is_token(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)


def without_personal_data(data: dict[str, Any], fields: Iterable[str] | None = None) -> dict[str, Any]:
    """Stored data with every sealed field as None: what code that needs no personal data reads.
    ``fields``: the only fields that can hold a token (None: any). Data without a sealed field (most events)
    comes back as it is, not copied: it is on every read's path."""
    for k in data if fields is None else fields:
        v = data.get(k)
        if v.__class__ is str and v.startswith(TOKEN_PREFIX):
            return {k: None if is_token(v) else v for k, v in data.items()}
    return data


def parse_stored(event_type: str, schema_version: int, data: dict[str, Any]) -> DomainEvent:
    """The typed event of stored data, upcast to the current schema, personal fields unopened (None).

    Data of the class's current schema version was sealed by that class, so only its ``personal_fields`` can
    hold a token (a class that changes them bumps its schema version); older data is searched whole."""
    cls = registry.get(event_type)
    if schema_version == cls.schema_version:  # registry.parse's steps for it, without looking the class up again
        event: DomainEvent = cls.__pydantic_validator__.validate_python(
            without_personal_data(data, cls.personal_fields)
        )
        return event
    return registry.parse(event_type, schema_version, without_personal_data(data))


def _subject_of(token: str) -> str:
    return token[len(TOKEN_PREFIX) :].rsplit(":", 1)[0]


def encrypt_value(subject: str, key: bytes, value: Any, cipher: AESGCM | None = None) -> str:
    """``value``'s JSON sealed under the subject's ``key`` (``cipher``: an ``AESGCM`` of that key, reused)."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = (cipher or AESGCM(key)).encrypt(nonce, json.dumps(value, ensure_ascii=False).encode(), subject.encode())
    return f"{TOKEN_PREFIX}{subject}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"


def decrypt_token(token: str, keys: Mapping[str, bytes]) -> Any:
    """The field's value, or None when its subject's key is gone."""
    subject, b64 = token[len(TOKEN_PREFIX) :].rsplit(":", 1)
    key = keys.get(subject)
    if key is None:
        return None
    raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    return json.loads(AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], subject.encode()))


class PersonalData:
    """Seals an event's personal fields for storage and opens stored data for readers allowed to see it."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    async def seal(
        self, events: Iterable[DomainEvent], dumped: Sequence[Mapping[str, Any] | None] | None = None
    ) -> list[dict[str, Any]]:
        """Each event as JSON-ready data, its personal fields encrypted under its subject's key (one key store round
        trip for all their subjects, one cipher per subject). ``dumped``: beside each event its
        ``model_dump(mode="json")`` when the caller has it (None: dumped here); not changed."""
        events = list(events)
        subjects = {s for e in events if e.personal_fields and (s := e.subject_id())}
        keys = await self.keys.keys_for(subjects, create=True) if subjects else {}
        ciphers: dict[str, AESGCM] = {}
        out = []
        for i, e in enumerate(events):
            given = dumped[i] if dumped is not None else None
            data = dict(given) if given is not None else e.model_dump(mode="json")
            out.append(data)
            if not e.personal_fields:
                continue
            subject = e.subject_id()
            key = keys.get(subject) if subject else None
            cipher = None
            if subject and key and (cipher := ciphers.get(subject)) is None:
                cipher = ciphers[subject] = AESGCM(key)
            for f in e.personal_fields:
                if data.get(f) is not None:
                    # no key: no subject id, or the subject was erased; the value is not kept
                    data[f] = encrypt_value(subject, key, data[f], cipher) if subject and key else None
        return out

    async def open(self, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Stored data with every token replaced by its plaintext (None for an erased subject)."""
        items = list(items)
        subjects = {_subject_of(v) for d in items for v in d.values() if is_token(v)}
        keys = await self.keys.keys_for(subjects) if subjects else {}
        return [{k: decrypt_token(v, keys) if is_token(v) else v for k, v in d.items()} for d in items]
