"""The keys API tokens are signed and verified with: Ed25519 (JWT ``alg`` ``EdDSA``), decision 0022.

- ``SigningKeys`` (key id → private key, and the active key id new tokens are signed with) is held by the sign-in
  service and by an operator's ``pipelines token`` only: ``PIPELINES_JWT_SIGNING_KEYS`` (JSON object, key id →
  base64url of the 32-byte private seed) and ``PIPELINES_JWT_ACTIVE_KID`` (optional with a single key).
- ``PublicKeys`` (key id → public key) is what every API, the board and the notifier verify with: a JWKS document
  (``PIPELINES_JWT_PUBLIC_KEYS``, and/or read from ``PIPELINES_JWKS_URL`` by ``shared.edge.auth.TokenVerifier``).
  ``from_jwks`` is strict: only ``kty`` OKP / ``crv`` Ed25519 keys with a 32-byte ``x`` and a ``kid`` of 1..64
  characters; a key with a private member (``d``) is refused, so an API handed a private key by mistake does not
  start rather than quietly being able to sign.
- ``python -m shared.edge.keys new KID`` prints a new pair as shell lines (``scripts/stack secrets`` uses it).
"""

from __future__ import annotations

import base64
import binascii
import json
import shlex
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.ops.settings import Settings, SettingsError

