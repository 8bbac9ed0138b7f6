"""The directory service's event contract: the users and teams every pipeline points at, and the customers —
organisations and their people — every pipeline sells to (decision 0017).

Streams: ``directory-user-<user id>`` and ``directory-team-<team id>``. A user's id is the ``sub`` their tokens
carry, chosen by the admin who registers them. Each change is an event in the user's (or team's) own stream; who
made it is the event's ``actor`` metadata, and why its ``reason`` (every change must give one; a registration or
a team's creation may).

A user's name and email are personal data, sealed under the user's own key: the data subject ``user:<user id>``
(``subject``), prefixed so that no user shares a key with a lead or a deal's contact, whose subject ids are free
strings too. ``UserPersonalDataErased`` records that this key was destroyed.

Customers (the second half, below; no import between the halves' modules): streams
``directory-organisation-<uuid>`` and ``directory-person-<uuid>``. An organisation's name, tax code, addresses and
industry are no personal data and travel in clear; a person's name, title, phones, emails and Zalo id are sealed
under the subject ``person:<uuid>`` (``PersonPersonalDataErased`` records its key destroyed). A merge is an event on
each stream (``…Merged`` on the source, naming ``into``; ``…Absorbed`` on the target, naming ``merged_from``).
A tax code is held by one organisation at a time: ``TaxCodeClaimed`` on the stream
``directory-taxcode-<tax code>`` names its holder. ``CustomerLinked`` (stream ``directory-conversion-<lead id>``)
records the organisation and person a converted lead's deal is for.
"""

from __future__ import annotations

import uuid
from datetime import date, time
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.core.events import DomainEvent
from shared.core.money import DecimalStr

Reason = Annotated[str, Field(min_length=1, max_length=500)]
SUBJECT_PREFIX = "user:"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QuietHours(_Value):
    """Local times (the user's time zone) between which nobody is notified; ``end`` before ``start`` spans midnight."""

    start: time
    end: time


REMINDERS = ("immediate", "digest")  # how a user's reminders reach them: each as it falls due, or a morning digest


class UserEvent(DomainEvent):
    user_id: str
    subject_field: ClassVar[str | None] = "subject"
    erased_by: ClassVar[str | None] = "pipelines.directory.UserPersonalDataErased"


class UserRegistered(UserEvent):
    event_type: ClassVar[str] = "pipelines.directory.UserRegistered"
    personal_fields: ClassVar[tuple[str, ...]] = ("name", "email")
    subject: str  # user:<user id>, the key the name and email are sealed under
    name: str | None
    email: str | None
    language: str  # en | vi
    time_zone: str  # IANA
    quiet_hours: QuietHours | None = None
    # additive (issue 25): immediate | digest; ``digest_at``: the local time a digest goes (None: immediate)
    reminders: str = "immediate"
    digest_at: time | None = None
    team_id: str
    roles: tuple[str, ...]
    registered_at: AwareDatetime
    reason: Reason | None = None


class UserProfileChanged(UserEvent):
    """The profile as it is now (every profile field: the name and email cannot be compared while sealed)."""

    event_type: ClassVar[str] = "pipelines.directory.UserProfileChanged"
    personal_fields: ClassVar[tuple[str, ...]] = ("name", "email")
    subject: str
    name: str | None
    email: str | None
    language: str
    time_zone: str
    quiet_hours: QuietHours | None = None
    reminders: str = "immediate"
    digest_at: time | None = None
    reason: Reason


class UserRolesChanged(UserEvent):
    event_type: ClassVar[str] = "pipelines.directory.UserRolesChanged"
    old: tuple[str, ...]
    new: tuple[str, ...]
    reason: Reason


class UserMovedToTeam(UserEvent):
    event_type: ClassVar[str] = "pipelines.directory.UserMovedToTeam"
    old: str
    new: str
    reason: Reason


class UserDeactivated(UserEvent):
    """The user may no longer work; ``handed_to`` (an active user, not this one) takes over what they owned:
    the other services reassign their open deals, leads and activities on this event."""

    event_type: ClassVar[str] = "pipelines.directory.UserDeactivated"
    team_id: str
    handed_to: str
    reason: Reason
    deactivated_at: AwareDatetime


class UserReactivated(UserEvent):
    event_type: ClassVar[str] = "pipelines.directory.UserReactivated"
    team_id: str
    reason: Reason


class UserPersonalDataErased(UserEvent):
    """The user's key was destroyed: their name and email read as null from now on (the user stays, by id)."""

    event_type: ClassVar[str] = "pipelines.directory.UserPersonalDataErased"
    erasure: ClassVar[bool] = True
    subject: str
    reason: Reason
    erased_at: AwareDatetime


