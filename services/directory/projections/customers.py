"""The ``customers`` read model: organisations and people as lists, search and the duplicates query read them.

- ``customer_organisations``: each organisation in clear (no personal data), where it belongs, what it was merged
  into; ``customer_people``: each person's place and state, their details as the sealed tokens (opened at query
  time: an erasure leaves them unreadable here too), their organisation.
- ``customer_keys``: the blind index (``services.directory.search_keys``): one row per keyed hash of a normalised
  value an organisation or person holds. Computing it needs the plaintext, so this projection opens the events'
  sealed fields with the person's key; erasing a person deletes their rows (``PersonPersonalDataErased``) and,
  the key being gone, a rebuild of the read model finds nothing to index for them. Their row stays: counts do.

Each statement is idempotent per event (a replay changes nothing).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from services.directory import events as ev
from services.directory import search_keys
from shared.messaging.projections import Fact, Projection, one_by_one
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


async def _index(conn: Conn, kind: str, entity: uuid.UUID, keys: Iterable[str]) -> None:
    """The entity's index rows become ``keys`` (its details are given whole by each event)."""
    await conn.execute("DELETE FROM customer_keys WHERE id = $1 AND kind = $2", entity, kind)
    await conn.executemany(
        "INSERT INTO customer_keys (key, kind, id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(k, kind, entity) for k in sorted(keys)],
    )


def _provinces(addresses: tuple[ev.Address, ...]) -> list[str]:
    return sorted({a.province for a in addresses})


class CustomersModel:
    def __init__(self, personal_data: PersonalData, secret: bytes) -> None:
        self.personal_data = personal_data
        self.secret = secret

    async def apply(self, conn: Conn, fact: Fact) -> None:
        match fact.event:
            case ev.OrganisationEvent() as e:
                await self._organisation(conn, e)
            case ev.PersonRegistered() | ev.PersonChanged() as e:
                await self._person_details(conn, fact, e)
            case ev.PersonEvent() as e:
                await self._person(conn, e)

    async def _organisation(self, conn: Conn, e: ev.OrganisationEvent) -> None:
        match e:
            case ev.OrganisationRegistered():
                await conn.execute(
                    """INSERT INTO customer_organisations (organisation_id, name, tax_code, industry, provinces,
                           owner_id, team_id, registered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                       ON CONFLICT DO NOTHING""",
                    e.organisation_id,
                    e.name,
                    e.tax_code,
                    e.industry,
                    _provinces(e.addresses),
                    e.owner_id,
                    e.team_id,
                    e.registered_at,
                )
                keys = search_keys.organisation_keys(self.secret, e.name, e.tax_code)
                await _index(conn, "organisation", e.organisation_id, keys)
            case ev.OrganisationChanged():
                await conn.execute(
                    """UPDATE customer_organisations SET name = $2, tax_code = $3, industry = $4, provinces = $5
                       WHERE organisation_id = $1""",
                    e.organisation_id,
                    e.name,
                    e.tax_code,
                    e.industry,
                    _provinces(e.addresses),
                )
                keys = search_keys.organisation_keys(self.secret, e.name, e.tax_code)
                await _index(conn, "organisation", e.organisation_id, keys)
            case ev.OrganisationReassigned():
                await conn.execute(
                    "UPDATE customer_organisations SET owner_id = $2, team_id = $3 WHERE organisation_id = $1",
                    e.organisation_id,
                    e.owner_id,
                    e.team_id,
                )
            case ev.OrganisationMerged():
                await conn.execute(
                    "UPDATE customer_organisations SET merged_into = $2 WHERE organisation_id = $1",
                    e.organisation_id,
                    e.into,
                )

    async def _person_details(self, conn: Conn, fact: Fact, e: ev.PersonRegistered | ev.PersonChanged) -> None:
        sealed: dict[str, Any] = fact.envelope.data
        if isinstance(e, ev.PersonRegistered):
            await conn.execute(
                """INSERT INTO customer_people (person_id, organisation_id, owner_id, team_id, name_token,
                       title_token, registered_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
                e.person_id,
                e.organisation_id,
                e.owner_id,
                e.team_id,
                sealed.get("name"),
                sealed.get("title"),
                e.registered_at,
            )
        else:
            await conn.execute(
                """UPDATE customer_people SET organisation_id = $2, name_token = $3, title_token = $4
                   WHERE person_id = $1 AND NOT erased""",
                e.person_id,
                e.organisation_id,
                sealed.get("name"),
                sealed.get("title"),
            )
        (opened,) = await self.personal_data.open([sealed])  # None throughout once the person's key is gone
        keys = search_keys.person_keys(
            self.secret, opened.get("name"), opened.get("phones"), opened.get("emails"), opened.get("zalo_id")
        )
        await _index(conn, "person", e.person_id, keys)

    async def _person(self, conn: Conn, e: ev.PersonEvent) -> None:
        match e:
            case ev.PersonReassigned():
                await conn.execute(
                    "UPDATE customer_people SET owner_id = $2, team_id = $3 WHERE person_id = $1",
                    e.person_id,
                    e.owner_id,
                    e.team_id,
                )
            case ev.PersonMerged():
                await conn.execute(
                    "UPDATE customer_people SET merged_into = $2 WHERE person_id = $1", e.person_id, e.into
                )
            case ev.PersonPersonalDataErased():
                await conn.execute(
                    """UPDATE customer_people SET erased = true, name_token = NULL, title_token = NULL
                       WHERE person_id = $1""",
                    e.person_id,
                )
                await conn.execute("DELETE FROM customer_keys WHERE id = $1 AND kind = 'person'", e.person_id)


def customers(topic: str, personal_data: PersonalData, secret: bytes) -> Projection:
    """The ``customers`` read model of the directory's topic; ``secret``: the blind index's key."""
    model = CustomersModel(personal_data, secret)
    return Projection(
        name="customers",
        topics=(topic,),
        ddl=DDL,
        apply=one_by_one(model.apply),
        accepts=("pipelines.directory.Organisation", "pipelines.directory.Person"),
        tables=TABLES,
    )
