"""The ``customers`` read model: organisations and people as lists, search and the duplicates query read them.

- ``customer_organisations``: each organisation in clear (no personal data), where it belongs, what it was merged
  into; ``customer_people``: each person's place and state, their details as the sealed tokens (opened at query
  time: an erasure leaves them unreadable here too), their organisation.
- ``customer_keys``: the blind index (``services.directory.search_keys``): one row per keyed hash of a normalised
  value an organisation or person holds. Computing it needs the plaintext, so this projection opens the events'
  sealed fields with the person's key; erasing a person deletes their rows (``PersonPersonalDataErased``) and,
  the key being gone, a rebuild of the read model finds nothing to index for them. Their row stays: counts do.

A batch's rows are read once, folded in order and written once (``shared.messaging.rows``): any split of
a history into batches leaves the same tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from services.directory import events as ev
from services.directory import search_keys
from shared.messaging.projections import Fact, Projection
from shared.messaging.rows import Rows, Table
from shared.privacy.pii import PersonalData
from shared.store.db import Conn

DDL = """
CREATE TABLE IF NOT EXISTS customer_organisations (
    organisation_id uuid PRIMARY KEY, name text NOT NULL, tax_code text, industry text,
    provinces text[] NOT NULL DEFAULT '{}', owner_id text NOT NULL, team_id text NOT NULL, merged_into uuid,
    registered_at timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS customer_organisations_by_team ON customer_organisations (team_id, organisation_id);
CREATE TABLE IF NOT EXISTS customer_people (
    person_id uuid PRIMARY KEY, organisation_id uuid, owner_id text NOT NULL, team_id text NOT NULL,
    merged_into uuid, erased boolean NOT NULL DEFAULT false, name_token text, title_token text,
    registered_at timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS customer_people_by_team ON customer_people (team_id, person_id);
CREATE INDEX IF NOT EXISTS customer_people_by_organisation ON customer_people (organisation_id);
CREATE TABLE IF NOT EXISTS customer_keys (
    key text NOT NULL, kind text NOT NULL, id uuid NOT NULL, PRIMARY KEY (key, kind, id));
CREATE INDEX IF NOT EXISTS customer_keys_by_id ON customer_keys (id);
"""
TABLES = ("customer_organisations", "customer_people", "customer_keys")


ORGANISATIONS = Table(
    "customer_organisations",
    {
        "organisation_id": "uuid",
        "name": "text",
        "tax_code": "text",
        "industry": "text",
        "provinces": "text[]",
        "owner_id": "text",
        "team_id": "text",
        "merged_into": "uuid",
        "registered_at": "timestamptz",
    },
    defaults={"provinces": []},
)
PEOPLE = Table(
    "customer_people",
    {
        "person_id": "uuid",
        "organisation_id": "uuid",
        "owner_id": "text",
        "team_id": "text",
        "merged_into": "uuid",
        "erased": "boolean",
        "name_token": "text",
        "title_token": "text",
        "registered_at": "timestamptz",
    },
    defaults={"erased": False},
)
_INDEX_DELETE = "DELETE FROM customer_keys c USING unnest($1::uuid[], $2::text[]) AS e(id, kind) WHERE c.id = e.id AND c.kind = e.kind"
_INDEX_INSERT = """INSERT INTO customer_keys (key, kind, id) SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[])
                   ON CONFLICT DO NOTHING"""
_DETAILS = (ev.PersonRegistered, ev.PersonChanged)


def _provinces(addresses: tuple[ev.Address, ...]) -> list[str]:
    return sorted({a.province for a in addresses})


class _Batch:
    """The rows a batch touches, and each entity's index keys as its last event in the batch gives them."""

    def __init__(self, organisations: Rows, people: Rows) -> None:
        self.organisations = organisations
        self.people = people
        self.index: dict[tuple[uuid.UUID, str], set[str]] = {}  # (id, kind): its keys now (empty: none)
        # registered in this batch: no keys stored yet to delete (an event of an entity not registered indexes nothing)
        self.new: set[tuple[uuid.UUID, str]] = set()

    async def flush(self, conn: Conn) -> None:
        await self.organisations.flush(conn)
        await self.people.flush(conn)
        if stored := [entity for entity in self.index if entity not in self.new]:
            await conn.execute(_INDEX_DELETE, [i for i, _ in stored], [k for _, k in stored])
        if self.index:
            rows = [(key, kind, entity) for (entity, kind), keys in self.index.items() for key in sorted(keys)]
            if rows:
                await conn.execute(_INDEX_INSERT, *(list(column) for column in zip(*rows, strict=True)))


class CustomersModel:
    def __init__(self, personal_data: PersonalData, secret: bytes) -> None:
        self.personal_data = personal_data
        self.secret = secret

    async def apply(self, conn: Conn, facts: Sequence[Fact]) -> None:
        """A batch in order: the rows it touches read once, folded, written once; the sealed details opened in one
        call (None throughout once a person's key is gone)."""
        events = [f.event for f in facts]
        batch = _Batch(
            await ORGANISATIONS.rows(conn, {e.organisation_id for e in events if isinstance(e, ev.OrganisationEvent)}),
            await PEOPLE.rows(conn, {e.person_id for e in events if isinstance(e, ev.PersonEvent)}),
        )
        sealed = [f.envelope.data for f in facts if isinstance(f.event, _DETAILS)]
        opened = iter(await self.personal_data.open(sealed) if sealed else [])
        for fact in facts:
            match fact.event:
                case ev.OrganisationEvent() as e:
                    self._organisation(batch, e)
                case ev.PersonRegistered() | ev.PersonChanged() as e:
                    self._person_details(batch, fact, e, next(opened))
                case ev.PersonEvent() as e:
                    self._person(batch, e)
        await batch.flush(conn)

    def _organisation(self, batch: _Batch, e: ev.OrganisationEvent) -> None:
        rows = batch.organisations
        match e:
            case ev.OrganisationRegistered():
                if rows.get(e.organisation_id) is None:
                    batch.new.add((e.organisation_id, "organisation"))
                rows.insert(
                    ORGANISATIONS.new(
                        organisation_id=e.organisation_id,
                        name=e.name,
                        tax_code=e.tax_code,
                        industry=e.industry,
                        provinces=_provinces(e.addresses),
                        owner_id=e.owner_id,
                        team_id=e.team_id,
                        registered_at=e.registered_at,
                    )
                )
                batch.index[(e.organisation_id, "organisation")] = set(
                    search_keys.organisation_keys(self.secret, e.name, e.tax_code)
                )
            case ev.OrganisationChanged() if rows.get(e.organisation_id) is not None:  # else: never registered
                rows.update(
                    e.organisation_id,
                    name=e.name,
                    tax_code=e.tax_code,
                    industry=e.industry,
                    provinces=_provinces(e.addresses),
                )
                batch.index[(e.organisation_id, "organisation")] = set(
                    search_keys.organisation_keys(self.secret, e.name, e.tax_code)
                )
            case ev.OrganisationReassigned():
                rows.update(e.organisation_id, owner_id=e.owner_id, team_id=e.team_id)
            case ev.OrganisationMerged():
                rows.update(e.organisation_id, merged_into=e.into)

    def _person_details(
        self, batch: _Batch, fact: Fact, e: ev.PersonRegistered | ev.PersonChanged, opened: dict[str, Any]
    ) -> None:
        sealed: dict[str, Any] = fact.envelope.data
        rows = batch.people
        if isinstance(e, ev.PersonRegistered):
            row = PEOPLE.new(
                person_id=e.person_id,
                organisation_id=e.organisation_id,
                owner_id=e.owner_id,
                team_id=e.team_id,
                name_token=sealed.get("name"),
                title_token=sealed.get("title"),
                registered_at=e.registered_at,
            )
            if rows.insert(row):
                batch.new.add((e.person_id, "person"))
        elif (cur := rows.get(e.person_id)) is None:
            return  # never registered: nothing to index (its keys would stay: a registration later deletes none)
        elif not cur["erased"]:
            rows.update(
                e.person_id,
                organisation_id=e.organisation_id,
                name_token=sealed.get("name"),
                title_token=sealed.get("title"),
            )
        keys = search_keys.person_keys(
            self.secret, opened.get("name"), opened.get("phones"), opened.get("emails"), opened.get("zalo_id")
        )
        batch.index[(e.person_id, "person")] = set(keys)

    def _person(self, batch: _Batch, e: ev.PersonEvent) -> None:
        rows = batch.people
        match e:
            case ev.PersonReassigned():
                rows.update(e.person_id, owner_id=e.owner_id, team_id=e.team_id)
            case ev.PersonMerged():
                rows.update(e.person_id, merged_into=e.into)
            case ev.PersonPersonalDataErased():
                rows.update(e.person_id, erased=True, name_token=None, title_token=None)
                batch.index[(e.person_id, "person")] = set()


def customers(topic: str, personal_data: PersonalData, secret: bytes) -> Projection:
    """The ``customers`` read model of the directory's topic; ``secret``: the blind index's key."""
    model = CustomersModel(personal_data, secret)
    return Projection(
        name="customers",
        topics=(topic,),
        ddl=DDL,
        apply=model.apply,
        accepts=("pipelines.directory.Organisation", "pipelines.directory.Person"),
        tables=TABLES,
    )