# ---------------------------------------------------------------------------------------------- teams
class TeamEvent(DomainEvent):
    team_id: str


class TeamCreated(TeamEvent):
    event_type: ClassVar[str] = "pipelines.directory.TeamCreated"
    name: str
    created_at: AwareDatetime
    reason: Reason | None = None


class TeamRenamed(TeamEvent):
    event_type: ClassVar[str] = "pipelines.directory.TeamRenamed"
    old: str
    new: str
    reason: Reason


class TeamClosed(TeamEvent):
    event_type: ClassVar[str] = "pipelines.directory.TeamClosed"
    reason: Reason
    closed_at: AwareDatetime


# ---------------------------------------------------------------------------------------------- customers
PERSON_SUBJECT_PREFIX = "person:"


class Address(_Value):
    """An address: its street line (and ward), and the province (a code of
    ``services.directory.domain.provinces``); ``label``: what it is for (head office, warehouse, delivery)."""

    line: str
    ward: str | None = None
    province: str
    label: str | None = None


class Consent(_Value):
    """Whether the person agreed to be contacted for marketing, when, and under which text's version."""

    marketing: bool
    given_at: AwareDatetime | None = None
    text_version: str | None = None


class OrganisationEvent(DomainEvent):
    organisation_id: uuid.UUID


class OrganisationRegistered(OrganisationEvent):
    event_type: ClassVar[str] = "pipelines.directory.OrganisationRegistered"
    name: str
    tax_code: str | None  # 10 digits, or 10 digits "-" 3-digit branch (services.directory.domain.taxcode)
    addresses: tuple[Address, ...] = ()
    industry: str | None = None
    owner_id: str
    team_id: str
    registered_at: AwareDatetime
    reason: Reason | None = None


class OrganisationChanged(OrganisationEvent):
    """The organisation's details as they are now: name, tax code, addresses, industry."""

    event_type: ClassVar[str] = "pipelines.directory.OrganisationChanged"
    name: str
    tax_code: str | None
    addresses: tuple[Address, ...] = ()
    industry: str | None = None
    reason: Reason


class OrganisationReassigned(OrganisationEvent):
    event_type: ClassVar[str] = "pipelines.directory.OrganisationReassigned"
    old_owner_id: str
    old_team_id: str
    owner_id: str
    team_id: str
    reason: Reason


class OrganisationMerged(OrganisationEvent):
    """On the source's stream: it is a duplicate of ``into`` and reads as it from now on (its history stays)."""

    event_type: ClassVar[str] = "pipelines.directory.OrganisationMerged"
    into: uuid.UUID
    reason: Reason
    merged_at: AwareDatetime


class OrganisationAbsorbed(OrganisationEvent):
    """On the target's stream: the duplicate ``merged_from`` now reads as this organisation."""

    event_type: ClassVar[str] = "pipelines.directory.OrganisationAbsorbed"
    merged_from: uuid.UUID
    reason: Reason
    merged_at: AwareDatetime


class TaxCodeClaimed(DomainEvent):
    """Stream ``directory-taxcode-<tax code>``: the organisation holding the tax code from now on."""

    event_type: ClassVar[str] = "pipelines.directory.TaxCodeClaimed"
    tax_code: str
    organisation_id: uuid.UUID


class PersonEvent(DomainEvent):
    person_id: uuid.UUID
    subject_field: ClassVar[str | None] = "subject"
    erased_by: ClassVar[str | None] = "pipelines.directory.PersonPersonalDataErased"


class PersonRegistered(PersonEvent):
    event_type: ClassVar[str] = "pipelines.directory.PersonRegistered"
    personal_fields: ClassVar[tuple[str, ...]] = ("name", "title", "phones", "emails", "zalo_id")
    subject: str  # person:<person id>
    organisation_id: uuid.UUID | None = None
    name: str | None
    title: str | None = None
    phones: tuple[str, ...] | None = None  # E.164, as leads normalise them (shared.core.normalize)
    emails: tuple[str, ...] | None = None  # lower-cased
    zalo_id: str | None = None
    consent: Consent | None = None
    owner_id: str
    team_id: str
    registered_at: AwareDatetime
    reason: Reason | None = None


class PersonChanged(PersonEvent):
    """The person's details as they are now (every field: the sealed ones cannot be compared)."""

    event_type: ClassVar[str] = "pipelines.directory.PersonChanged"
    personal_fields: ClassVar[tuple[str, ...]] = ("name", "title", "phones", "emails", "zalo_id")
    subject: str
    organisation_id: uuid.UUID | None = None
    name: str | None
    title: str | None = None
    phones: tuple[str, ...] | None = None
    emails: tuple[str, ...] | None = None
    zalo_id: str | None = None
    consent: Consent | None = None
    reason: Reason


