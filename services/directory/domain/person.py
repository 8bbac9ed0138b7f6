"""A person a team sells to: their organisation (if any), name, title, phones, emails, Zalo id — sealed under
their own key, the subject ``person:<uuid>`` — and consent; the user who owns them and their team. Pure.

Rules: a person is registered once (409 ``person_exists``); a person merged into another takes no command (409
``merged``); an erased person's details cannot be given again (409 ``person_erased``: a new person is registered
instead), and are erased once. Their details are replaced whole and always recorded (sealed: never compared).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.directory.domain import customer_commands as c
from services.directory.domain.errors import DirectoryRuleError, InvalidReferenceError, NotFoundError
from services.directory.events import (
    PERSON_SUBJECT_PREFIX,
    PersonAbsorbed,
    PersonChanged,
    PersonEvent,
    PersonMerged,
    PersonPersonalDataErased,
    PersonReassigned,
    PersonRegistered,
)
from shared.core.decider import Decider, replace
from shared.core.events import DomainEvent


@dataclass(frozen=True)
class Person:
    person_id: uuid.UUID | None = None  # None: not registered
    organisation_id: uuid.UUID | None = None
    owner_id: str = ""
    team_id: str = ""
    erased: bool = False
    merged_into: uuid.UUID | None = None
    merged_from: tuple[uuid.UUID, ...] = ()


def person_subject(person_id: uuid.UUID) -> str:
    """The data subject a person's details are sealed under."""
    return f"{PERSON_SUBJECT_PREFIX}{person_id}"


def evolve(p: Person, e: DomainEvent) -> Person:
    match e:
        case PersonRegistered():
            return Person(e.person_id, e.organisation_id, e.owner_id, e.team_id)
        case PersonChanged():
            return replace(p, organisation_id=e.organisation_id)
        case PersonReassigned():
            return replace(p, owner_id=e.owner_id, team_id=e.team_id)
        case PersonMerged():
            return replace(p, merged_into=e.into)
        case PersonAbsorbed():
            return replace(p, merged_from=(*p.merged_from, e.merged_from))
        case PersonPersonalDataErased():
            return replace(p, erased=True)
    return p


person_decider: Decider[Person] = Decider(Person(), evolve)


def live(p: Person, person_id: uuid.UUID) -> Person:
    if p.person_id is None:
        raise NotFoundError("not_found", f"no person {person_id}")
    if p.merged_into is not None:
        raise DirectoryRuleError("merged", f"person {person_id} was merged into {p.merged_into}: send commands there")
    return p


def decide_person(
    p: Person, cmd: c.PersonCommand, now: datetime, person_id: uuid.UUID, *, owner_id: str = "", team_id: str = ""
) -> list[PersonEvent]:
    """What ``cmd`` does to person ``person_id``; ``owner_id``/``team_id``: a registration's, as the handler
    settled them (the command's, or the organisation's)."""
    subject = person_subject(person_id)
    if isinstance(cmd, c.RegisterPerson):
        if p.person_id is not None:
            raise DirectoryRuleError("person_exists", f"a person {person_id} exists already")
        return [
            PersonRegistered(
                person_id=person_id,
                subject=subject,
                **cmd.model_dump(include={"organisation_id", "name", "title", "phones", "emails", "zalo_id"}),
                consent=cmd.consent,
                owner_id=owner_id,
                team_id=team_id,
                registered_at=now,
                reason=cmd.reason,
            )
        ]
    if isinstance(cmd, c.ErasePerson):  # a merged person too: erasure is owed whatever they read as
        if p.person_id is None:
            raise NotFoundError("not_found", f"no person {person_id}")
        if p.erased:
            raise DirectoryRuleError("person_erased", f"person {person_id}'s details were erased already")
        return [PersonPersonalDataErased(person_id=person_id, subject=subject, reason=cmd.reason, erased_at=now)]
    live(p, person_id)
    match cmd:
        case c.ChangePerson():
            if p.erased:
                raise DirectoryRuleError("person_erased", f"person {person_id}'s details were erased")
            return [
                PersonChanged(
                    person_id=person_id,
                    subject=subject,
                    **cmd.model_dump(include={"organisation_id", "name", "title", "phones", "emails", "zalo_id"}),
                    consent=cmd.consent,
                    reason=cmd.reason,
                )
            ]
        case c.ReassignPerson():
            if (cmd.owner_id, cmd.team_id) == (p.owner_id, p.team_id):
                raise DirectoryRuleError("unchanged", f"person {person_id} is {p.owner_id}'s already")
            return [
                PersonReassigned(
                    person_id=person_id,
                    old_owner_id=p.owner_id,
                    old_team_id=p.team_id,
                    owner_id=cmd.owner_id,
                    team_id=cmd.team_id,
                    reason=cmd.reason,
                )
            ]
        case c.MergePerson():
            if cmd.into == person_id:
                raise InvalidReferenceError("merge_into_itself", "into: a person cannot merge into themselves", "into")
            return [PersonMerged(person_id=person_id, into=cmd.into, reason=cmd.reason, merged_at=now)]
    raise TypeError(f"not a person command: {type(cmd).__name__}")


def absorb(target: Person, target_id: uuid.UUID, source_id: uuid.UUID, reason: str, now: datetime) -> list[PersonEvent]:
    live(target, target_id)
    if source_id in target.merged_from:
        return []
    return [PersonAbsorbed(person_id=target_id, merged_from=source_id, reason=reason, merged_at=now)]
