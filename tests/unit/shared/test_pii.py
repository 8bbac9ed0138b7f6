"""Personal data: sealed under per-subject keys, read back as None, never in logs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.core.events import registry
from shared.ops.logs import mask_personal_data
from shared.privacy.pii import (
    InMemoryKeyStore,
    PersonalData,
    decrypt_token,
    encrypt_value,
    is_token,
    parse_stored,
    without_personal_data,
)
from testkit.events import ContactRecorded, Counted, ThingRenamed


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
    parsed = parse_stored(ThingRenamed.event_type, 2, plain)
    assert isinstance(parsed, ThingRenamed) and parsed.name == "pii:v1:looks-like-a-token"


def test_parse_stored_is_the_registry_parse_of_the_data_with_its_tokens_none() -> None:
    """parse_stored validates current data with the class's validator directly (the runner's hot path): the same
    typed event, and the same error, as the registry's parse of the data without its personal data."""
    sealed = {"person_id": "p", "email": "pii:v1:p:AAAA", "full_name": "Lan", "source": "zalo"}
    cases = [
        (ContactRecorded.event_type, 1, sealed),
        (ThingRenamed.event_type, 2, {"thing_id": "t", "name": "n", "reason": "r"}),
        (ThingRenamed.event_type, 1, {"thing_id": "t", "name": "n"}),
        (Counted.event_type, 1, {"n": "7"}),
    ]
    for event_type, version, data in cases:
        read = parse_stored(event_type, version, data)
        expected = registry.parse(event_type, version, without_personal_data(data))
        assert read == expected and read.model_fields_set == expected.model_fields_set
    for data in ({"n": "seven"}, {"n": 1, "m": 2}, {}):
        with pytest.raises(ValidationError) as slow:
            registry.parse(Counted.event_type, 1, data)
        with pytest.raises(ValidationError) as fast:
            parse_stored(Counted.event_type, 1, data)
        assert str(fast.value) == str(slow.value)


def test_logs_never_carry_personal_data() -> None:
    out = mask_personal_data(None, "info", {"event": "x", "email": "a@b.vn", "lead": "l-1", "t": "pii:v1:s:abcdefgh"})
    assert out == {"event": "x", "email": "***", "lead": "l-1", "t": "pii:v1:s:abc…"}
