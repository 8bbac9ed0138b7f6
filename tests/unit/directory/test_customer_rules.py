"""The customers' rules, given as events: the tax code's check digit (real codes and each kind of invalid one),
organisations and people registered, changed, merged and erased (given → when → then, testkit.slices)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.directory.domain.customer_commands import (
    ChangeOrganisation,
    ChangePerson,
    ErasePerson,
    MergeOrganisation,
    MergePerson,
    ReassignOrganisation,
    RegisterOrganisation,
    RegisterPerson,
)
from services.directory.domain.organisation import absorb, decide_organisation, organisation_decider
from services.directory.domain.person import decide_person, person_decider, person_subject
from services.directory.domain.taxcode import check_digit, tax_code_problem, valid_tax_code
from services.directory.events import (
    Address,
    OrganisationAbsorbed,
    OrganisationChanged,
    OrganisationMerged,
    OrganisationReassigned,
    OrganisationRegistered,
    PersonChanged,
    PersonMerged,
    PersonPersonalDataErased,
    PersonRegistered,
)
from shared.core.events import registry
from testkit.slices import Slice

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
ORG = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER = uuid.UUID("00000000-0000-4000-8000-000000000002")
PERSON = uuid.UUID("00000000-0000-4000-8000-000000000003")
orgs = Slice(organisation_decider, lambda o, cmd: decide_organisation(o, cmd, NOW, ORG))
people = Slice(person_decider, lambda p, cmd: decide_person(p, cmd, NOW, PERSON, owner_id="u-lan", team_id="north"))
HANOI = Address(line="1 Tràng Tiền", province="ha-noi")
REGISTERED = OrganisationRegistered(
    organisation_id=ORG,
    name="Công ty Gạch Men Thăng Long",
    tax_code="0100109106",
    addresses=(HANOI,),
    industry="construction",
    owner_id="u-lan",
    team_id="north",
    registered_at=NOW,
)
PERSON_REGISTERED = PersonRegistered(
    person_id=PERSON,
    subject=person_subject(PERSON),
    organisation_id=ORG,
    name=None,  # as stored: sealed fields read back as None to the domain
    owner_id="u-lan",
    team_id="north",
    registered_at=NOW,
)


@pytest.mark.parametrize(
    "code",
    [
        "0100109106",  # Viettel
        "0101248141",  # FPT
        "0300588569",  # Vinamilk
        "0100109106-001",  # a branch of Viettel
    ],
)
def test_real_tax_codes_pass_the_check_digit(code: str) -> None:
    assert tax_code_problem(code) is None
    assert check_digit(code[:9]) == int(code[9])


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("0100109107", "check digit"),  # the 10th digit wrong
        ("0100109160", "check digit"),  # two digits swapped
        ("010010910", "10 digits"),  # 9 digits
        ("01001091061", "10 digits"),  # 11 digits
        ("0100109106-01", "10 digits"),  # a 2-digit branch
        ("0100109106-000", "branch 000"),  # the parent written as its own branch
        ("01001O9106", "10 digits"),  # a letter O
        ("0000000000", "would be 10"),  # nine digits with no check digit at all: S mod 11 = 0
    ],
)
def test_each_kind_of_invalid_tax_code_says_what_is_wrong(code: str, problem: str) -> None:
    said = tax_code_problem(code)
    assert said is not None and problem in said


def test_a_tax_code_is_cleaned_of_spaces_and_dots_and_refused_naming_the_field() -> None:
    assert valid_tax_code(" 0100.109.106 ") == "0100109106"
    with pytest.raises(ValidationError) as refused:
        RegisterOrganisation(name="X", tax_code="0100109107", owner_id="u", team_id="t")
    assert refused.value.errors()[0]["loc"] == ("tax_code",)
    with pytest.raises(ValidationError) as refused:
        RegisterOrganisation(name="X", addresses=({"line": "1", "province": "saigon"},), owner_id="u", team_id="t")
    assert refused.value.errors()[0]["loc"][:3] == ("addresses", 0, "province")


def test_phones_are_normalised_as_leads_normalise_them_and_emails_lower_cased() -> None:
    cmd = RegisterPerson(name="Lan", phones=("0912 345 678", "+84 912-345-678", "01662 345 678"), emails=("Lan@X.VN",))
    assert cmd.phones == ("+84912345678", "+84362345678") and cmd.emails == ("lan@x.vn",)
    with pytest.raises(ValidationError) as refused:
        RegisterPerson(name="Lan", phones=("12",))
    assert refused.value.errors()[0]["loc"] == ("phones", 0)


def test_an_organisation_is_registered_once_and_changes_only_what_differs() -> None:
    cmd = RegisterOrganisation(
        name=REGISTERED.name,
        tax_code="0100109106",
        addresses=(HANOI,),
        industry="construction",
        owner_id="u-lan",
        team_id="north",
    )
    orgs.given().when(cmd).then(REGISTERED)
    orgs.given(REGISTERED).when(cmd).refused("organisation_exists")
    same = ChangeOrganisation(
        name=REGISTERED.name, tax_code="0100109106", addresses=(HANOI,), industry="construction", reason="x"
    )
    orgs.given(REGISTERED).when(same).refused("unchanged")
    renamed = same.model_copy(update={"name": "Thăng Long Ceramics", "reason": "rebranded"})
    orgs.given(REGISTERED).when(renamed).then(
        OrganisationChanged(
            organisation_id=ORG,
            name="Thăng Long Ceramics",
            tax_code="0100109106",
            addresses=(HANOI,),
            industry="construction",
            reason="rebranded",
        )
    )
    orgs.given(REGISTERED).when(ReassignOrganisation(owner_id="u-minh", team_id="north", reason="holiday")).then(
        OrganisationReassigned(
            organisation_id=ORG,
            old_owner_id="u-lan",
            old_team_id="north",
            owner_id="u-minh",
            team_id="north",
            reason="holiday",
        )
    )
    orgs.given().when(same).refused("not_found")


def test_a_merged_organisation_takes_no_command_and_the_target_records_it_once() -> None:
    merged = OrganisationMerged(organisation_id=ORG, into=OTHER, reason="same company", merged_at=NOW)
    orgs.given(REGISTERED).when(MergeOrganisation(into=OTHER, reason="same company")).then(merged)
    refused = orgs.given(REGISTERED).when(MergeOrganisation(into=ORG, reason="x")).refused("merge_into_itself")
    assert getattr(refused, "field", None) == "into"
    orgs.given(REGISTERED, merged).when(ReassignOrganisation(owner_id="u-x", team_id="north", reason="x")).refused(
        "merged"
    )
    target = organisation_decider.fold([REGISTERED.model_copy(update={"organisation_id": OTHER})])
    (absorbed,) = absorb(target, OTHER, ORG, "same company", NOW)
    assert absorbed == OrganisationAbsorbed(
        organisation_id=OTHER, merged_from=ORG, reason="same company", merged_at=NOW
    )
    assert absorb(organisation_decider.evolve(target, absorbed), OTHER, ORG, "again", NOW) == []


def test_a_person_is_sealed_under_their_own_subject_and_erased_once_even_when_merged() -> None:
    cmd = RegisterPerson(organisation_id=ORG, name="Trần Thị Lan", title="Kế toán", phones=("0912345678",))
    (e,) = people.given().when(cmd).then_events()
    assert isinstance(e, PersonRegistered)
    assert (e.subject, e.name, e.phones, e.owner_id, e.team_id) == (
        f"person:{PERSON}",
        "Trần Thị Lan",
        ("+84912345678",),
        "u-lan",
        "north",
    )
    assert e.subject_id() == f"person:{PERSON}" and set(e.personal_fields) == {
        "name",
        "title",
        "phones",
        "emails",
        "zalo_id",
    }
    people.given(PERSON_REGISTERED).when(cmd).refused("person_exists")
    merged = PersonMerged(person_id=PERSON, into=OTHER, reason="dup", merged_at=NOW)
    people.given(PERSON_REGISTERED).when(MergePerson(into=OTHER, reason="dup")).then(merged)
    erased = PersonPersonalDataErased(person_id=PERSON, subject=f"person:{PERSON}", reason="asked", erased_at=NOW)
    people.given(PERSON_REGISTERED, merged).when(ErasePerson(reason="asked")).then(erased)
    people.given(PERSON_REGISTERED, erased).when(ErasePerson(reason="again")).refused("person_erased")
    people.given(PERSON_REGISTERED, erased).when(ChangePerson(name="Lan", reason="x")).refused("person_erased")
    (changed,) = people.given(PERSON_REGISTERED).when(ChangePerson(name="Lan", reason="typo")).then_events()
    assert isinstance(changed, PersonChanged) and changed.organisation_id is None


def test_every_customer_event_is_erasable_or_holds_no_personal_data() -> None:
    assert not [g for g in registry.erasure_gaps() if "directory" in g]
