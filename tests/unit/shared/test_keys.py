"""Ed25519 keys (shared/edge/keys.py): signing keys sign, public keys verify, a JWKS is read strictly."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.edge.keys import PublicKeys, SigningKeys, b64url, b64url_decode, main, settings_lines
from shared.ops.settings import Settings, SettingsError

KEYS = SigningKeys.from_seeds({"a": b"a" * 32, "b": b"b" * 32}, active="b")


def test_sign_names_the_active_key_and_the_public_keys_verify() -> None:
    token = KEYS.sign({"sub": "u-1"})
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": "b", "typ": "JWT"}
    assert jwt.decode(token, KEYS.public()["b"], algorithms=["EdDSA"]) == {"sub": "u-1"}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, KEYS.public()["a"], algorithms=["EdDSA"])


def test_the_jwks_round_trips_and_holds_no_private_member() -> None:
    doc = KEYS.jwks()
    assert [k["kid"] for k in doc["keys"]] == ["a", "b"]
    assert all(set(k) == {"kty", "crv", "x", "kid", "alg", "use"} for k in doc["keys"])
    assert PublicKeys.from_jwks(json.dumps(doc)) == KEYS.public()
    assert "aaaa" not in repr(KEYS) and "YWFh" not in repr(KEYS)  # no seed in a log line


def jwk(**kw: object) -> dict:
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(b"x" * 32), "kid": "k"} | kw


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"keys": [jwk(d=b64url(b"a" * 32))]}, "private member (d)"),
        ({"keys": [jwk(kty="oct", k="c2VjcmV0")]}, "private member (k)"),
        ({"keys": [jwk(kty="RSA")]}, "kty OKP, crv Ed25519"),
        ({"keys": [jwk(crv="X25519")]}, "kty OKP, crv Ed25519"),
        ({"keys": [jwk(x=b64url(b"x" * 31))]}, "x must be the base64url of 32 bytes"),
        ({"keys": [jwk(x=b64url(b"x" * 32) + "=")]}, "x must be the base64url of 32 bytes"),
        ({"keys": [jwk(kid="")]}, "kid"),
        ({"keys": [jwk(kid="k" * 65)]}, "kid"),
        ({"keys": [jwk(kid=7)]}, "kid"),
        ({"keys": [jwk(alg="HS256")]}, "alg EdDSA"),
        ({"keys": [jwk(), jwk()]}, "appears twice"),
        ({"keys": [jwk(kid=str(i)) for i in range(33)]}, "more than 32 keys"),
        ({"keys": "k"}, '{"keys": [...]}'),
        ([], '{"keys": [...]}'),
        ("{", "not JSON"),
    ],
)
def test_a_jwks_is_read_strictly(doc: object, reason: str) -> None:
    with pytest.raises(SettingsError, match=reason.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        PublicKeys.from_jwks(doc if isinstance(doc, str) else json.dumps(doc))


def test_union_keeps_both_and_refuses_one_kid_for_two_keys() -> None:
    a = SigningKeys.from_seeds({"a": b"a" * 32}).public()
    b = SigningKeys.from_seeds({"b": b"b" * 32}).public()
    assert sorted(a.union(b)) == ["a", "b"]
    assert a.union(a) == a
    with pytest.raises(SettingsError, match="two different public keys"):
        a.union(SigningKeys.from_seeds({"a": b"z" * 32}).public())


def test_signing_keys_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINES_JWT_SIGNING_KEYS", json.dumps({"old": b64url(b"o" * 32), "new": b64url(b"n" * 32)}))
    with pytest.raises(SettingsError, match="PIPELINES_JWT_ACTIVE_KID"):
        SigningKeys.from_settings(Settings(_env_file=None))
    monkeypatch.setenv("PIPELINES_JWT_ACTIVE_KID", "gone")
    with pytest.raises(SettingsError, match="'gone' is not one of"):
        SigningKeys.from_settings(Settings(_env_file=None))
    monkeypatch.setenv("PIPELINES_JWT_ACTIVE_KID", "new")
    keys = SigningKeys.from_settings(Settings(_env_file=None))
    assert keys.active == "new" and keys.kids == ["old", "new"]
    assert keys.public() == SigningKeys.from_seeds({"old": b"o" * 32, "new": b"n" * 32}, "new").public()
    monkeypatch.setenv("PIPELINES_JWT_SIGNING_KEYS", json.dumps({"k": b64url(b"short")}))
    monkeypatch.delenv("PIPELINES_JWT_ACTIVE_KID")
    with pytest.raises(SettingsError, match="32-byte"):
        SigningKeys.from_settings(Settings(_env_file=None))
    monkeypatch.setenv("PIPELINES_JWT_SIGNING_KEYS", "{}")
    with pytest.raises(SettingsError, match="no signing keys"):
        SigningKeys.from_settings(Settings(_env_file=None))


def test_public_keys_from_settings_refuse_a_private_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(PublicKeys.from_settings(Settings(_env_file=None))) == 0
    private = Ed25519PrivateKey.from_private_bytes(b"p" * 32)
    leaked = {"keys": [jwk(kid="p", x=b64url(private.public_key().public_bytes_raw()), d=b64url(b"p" * 32))]}
    monkeypatch.setenv("PIPELINES_JWT_PUBLIC_KEYS", json.dumps(leaked))
    with pytest.raises(SettingsError, match="PIPELINES_JWT_PUBLIC_KEYS: JWKS: key 'p' holds a private member"):
        PublicKeys.from_settings(Settings(_env_file=None))


def test_new_prints_a_pair_as_shell_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "2026-12"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert set(lines) == {"PIPELINES_JWT_SIGNING_KEYS", "PIPELINES_JWT_ACTIVE_KID", "PIPELINES_JWT_PUBLIC_KEYS"}
    seeds = json.loads(lines["PIPELINES_JWT_SIGNING_KEYS"].strip("'"))
    public = PublicKeys.from_jwks(lines["PIPELINES_JWT_PUBLIC_KEYS"].strip("'"))
    assert list(seeds) == ["2026-12"]
    keys = SigningKeys.from_seeds({"2026-12": b64url_decode(seeds["2026-12"])})
    assert keys.public() == public
    assert settings_lines(keys)[1] == "PIPELINES_JWT_ACTIVE_KID=2026-12"
    assert main(["new"]) == 2 and main(["new", ""]) == 2
