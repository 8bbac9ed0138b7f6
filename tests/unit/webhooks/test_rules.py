"""The webhooks' pure rules (decision 0026): signatures against the Standard Webhooks test vector and verified by
the reference library (PyPI standardwebhooks), addresses refused or admitted, filters, backoff."""

from __future__ import annotations

import base64
import ipaddress
import random
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.webhooks.domain import filters, retry, signing
from services.webhooks.domain.addresses import AllowList, public, refused
from services.webhooks.domain.errors import InvalidSubscriptionError, UnknownEventTypeError

# the specification's vector (the reference libraries' tests: secret, id, timestamp, body → signature)
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID, VECTOR_TS, VECTOR_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specification_vector() -> None:
    key = signing.secret_bytes(VECTOR_SECRET)
    assert signing.signature(key, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE


def test_the_reference_library_verifies_what_we_sign_and_refuses_a_change() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    now = int(datetime.now(UTC).timestamp())
    body = '{"specversion":"1.0","id":"e-1","type":"pipelines.deals.DealWon","data":{"v":"Đà Nẵng"}}'.encode()
    headers = signing.headers(signing.secret_bytes(secret), "e-1", now, body)
    assert Webhook(secret).verify(body, headers)["id"] == "e-1"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"e-1", b"e-2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    # the reference library signs the vector as we do
    stamp = datetime.fromtimestamp(VECTOR_TS, UTC)
    assert Webhook(VECTOR_SECRET).sign(VECTOR_ID, stamp, VECTOR_BODY.decode()) == VECTOR_SIGNATURE


def test_a_rotation_window_signs_with_both_secrets_and_either_verifies() -> None:
    new, old, other = signing.new_secret(), signing.new_secret(), signing.new_secret()
    now = int(datetime.now(UTC).timestamp())
    body = b'{"id":"e-9","type":"pipelines.deals.DealWon"}'
    headers = signing.headers(signing.secret_bytes(new), "e-9", now, body, signing.secret_bytes(old))
    first, second = headers["webhook-signature"].split(" ")
    assert first == signing.signature(signing.secret_bytes(new), "e-9", now, body)
    assert second == signing.signature(signing.secret_bytes(old), "e-9", now, body)
    assert Webhook(new).verify(body, headers)["id"] == Webhook(old).verify(body, headers)["id"] == "e-9"
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


@pytest.mark.parametrize("bad", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!", "whsec_" + "A" * 8])
def test_malformed_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        signing.secret_bytes(bad)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.3.4.5", "169.254.169.254", "10.0.0.8", "172.16.5.4", "192.168.1.1", "100.64.0.1", "0.0.0.0",  # noqa: S104
     "224.0.0.1", "192.0.2.1", "::1", "fe80::1", "fd12:3456::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
     "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::"],
)  # fmt: skip
def test_private_addresses_are_refused(address: str) -> None:
    a = ipaddress.ip_address(address)
    assert not public(a)
    assert refused("example.com", [a], AllowList()) == [a]


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert public(ipaddress.ip_address(address))


def test_the_allow_list_admits_its_networks_and_hosts_only() -> None:
    allow = AllowList.parse(" 127.0.0.2/32 , receiver.internal. ,10.9.0.0/16")
    assert not refused("x", [ipaddress.ip_address("127.0.0.2")], allow)
    assert refused("x", [ipaddress.ip_address("127.0.0.1")], allow)
    assert not refused("Receiver.Internal", [ipaddress.ip_address("10.1.1.1")], allow)
    assert not refused("x", [ipaddress.ip_address("10.9.3.3")], allow)
    # one refused address of the host's refuses it
    assert refused("x", [ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.0.1")], allow)
    with pytest.raises(ValueError, match="at most 100"):
        AllowList.parse(",".join(["10.0.0.1"] * 101))


REGISTERED = {"pipelines.deals.DealWon", "pipelines.deals.DealLost", "pipelines.leads.LeadCaptured"}


def test_filters_exact_and_prefix() -> None:
    assert filters.check(["pipelines.deals.*", "pipelines.leads.LeadCaptured", "pipelines.deals.*"], REGISTERED) == [
        "pipelines.deals.*",
        "pipelines.leads.LeadCaptured",
    ]
    assert filters.wanted(["pipelines.deals.*"], "pipelines.deals.DealWon")
    assert not filters.wanted(["pipelines.deals.*"], "pipelines.dealsx.DealWon")
    assert not filters.wanted(["pipelines.deals.DealWon"], "pipelines.deals.DealLost")


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        ([], InvalidSubscriptionError),
        (["pipelines.deals.Nope"], UnknownEventTypeError),
        (["pipelines.agenda.*"], UnknownEventTypeError),
        (["pipelines.*.DealWon"], InvalidSubscriptionError),
        (["*"], InvalidSubscriptionError),
        (["pipelines.deals." + "X" * 200], InvalidSubscriptionError),
        ([f"pipelines.deals.T{i}" for i in range(51)], InvalidSubscriptionError),
    ],
)
def test_filters_refused(entries: list[str], error: type[Exception]) -> None:
    with pytest.raises(error):
        filters.check(entries, REGISTERED)


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = retry.Policy(base_s=2.0, cap_s=60.0)
    rng = random.Random(7)
    for attempt, ceiling in ((1, 2.0), (2, 4.0), (3, 8.0), (6, 60.0), (500, 60.0)):
        waits = [policy.wait_s(attempt, rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8 and min(waits) < ceiling * 0.2  # spread over the whole range
    assert retry.succeeded(204) and not retry.succeeded(301) and not retry.succeeded(500)
