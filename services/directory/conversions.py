"""Conversion links by reaction (decision 0017): on ``pipelines.leads.LeadConverted`` the directory finds the
customer the deal is for, or registers them, and records the link (``CustomerLinked``, stream
``directory-conversion-<lead id>``), which the deals service reacts to.

- *Matching*: the lead's contact against the blind index, email first, then phone (a lead carries no tax code), among
  the people of the lead's team (a customer of another team is not this one's to link); a merged or erased person
  is never matched. The person matched brings their organisation (the one it reads as, if merged).
- *Else created*: an organisation named by the lead's ``customer`` and a person from its contact (when it has
  one), in the lead's team (or, without one, the owner's), owned by the lead's owner, with ids derived from the
  lead's (``organisation_id_for_lead``, ``person_id_for_lead``). A matched person without an organisation gets none
  made for them: the link names a new organisation of the lead's customer, and the person stays as they are.
- *Once*: the reaction runs in its runner's transaction (every append commits with its progress, or none does),
  and a conversion already linked is not linked again, so a replay of the leads' topic changes nothing. The deal is
  the one the deals service opens for the lead: ``deal_id_for_lead`` of the deals contract.

- *Erasure follows the lead*: when the lead is erased (``LeadPersonalDataErased``), the person registered from its
  contact (``person_id_for_lead``) is erased too — their key destroyed, ``PersonPersonalDataErased`` recorded — so
  the contact the lead brought is forgotten everywhere. A person matched (registered otherwise) is another data
  subject and stays.

Matching reads the ``customers`` read model, which another projector writes: a person registered a moment before
the conversion may not be indexed yet, and is then registered again; the duplicates query shows the two.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from services.deals.events import deal_id_for_lead
from services.directory import projections, search_keys
from services.directory.customers import ORGANISATION_STREAM, PERSON_STREAM
from services.directory.domain.person import person_subject
from services.directory.events import (
    CustomerLinked,
    OrganisationRegistered,
    PersonPersonalDataErased,
    PersonRegistered,
)
from services.leads import events as leads_events  # noqa: F401  # the types it reacts to, in the directory's process
from shared.core import normalize
from shared.core.events import DomainEvent
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import ReadModels
from shared.privacy.pii import KeyStore
from shared.store import EventStore, NewEvent
from shared.store.commands import Context
from shared.store.db import Conn

NS_CUSTOMER_FROM_LEAD = uuid.UUID("3d0c7f5e-8f7b-5e52-9a61-0c2f4b8d7e02")
CONVERSION_STREAM = "directory-conversion-"
ACTOR = "system:directory-conversions"
UNASSIGNED_TEAM = "unassigned"  # a lead with no team whose owner is no user of the directory


def organisation_id_for_lead(lead_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(NS_CUSTOMER_FROM_LEAD, f"organisation:{lead_id}")


def person_id_for_lead(lead_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(NS_CUSTOMER_FROM_LEAD, f"person:{lead_id}")


class CustomerIndex(Protocol):
    async def person(self, key: str, team_id: str) -> tuple[uuid.UUID, uuid.UUID | None] | None:
        """The live person of ``team_id`` holding the blind-index ``key`` (the earliest registered), with the
        organisation they read as; None: nobody."""
        ...


class ReadModelIndex:
    """The blind index as the ``customers`` read model has it, read on the reaction's connection."""

    def __init__(self, conn: Conn, read_models: ReadModels) -> None:
        self.conn = conn
        self.read_models = read_models

    async def person(self, key: str, team_id: str) -> tuple[uuid.UUID, uuid.UUID | None] | None:
        try:
            schema = await self.read_models.active_schema(self.conn, "customers")
        except LookupError:  # not built yet: nobody to match
            return None
        return await projections.person_holding(self.conn, schema, key, team_id)


TeamOf = Callable[[str], Any]  # async: a user's team in the directory, or None


@dataclasses.dataclass(frozen=True)
class Conversion:
    lead_id: uuid.UUID
    customer: str
    owner_id: str
    team_id: str
    contact: dict[str, Any]


