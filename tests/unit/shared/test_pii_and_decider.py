"""Personal data sealing, and the decider helper on the in-memory store."""

from __future__ import annotations

import asyncio
import base64
import dataclasses

import pytest
from pydantic import ValidationError

from services.deals.domain import Deal
from shared.core.decider import replace
from shared.ops.logs import mask_personal_data
from shared.ops.settings import Settings, SettingsError
from shared.privacy.pii import (
    InMemoryKeyStore,
    PersonalData,
    decrypt_token,
    encrypt_value,
    is_token,
    parse_stored,
    without_personal_data,
)
from shared.store import ConcurrencyError, Idempotency
from shared.store.commands import execute, load
from shared.store.memory import InMemoryEventStore
from testkit.events import ContactRecorded, Counted, ThingRenamed, counter


async def test_tokens_are_bound_to_their_subject() -> None:
    keys = InMemoryKeyStore()
    k = await keys.keys_for(["a", "b"], create=True)
    token = encrypt_value("a", k["a"], {"street": "12 Lê Lợi", "city": "Huế"})
    assert is_token(token)
    assert "Lê Lợi" not in token
    assert decrypt_token(token, k) == {"street": "12 Lê Lợi", "city": "Huế"}
    forged = token.replace("pii:v1:a:", "pii:v1:b:")
    with pytest.raises(Exception):  # noqa: B017, PT011 - AES-GCM refuses another subject's key
        decrypt_token(forged, k)


async def test_sealing_leaves_other_fields_and_events_alone() -> None:
    pd = PersonalData(InMemoryKeyStore())
    contact = ContactRecorded(person_id="p", email="a@b.vn", full_name=None, source="facebook")
    sealed_contact, sealed_count = await pd.seal([contact, Counted(n=3)])
    assert is_token(sealed_contact["email"])
    assert sealed_contact["full_name"] is None
    assert sealed_contact["source"] == "facebook"
    assert sealed_count == {"n": 3}
    assert (await pd.open([sealed_contact]))[0]["email"] == "a@b.vn"


async def test_stored_data_reads_back_with_its_sealed_fields_as_none() -> None:
    pd = PersonalData(InMemoryKeyStore())
    (sealed,) = await pd.seal([ContactRecorded(person_id="p", email="a@b.vn", full_name="Lan", source="zalo")])
    read = parse_stored(ContactRecorded.event_type, 1, sealed)
    assert read == ContactRecorded(person_id="p", email=None, full_name=None, source="zalo")
    assert is_token(sealed["email"])  # the stored data is not changed
    # data searched whole (an older schema version's: its personal fields may have had other names)
    old = {"thing_id": "t", "name": sealed["email"]}
    assert without_personal_data(old) == {"thing_id": "t", "name": None}
    assert without_personal_data(old, ContactRecorded.personal_fields) is old  # searched only where told
    with pytest.raises(ValidationError, match="name"):  # v1 data goes the whole search: its token became None
        parse_stored(ThingRenamed.event_type, 1, old)
    # data of the current version without personal fields is parsed as it is, not searched
    plain = {"thing_id": "t", "name": "pii:v1:looks-like-a-token", "reason": "r"}
    assert parse_stored(ThingRenamed.event_type, 2, plain).name == "pii:v1:looks-like-a-token"


def test_logs_never_carry_personal_data() -> None:
    out = mask_personal_data(None, "info", {"event": "x", "email": "a@b.vn", "lead": "l-1", "t": "pii:v1:s:abcdefgh"})
    assert out == {"event": "x", "email": "***", "lead": "l-1", "t": "pii:v1:s:abc…"}


def test_master_key_setting_is_checked() -> None:
    with pytest.raises(SettingsError, match="not set"):
        Settings().master_key()
    with pytest.raises(SettingsError, match="32 bytes"):
        Settings(pii_master_key=base64.b64encode(b"short").decode()).master_key()
    assert Settings(pii_master_key=base64.b64encode(b"k" * 32).decode()).master_key() == b"k" * 32


