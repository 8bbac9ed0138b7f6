"""The customers' commands, as a request sends them: every field bounded (shared.core.limits), a bad value 422
naming the field — a tax code failing its check digit, a phone that is no phone, an email that is no email, a
province not on the list. Phones are kept as leads keep them (E.164, ``shared.core.normalize``), emails
lower-cased, so that the same person is found however they were typed."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.directory.domain.provinces import Province
from services.directory.domain.taxcode import valid_tax_code
from services.directory.events import Address, Consent
from shared.core import normalize
from shared.core.limits import MAX_CODE_CHARS, MAX_ID_CHARS, MAX_NAME_CHARS, AwareMoment, Email, Phone, ValidatedAs

USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:|+-]*$"  # as the users' (a token's sub)
TEAM_ID_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
MAX_ADDRESSES = 10
MAX_CONTACTS = 5  # phones, emails of one person
OwnerId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=USER_ID_PATTERN)]
TeamId = Annotated[str, Field(min_length=1, max_length=MAX_CODE_CHARS, pattern=TEAM_ID_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Label = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
TaxCode = Annotated[
    str,
    Field(min_length=10, max_length=20, description="10 digits (the 10th a check digit), or those and -NNN"),
    AfterValidator(valid_tax_code),
]
ZaloId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


def e164(value: str) -> str:
    """A phone as leads normalise it (E.164); ValueError when it is none."""
    normal = normalize.phone(value)
    if normal is None:
        raise ValueError("not a phone number (e.g. 0912 345 678 or +84 912 345 678)")
    return normal


def lowered(value: str) -> str:
    normal = normalize.email(value)
    if normal is None:  # pragma: no cover - EmailStr refused it already
        raise ValueError("not an email address")
    return normal


def distinct(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


NormalPhone = Annotated[Phone, AfterValidator(e164)]
NormalEmail = Annotated[Email, AfterValidator(lowered)]
Phones = Annotated[tuple[NormalPhone, ...], Field(max_length=MAX_CONTACTS), AfterValidator(distinct)]
Emails = Annotated[tuple[NormalEmail, ...], Field(max_length=MAX_CONTACTS), AfterValidator(distinct)]


class AddressInput(Address):
    """An address as a request gives it: the province a code of the fixed list (``ha-noi``, ``ho-chi-minh``…)."""

    line: Label
    ward: Label | None = None
    province: Province
    label: Label | None = None


class ConsentInput(Consent):
    text_version: Annotated[str, Field(max_length=MAX_CODE_CHARS)] | None = None
    given_at: AwareMoment | None = None


Addresses = Annotated[tuple[Annotated[Address, ValidatedAs(AddressInput)], ...], Field(max_length=MAX_ADDRESSES)]
ConsentField = Annotated[Consent, ValidatedAs(ConsentInput)] | None


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=2000)


class OrganisationCommand(Command):
    """A command on an organisation."""


class RegisterOrganisation(OrganisationCommand):
    name: Name
    tax_code: TaxCode | None = None
    addresses: Addresses = ()
    industry: Label | None = None
    owner_id: OwnerId = Field(description="a user of the directory, active, in `team_id`")
    team_id: TeamId
    reason: Reason | None = None


class ChangeOrganisation(OrganisationCommand):
    """The organisation's details as they are to be (PUT): name, tax code, addresses, industry."""

    name: Name
    tax_code: TaxCode | None = None
    addresses: Addresses = ()
    industry: Label | None = None
    reason: Reason


class ReassignOrganisation(OrganisationCommand):
    owner_id: OwnerId
    team_id: TeamId
    reason: Reason


class MergeOrganisation(OrganisationCommand):
    """This organisation is a duplicate of ``into``: it reads as ``into`` from now on; both histories stay."""

    into: uuid.UUID
    reason: Reason


class PersonCommand(Command):
    """A command on a person."""


class RegisterPerson(PersonCommand):
    organisation_id: uuid.UUID | None = Field(None, description="the organisation they work for, if any")
    name: Name
    title: Label | None = None
    phones: Phones = ()
    emails: Emails = ()
    zalo_id: ZaloId | None = None
    consent: ConsentField = None
    owner_id: OwnerId | None = Field(None, description="default: the organisation's owner")
    team_id: TeamId | None = Field(None, description="default: the organisation's team")
    reason: Reason | None = None


class ChangePerson(PersonCommand):
    """The person's details as they are to be (PUT)."""

    organisation_id: uuid.UUID | None = None
    name: Name
    title: Label | None = None
    phones: Phones = ()
    emails: Emails = ()
    zalo_id: ZaloId | None = None
    consent: ConsentField = None
    reason: Reason


class ReassignPerson(PersonCommand):
    owner_id: OwnerId
    team_id: TeamId
    reason: Reason


class MergePerson(PersonCommand):
    into: uuid.UUID
    reason: Reason


class ErasePerson(PersonCommand):
    """Forget the person's name, title, phones, emails and Zalo id (their key is destroyed); they stay, by id."""

    reason: Reason