class Conversions:
    def __init__(self, secret: bytes, team_of: TeamOf, keys: KeyStore | None = None) -> None:
        self.secret = secret
        self.team_of = team_of
        self.keys = keys

    async def react(self, store: EventStore, index: CustomerIndex, envelope: CloudEvent, data: dict[str, Any]) -> None:
        """``LeadConverted`` (``data`` opened) → the customer found or registered, and the link;
        ``LeadPersonalDataErased`` → the person registered from the lead erased."""
        if envelope.type == "pipelines.leads.LeadPersonalDataErased":
            await self._erased(store, envelope, uuid.UUID(str(data["lead_id"])))
            return
        lead_id = uuid.UUID(str(data["lead_id"]))
        if await store.stream_version(CONVERSION_STREAM + str(lead_id)):
            return  # linked already: a replay
        owner = str(data["owner_id"])
        team = data.get("team_id") or await self.team_of(owner) or UNASSIGNED_TEAM
        conversion = Conversion(lead_id, str(data.get("customer") or "?"), owner, team, data.get("contact") or {})
        ctx = Context.reacting_to(envelope, ACTOR)
        now = envelope.time
        matched_by, person_id, organisation_id = await self._match(index, conversion)
        if organisation_id is None:
            organisation_id = organisation_id_for_lead(lead_id)
            await _append_once(store, ORGANISATION_STREAM, organisation_id, self._organisation(conversion, now), ctx)
        if person_id is None and _has_contact(conversion.contact):
            person_id = person_id_for_lead(lead_id)
            registered = self._person(conversion, person_id, organisation_id, now)
            await _append_once(store, PERSON_STREAM, person_id, registered, ctx)
        link = CustomerLinked(
            lead_id=lead_id,
            deal_id=deal_id_for_lead(lead_id),
            organisation_id=organisation_id,
            person_id=person_id,
            matched_by=matched_by,
            team_id=team,
            linked_at=now,
        )
        await _append_once(store, CONVERSION_STREAM, lead_id, link, ctx)

    async def _erased(self, store: EventStore, envelope: CloudEvent, lead_id: uuid.UUID) -> None:
        person_id = person_id_for_lead(lead_id)
        stream = f"{PERSON_STREAM}{person_id}"
        recorded = await store.read_stream(stream)
        if not recorded or any(r.event_type == PersonPersonalDataErased.event_type for r in recorded):
            return  # none registered from this lead, or erased already (a replay)
        if self.keys is None:
            raise RuntimeError("this directory has no key store: it cannot erase a person")
        subject = person_subject(person_id)
        reason = f"lead {lead_id} erased"
        await self.keys.erase(subject, reason=reason)
        ctx = dataclasses.replace(Context.reacting_to(envelope, ACTOR), derive_ids_from=f"{envelope.id}:erasure")
        options = ctx.options(envelope.time)
        erased = PersonPersonalDataErased(person_id=person_id, subject=subject, reason=reason, erased_at=envelope.time)
        new = NewEvent(
            erased, occurred_at=envelope.time, event_id=options["event_ids"](0), metadata=options["metadata"]
        )
        await store.append(stream, [new], expected_version=recorded[-1].version)

    async def _match(
        self, index: CustomerIndex, conversion: Conversion
    ) -> tuple[str, uuid.UUID | None, uuid.UUID | None]:
        """(how, the person, their organisation) — ("created", None, None) when nobody matches."""
        values = (
            ("email", normalize.email(conversion.contact.get("email"))),
            ("phone", normalize.phone(conversion.contact.get("phone"))),
        )
        for kind, value in values:
            if value is None:
                continue
            found = await index.person(search_keys.key(self.secret, kind, value), conversion.team_id)
            if found is not None:
                return kind, found[0], found[1]
        return "created", None, None

    @staticmethod
    def _organisation(conversion: Conversion, now: datetime) -> OrganisationRegistered:
        return OrganisationRegistered(
            organisation_id=organisation_id_for_lead(conversion.lead_id),
            name=conversion.customer,
            tax_code=None,
            owner_id=conversion.owner_id,
            team_id=conversion.team_id,
            registered_at=now,
            reason=f"lead {conversion.lead_id} converted",
        )

    @staticmethod
    def _person(
        conversion: Conversion, person_id: uuid.UUID, organisation_id: uuid.UUID, now: datetime
    ) -> PersonRegistered:
        contact = conversion.contact
        phone, email = normalize.phone(contact.get("phone")), normalize.email(contact.get("email"))
        return PersonRegistered(
            person_id=person_id,
            subject=person_subject(person_id),
            organisation_id=organisation_id,
            name=normalize.text(contact.get("name")),
            title=normalize.text(contact.get("title")),
            phones=(phone,) if phone else (),
            emails=(email,) if email else (),
            owner_id=conversion.owner_id,
            team_id=conversion.team_id,
            registered_at=now,
            reason=f"lead {conversion.lead_id} converted",
        )


def _has_contact(contact: dict[str, Any]) -> bool:
    return any(contact.get(k) for k in ("name", "email", "phone"))


async def _append_once(store: EventStore, prefix: str, entity: uuid.UUID, event: DomainEvent, ctx: Context) -> None:
    """The first event of a stream this reaction makes (none if it is there: made by this reaction before), its
    id derived from the causing event and the stream, so each stream's differs."""
    stream = f"{prefix}{entity}"
    if await store.stream_version(stream):
        return
    seeded = dataclasses.replace(ctx, derive_ids_from=f"{ctx.derive_ids_from}:{prefix}")
    options = seeded.options(event_time(event))
    new = NewEvent(
        event, occurred_at=options["occurred_at"], event_id=options["event_ids"](0), metadata=options["metadata"]
    )
    await store.append(stream, [new], expected_version=0)


def event_time(event: DomainEvent) -> datetime:
    at = getattr(event, "registered_at", None) or getattr(event, "linked_at", None)
    assert isinstance(at, datetime)
    return at
