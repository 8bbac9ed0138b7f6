"""Tokens no API can forge (issue 27 item 4, decision 0022): the verifier takes EdDSA tokens of its public keys only,
rereads the JWKS for an unknown key id (at most once per 10 s), keeps its keys when a read fails, and refuses the
tokens of a signed-out session (``sid``)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.edge.auth import UNKNOWN_KID_REFETCH_S, InvalidTokenError, TokenVerifier, UnknownKeyError, issue_token
from shared.edge.keys import SigningKeys
from shared.edge.revocation import RevocationList

OLD = SigningKeys.from_seeds({"old": b"o" * 32})
NEW = SigningKeys.from_seeds({"new": b"n" * 32})
JWKS_URL = "http://signin.test/.well-known/jwks.json"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims() -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "u-1", "roles": ["admin"], "iss": "pipelines", "aud": "pipelines", "iat": now, "exp": now + 600}


def hand_made(header: dict[str, Any], key: bytes | None) -> str:
    """A token put together by hand: ``key`` is an HMAC-SHA256 key, None for no signature at all."""
    body = claims() | {"jti": uuid.uuid4().hex}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def verifier(**kw: Any) -> TokenVerifier:
    return TokenVerifier(OLD.public(), issuer="pipelines", audience="pipelines", **kw)


@pytest.mark.parametrize(
    "token",
    [
        # the public key's bytes as an HMAC secret: what a verifier trusting the header's alg would accept
        hand_made({"alg": "HS256", "typ": "JWT", "kid": "old"}, OLD.public()["old"].public_bytes_raw()),
        hand_made({"alg": "HS256", "typ": "JWT", "kid": "old"}, json.dumps(OLD.jwks()["keys"][0]).encode()),
        hand_made({"alg": "none", "typ": "JWT", "kid": "old"}, None),
        hand_made({"alg": "EdDSA", "typ": "JWT", "kid": "old"}, None),  # the right alg, no signature
        jwt.encode(
            claims() | {"jti": "rs"},
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": "old"},
        ),
    ],
    ids=["hs256-public-key-bytes", "hs256-public-jwk", "alg-none", "eddsa-unsigned", "rs256"],
)
def test_algorithm_confusion_is_refused(token: str) -> None:
    with pytest.raises(InvalidTokenError):
        verifier().verify(token)
    assert verifier().verify(issue_token(OLD, user_id="u-1", roles=["sales"])).user_id == "u-1"


def test_a_token_of_a_key_it_was_not_given_is_refused() -> None:
    with pytest.raises(UnknownKeyError, match="unknown key id 'new'"):
        verifier().verify(issue_token(NEW, user_id="u-1", roles=["admin"]))


class Jwks:
    """The sign-in service's JWKS route as httpx's MockTransport serves it: counts reads; ``fail`` answers 503."""

    def __init__(self, *keys: SigningKeys) -> None:
        self.keys = list(keys)
        self.reads = 0
        self.fail = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.reads += 1
        if self.fail:
            return httpx.Response(503)
        return httpx.Response(200, json={"keys": [k for s in self.keys for k in s.jwks()["keys"]]})


async def test_an_unknown_kid_rereads_the_jwks_at_most_once_per_10_s() -> None:
    served, now = Jwks(OLD), [1000.0]
    v = verifier(jwks_url=JWKS_URL, transport=httpx.MockTransport(served), clock=lambda: now[0])
    assert await v.refresh() and served.reads == 1  # at start
    rotated = issue_token(NEW, user_id="u-1", roles=["sales"])
    with pytest.raises(UnknownKeyError):  # not served yet: read once, still unknown
        await v.acheck(rotated)
    assert served.reads == 2
    served.keys.append(NEW)  # the new key published
    for _ in range(3):  # within 10 s of the last read for an unknown kid: no read, refused
        with pytest.raises(UnknownKeyError):
            await v.acheck(rotated)
    assert served.reads == 2
    now[0] += UNKNOWN_KID_REFETCH_S
    results = await asyncio.gather(*(v.averify(rotated) for _ in range(5)))  # five requests share one read
    assert {p.user_id for p in results} == {"u-1"} and served.reads == 3
    assert sorted(v.keys) == ["new", "old"]


async def test_a_failed_read_keeps_the_keys_and_a_removed_key_stops_verifying() -> None:
    served = Jwks(OLD, NEW)
    v = TokenVerifier(
        {}, issuer="pipelines", audience="pipelines", jwks_url=JWKS_URL, transport=httpx.MockTransport(served)
    )
    old_token = issue_token(OLD, user_id="u-1", roles=["sales"])
    assert await v.refresh()
    assert v.verify(old_token).user_id == "u-1"  # and now remembered as verified
    served.fail = True
    assert not await v.refresh()
    assert v.jwks_problem is not None and "503" in v.jwks_problem
    assert sorted(v.keys) == ["new", "old"] and v.verify(old_token).user_id == "u-1"
    served.fail, served.keys = False, [NEW]  # the old key removed
    assert await v.refresh()
    with pytest.raises(UnknownKeyError):  # though remembered as verified before
        v.verify(old_token)


async def test_a_jwks_answer_with_a_private_key_or_too_large_is_refused_and_the_keys_kept() -> None:
    leaked = {"keys": [OLD.jwks()["keys"][0] | {"d": b64(b"o" * 32)}]}
    answers = iter([httpx.Response(200, json=leaked), httpx.Response(200, content=b" " * 300_000)])
    v = verifier(jwks_url=JWKS_URL, transport=httpx.MockTransport(lambda request: next(answers)))
    assert not await v.refresh() and "private member" in str(v.jwks_problem)
    assert not await v.refresh() and "larger than" in str(v.jwks_problem)
    assert list(v.keys) == ["old"]


async def test_run_reads_at_start_and_every_refresh_period_until_stopped() -> None:
    served, stop = Jwks(OLD), asyncio.Event()
    v = verifier(jwks_url=JWKS_URL, transport=httpx.MockTransport(served), refresh_s=0.01)
    task = asyncio.create_task(v.run(stop))
    while served.reads < 3:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_a_signed_out_session_s_tokens_are_refused_and_others_still_work() -> None:
    revocations = RevocationList()  # this process's list only
    v = verifier(revoked=revocations)
    first = issue_token(OLD, user_id="u-1", roles=["sales"], session_id="s-1")
    second = issue_token(OLD, user_id="u-1", roles=["sales"], session_id="s-1")
    elsewhere = issue_token(OLD, user_id="u-1", roles=["sales"], session_id="s-2")
    machine = issue_token(OLD, user_id="u-1", roles=["sales"])
    assert v.check(first).session_id == "s-1" and v.check(machine).session_id is None
    await revocations.publish_session("s-1", time.time() + 600)
    for token in (first, second):  # remembered as verified or not
        with pytest.raises(InvalidTokenError, match="session ended"):
            v.verify(token)
    assert v.verify(elsewhere).user_id == "u-1" and v.verify(machine).user_id == "u-1"


async def test_a_request_during_the_first_read_waits_for_it_and_spends_no_reread() -> None:
    served, release = Jwks(OLD), asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return served(request)

    v = TokenVerifier(
        {}, issuer="pipelines", audience="pipelines", jwks_url=JWKS_URL, transport=httpx.MockTransport(slow)
    )
    first = asyncio.create_task(v.refresh())  # the read at start, not answered yet
    await asyncio.sleep(0)
    waiting = asyncio.create_task(v.averify(issue_token(OLD, user_id="u-1", roles=["sales"])))
    await asyncio.sleep(0.01)
    release.set()
    assert (await waiting).user_id == "u-1" and await first and served.reads == 1
    served.keys.append(NEW)  # a key published later: read on first sight (the waiting request spent no reread)
    assert (await v.averify(issue_token(NEW, user_id="u-2", roles=["sales"]))).user_id == "u-2"
    assert served.reads == 2