def test_database_url_per_service_wins() -> None:
    s = Settings(database_url="postgresql://all", deals_database_url="postgresql://deals")
    assert s.database_url_for("deals") == "postgresql://deals"
    assert s.database_url_for("leads") == "postgresql://all"
    with pytest.raises(SettingsError, match="LEADS_DATABASE_URL or DATABASE_URL"):
        Settings(database_url=None).database_url_for("leads")


def test_sasl_needs_its_credentials() -> None:
    with pytest.raises(SettingsError, match="SASL needs"):
        Settings(kafka_security_protocol="SASL_PLAINTEXT").kafka_options()
    options = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="deals",
        kafka_sasl_password="pw",
    ).kafka_options()
    assert options["sasl_plain_username"] == "deals"


async def test_execute_returns_version_position_and_new_state() -> None:
    store = InMemoryEventStore()
    first = await execute(store, "c", counter, lambda n: [Counted(n=n + 1)])
    second = await execute(store, "c", counter, lambda n: [Counted(n=n + 1), Counted(n=n + 2)])
    assert (first.version, first.state) == (1, 1)
    assert (second.version, second.state) == (3, 3)
    assert second.position > first.position
    assert second.events == (Counted(n=2), Counted(n=3))


async def test_expected_version_refuses_a_stale_command_without_deciding() -> None:
    store = InMemoryEventStore()
    await execute(store, "c", counter, lambda n: [Counted(n=1)])
    decided = []
    with pytest.raises(ConcurrencyError):
        await execute(store, "c", counter, lambda n: decided.append(n) or [Counted(n=2)], expected_version=0)
    assert decided == []


async def test_a_decision_of_no_events_appends_nothing() -> None:
    store = InMemoryEventStore()
    result = await execute(store, "c", counter, lambda n: [])
    assert (result.version, result.events) == (0, ())


async def test_repeated_command_with_an_idempotency_key_returns_the_first_answer() -> None:
    store = InMemoryEventStore()
    key = Idempotency.of("u-1", "abc", {"n": 1})
    first = await execute(store, "c", counter, lambda n: [Counted(n=1)], idempotency=key)
    again = await execute(store, "c", counter, lambda n: [Counted(n=1)], idempotency=key)
    assert again.append.replayed
    assert (again.version, again.position) == (first.version, first.position)
    assert await store.stream_version("c") == 1


async def test_concurrent_commands_are_retried_on_the_latest_state() -> None:
    store = InMemoryEventStore()

    async def slow_decide(i: int) -> None:
        loaded = await load(store, "c", counter)
        await asyncio.sleep(0)  # let the others load the same version
        await execute(store, "c", counter, lambda n, i=i: [Counted(n=i)], expected_version=None)
        assert loaded.version >= 0

    await asyncio.gather(*(slow_decide(i) for i in range(10)))
    assert await store.stream_version("c") == 10


async def test_state_as_of_a_version_is_the_fold_of_that_prefix() -> None:
    store = InMemoryEventStore()
    for _ in range(5):
        await execute(store, "c", counter, lambda n: [Counted(n=n)])
    assert (await load(store, "c", counter, to_version=2)).state == 2
    assert (await load(store, "c", counter)).state == 5


def test_replace_gives_what_dataclasses_replace_gives_and_refuses_what_it_refuses() -> None:
    deal = Deal(title="Máy CNC", customer="Công ty An", activities=3)
    new = replace(deal, activities=4, owner_id="u-lan")
    assert new == dataclasses.replace(deal, activities=4, owner_id="u-lan")
    assert type(new) is Deal
    assert (deal.activities, deal.owner_id) == (3, "")  # the old state is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.activities = 5
    with pytest.raises(TypeError, match="Deal has no field activity"):
        replace(deal, activity=1)

    @dataclasses.dataclass(frozen=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError("negative")

    with pytest.raises(ValueError, match="negative"):  # a class that checks itself is built through __init__
        replace(Checked(1), n=-1)