ALGORITHM = "EdDSA"
SEED_BYTES = 32
MAX_KID_CHARS = 64
MAX_KEYS = 32  # keys in one JWKS document or one signing-keys setting (a rotation needs two or three)
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Base64url without padding (RFC 7515); ``ValueError`` for anything else."""
    if not isinstance(text, str) or not text.isascii() or "=" in text:
        raise ValueError("not base64url (RFC 7515: no padding)")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def _check_kid(kid: object, where: str) -> str:
    if not isinstance(kid, str) or not 1 <= len(kid) <= MAX_KID_CHARS or not kid.isprintable():
        raise SettingsError(f"{where}: a key id (kid) must be a string of 1 to {MAX_KID_CHARS} printable characters")
    return kid


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


class PublicKeys(Mapping[str, Ed25519PublicKey]):
    """Key id → Ed25519 public key: what tokens are verified with. Immutable."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey] | None = None) -> None:
        self._keys = dict(keys or {})
        for kid, key in self._keys.items():
            _check_kid(kid, "public keys")
            if not isinstance(key, Ed25519PublicKey):
                raise SettingsError(f"public key {kid!r} is not an Ed25519 public key")

    def __getitem__(self, kid: str) -> Ed25519PublicKey:
        return self._keys[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKeys):
            return NotImplemented
        return {k: _raw_public(v) for k, v in self.items()} == {k: _raw_public(v) for k, v in other.items()}

    def __hash__(self) -> int:
        return hash(frozenset((k, _raw_public(v)) for k, v in self.items()))

    def __repr__(self) -> str:
        return f"PublicKeys({sorted(self._keys)})"

    def union(self, other: Mapping[str, Ed25519PublicKey]) -> PublicKeys:
        """Both sets of keys; a key id in both must name the same key."""
        for kid in self._keys.keys() & other.keys():
            if _raw_public(self._keys[kid]) != _raw_public(other[kid]):
                raise SettingsError(f"key id {kid!r} names two different public keys")
        return PublicKeys({**self._keys, **other})

    def jwks(self) -> dict[str, Any]:
        """The JWKS document (RFC 7517, RFC 8037) of these keys."""
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": b64url(_raw_public(key)),
                    "kid": kid,
                    "alg": ALGORITHM,
                    "use": "sig",
                }
                for kid, key in self._keys.items()
            ]
        }

    @classmethod
    def from_jwks(cls, doc: Mapping[str, Any] | str | bytes) -> PublicKeys:
        """The keys of a JWKS document (a dict or its JSON); ``SettingsError`` naming what is wrong."""
        if isinstance(doc, str | bytes):
            try:
                doc = json.loads(doc)
            except (ValueError, UnicodeDecodeError) as exc:
                raise SettingsError("JWKS: not JSON") from exc
        if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
            raise SettingsError('JWKS: must be a JSON object {"keys": [...]}')
        if len(doc["keys"]) > MAX_KEYS:
            raise SettingsError(f"JWKS: more than {MAX_KEYS} keys")
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in doc["keys"]:
            kid, key = _public_jwk(jwk)
            if kid in keys:
                raise SettingsError(f"JWKS: key id {kid!r} appears twice")
            keys[kid] = key
        return cls(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> PublicKeys:
        """``PIPELINES_JWT_PUBLIC_KEYS`` (none when unset)."""
        if not settings.jwt_public_keys:
            return cls()
        try:
            return cls.from_jwks(settings.jwt_public_keys)
        except SettingsError as exc:
            raise SettingsError(f"PIPELINES_JWT_PUBLIC_KEYS: {exc}") from None


def _public_jwk(jwk: object) -> tuple[str, Ed25519PublicKey]:
    if not isinstance(jwk, Mapping):
        raise SettingsError("JWKS: every key must be a JSON object")
    kid = _check_kid(jwk.get("kid"), "JWKS")
    if private := PRIVATE_MEMBERS & jwk.keys():
        raise SettingsError(
            f"JWKS: key {kid!r} holds a private member ({', '.join(sorted(private))}): a private key must never be "
            "given to a process that only verifies tokens; give it the public key only (without 'd')"
        )
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise SettingsError(f"JWKS: key {kid!r} must be kty OKP, crv Ed25519")
    if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
        raise SettingsError(f"JWKS: key {kid!r} must be alg EdDSA, use sig (when given)")
    try:
        x = b64url_decode(jwk.get("x"))  # type: ignore[arg-type]
    except ValueError:
        x = b""
    if len(x) != SEED_BYTES:
        raise SettingsError(f"JWKS: key {kid!r}: x must be the base64url of 32 bytes")
    return kid, Ed25519PublicKey.from_public_bytes(x)


class SigningKeys:
    """Key id → Ed25519 private key, and the active key id: what tokens are signed with. Never give it to an API."""

    def __init__(self, keys: Mapping[str, Ed25519PrivateKey], active: str | None = None) -> None:
        if not keys:
            raise SettingsError("no signing keys: set PIPELINES_JWT_SIGNING_KEYS (python -m shared.edge.keys new KID)")
        if len(keys) > MAX_KEYS:
            raise SettingsError(f"more than {MAX_KEYS} signing keys")
        for kid, key in keys.items():
            _check_kid(kid, "signing keys")
            if not isinstance(key, Ed25519PrivateKey):
                raise SettingsError(f"signing key {kid!r} is not an Ed25519 private key")
        if active is None:
            if len(keys) != 1:
                raise SettingsError("set PIPELINES_JWT_ACTIVE_KID to the key id new tokens are signed with")
            active = next(iter(keys))
        if active not in keys:
            raise SettingsError(f"PIPELINES_JWT_ACTIVE_KID {active!r} is not one of PIPELINES_JWT_SIGNING_KEYS")
        self._keys = dict(keys)
        self.active = active

    def __repr__(self) -> str:  # never the keys themselves
        return f"SigningKeys({sorted(getattr(self, '_keys', {}))}, active={getattr(self, 'active', None)!r})"

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A JWT of ``claims`` signed with the active key, naming it in the ``kid`` header."""
        return jwt.encode(dict(claims), self._keys[self.active], algorithm=ALGORITHM, headers={"kid": self.active})

    def public(self) -> PublicKeys:
        return PublicKeys({kid: key.public_key() for kid, key in self._keys.items()})

    def jwks(self) -> dict[str, Any]:
        """The public keys' JWKS document (what ``/.well-known/jwks.json`` serves)."""
        return self.public().jwks()

    def seeds(self) -> dict[str, str]:
        """The setting's value: key id → base64url seed. Secret: for ``scripts/stack secrets`` and the like."""
        return {kid: b64url(key.private_bytes_raw()) for kid, key in self._keys.items()}

    @classmethod
    def from_seeds(cls, seeds: Mapping[str, bytes], active: str | None = None) -> SigningKeys:
        keys = {}
        for kid, seed in seeds.items():
            if len(seed) != SEED_BYTES:
                raise SettingsError(f"signing key {kid!r} must be a {SEED_BYTES}-byte Ed25519 seed")
            keys[kid] = Ed25519PrivateKey.from_private_bytes(seed)
        return cls(keys, active)

    @classmethod
    def generate(cls, kid: str) -> SigningKeys:
        return cls({_check_kid(kid, "new key"): Ed25519PrivateKey.generate()})

    @classmethod
    def from_settings(cls, settings: Settings) -> SigningKeys:
        """``PIPELINES_JWT_SIGNING_KEYS`` and ``PIPELINES_JWT_ACTIVE_KID``; ``SettingsError`` when unset or malformed."""
        seeds = {}
        for kid, secret in settings.jwt_signing_keys.items():
            try:
                seeds[kid] = b64url_decode(secret.get_secret_value())
            except ValueError:
                raise SettingsError(f"PIPELINES_JWT_SIGNING_KEYS: key {kid!r} is not base64url") from None
        return cls.from_seeds(seeds, settings.jwt_active_kid)


def settings_lines(keys: SigningKeys) -> list[str]:
    """The shell lines (``NAME='value'``) of the signing keys, the active key id and the public keys."""
    return [
        f"PIPELINES_JWT_SIGNING_KEYS={shlex.quote(json.dumps(keys.seeds()))}",
        f"PIPELINES_JWT_ACTIVE_KID={shlex.quote(keys.active)}",
        f"PIPELINES_JWT_PUBLIC_KEYS={shlex.quote(json.dumps(keys.jwks(), separators=(',', ':')))}",
    ]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "new":
        print("usage: python -m shared.edge.keys new KID", file=sys.stderr)
        return 2
    try:
        keys = SigningKeys.generate(args[1])
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(settings_lines(keys)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