class PersonReassigned(PersonEvent):
    event_type: ClassVar[str] = "pipelines.directory.PersonReassigned"
    old_owner_id: str
    old_team_id: str
    owner_id: str
    team_id: str
    reason: Reason


class PersonMerged(PersonEvent):
    event_type: ClassVar[str] = "pipelines.directory.PersonMerged"
    into: uuid.UUID
    reason: Reason
    merged_at: AwareDatetime


class PersonAbsorbed(PersonEvent):
    event_type: ClassVar[str] = "pipelines.directory.PersonAbsorbed"
    merged_from: uuid.UUID
    reason: Reason
    merged_at: AwareDatetime


class PersonPersonalDataErased(PersonEvent):
    """The person's key was destroyed: name, title, phones, emails and Zalo id read as null (the person stays)."""

    event_type: ClassVar[str] = "pipelines.directory.PersonPersonalDataErased"
    erasure: ClassVar[bool] = True
    subject: str
    reason: Reason
    erased_at: AwareDatetime


class CustomerLinked(DomainEvent):
    """Stream ``directory-conversion-<lead id>``: the customer the deal a converted lead opened is for — an
    organisation and person found in the directory (``matched_by`` tax_code | email | phone) or created for it
    (``created``). The deal's id is the deals contract's ``deal_id_for_lead(lead_id)``. An old deal's customer string
    adopted by an admin (``services.directory.adoption``) is linked the same way, on stream
    ``directory-adoption-<deal id>``, with ``lead_id`` None, ``matched_by`` ``adopted`` and the admin's ``reason``."""

    event_type: ClassVar[str] = "pipelines.directory.CustomerLinked"
    lead_id: uuid.UUID | None = None  # None: an old deal adopted (stream ``directory-adoption-<deal id>``)
    deal_id: uuid.UUID
    organisation_id: uuid.UUID
    person_id: uuid.UUID | None
    matched_by: str  # tax_code | email | phone | created | adopted
    team_id: str | None = None
    linked_at: AwareDatetime
    reason: str | None = None  # an adoption's: the admin's


# ---------------------------------------------------------------------------------------------- reference data
class RateSet(DomainEvent):
    """Stream ``directory-rate-<currency>``: from ``effective_from`` on (the business time zone's day), one unit of
    ``currency`` is worth ``per_vnd`` đồng (an exact decimal, sent as a string), until the currency's next rate
    takes effect. A second rate for the same ``effective_from`` supersedes the first (issue 26, decision 0021;
    shared.core.rates converts with them)."""

    event_type: ClassVar[str] = "pipelines.directory.RateSet"
    currency: str
    per_vnd: DecimalStr
    effective_from: date
    reason: str | None = None


# ---------------------------------------------------------------------------------------------- import jobs
class ImportEvent(DomainEvent):
    """Stream ``directory-import-<import id>``: an import job run by the directory (``POST /imports``, issue 26,
    decision 0021) — the upload kept in the process's spool directory, run by the import core (shared.imports)
    against every service's ``POST /imports/batches``. Its progress is recorded here so that a restarted directory
    resumes it, and ``GET /imports/{id}`` reads it. No personal data: counts and the file's name and hash."""

    import_id: uuid.UUID


class ImportStarted(ImportEvent):
    event_type: ClassVar[str] = "pipelines.directory.ImportStarted"
    source: str  # the mapping shipped for it (shared/imports/mappings/<source>.toml)
    file_name: str
    sha256: str
    size: int  # bytes
    dry_run: bool
    owner: str | None = None  # the user owning rows whose owner the mapping does not know
    owner_team: str | None = None  # and their team
    started_at: AwareDatetime


class ImportProgressed(ImportEvent):
    """After each flush of batches: every row up to ``row`` (the file's row number) answered."""

    event_type: ClassVar[str] = "pipelines.directory.ImportProgressed"
    row: int
    rows: int  # rows read so far
    created: int
    exists: int
    refused: int
    bad: int


class ImportFinished(ImportEvent):
    """``state`` done (every row read and answered) or failed (``reason``: the file refused up front, a service
    refusing a whole batch); the counts of the whole run."""

    event_type: ClassVar[str] = "pipelines.directory.ImportFinished"
    state: str  # done | failed
    rows: int
    created: int
    exists: int
    refused: int
    bad: int
    reason: str | None = None
    finished_at: AwareDatetime
