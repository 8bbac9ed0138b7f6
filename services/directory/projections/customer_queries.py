"""The customers' queries: organisations and people within a caller's scope, found by the blind index, and the
duplicates among them — a page at a time (``limit + 1`` rows: the API knows whether there is a next page).

Scope: ``teams`` (None: every team) and ``owner`` (a salesperson's own customers, whatever their team). A search
gives ``every`` (name keys: an entity must hold all of them) and ``some`` (other keys: any of them); a merged
customer is not listed (it reads as the one it was merged into), an erased person is no longer found by search.
"""

from __future__ import annotations

import uuid
from typing import Any

from shared.store.db import Conn

HITS = """hits AS (
    SELECT id FROM customer_keys WHERE kind = $1 AND key = ANY($2::text[])
    UNION
    SELECT id FROM customer_keys WHERE kind = $1 AND key = ANY($3::text[])
    GROUP BY id HAVING count(*) = cardinality($3::text[]))"""


async def list_organisations(
    conn: Conn,
    *,
    search: tuple[set[str], set[str]] | None,
    teams: list[str] | None,
    owner: str | None,
    team: str | None,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    every, some = search or (set(), set())
    rows = await conn.fetch(
        f"""WITH {HITS}
            SELECT o.organisation_id, o.name, o.tax_code, o.industry, o.provinces, o.owner_id, o.team_id,
                   (SELECT count(*) FROM customer_people p
                     WHERE p.organisation_id = o.organisation_id AND p.merged_into IS NULL) AS people
            FROM customer_organisations o
            WHERE o.merged_into IS NULL AND ($4 OR o.organisation_id IN (SELECT id FROM hits))
              AND ($5::text[] IS NULL OR o.team_id = ANY($5) OR o.owner_id = $6)
              AND ($7::text IS NULL OR o.team_id = $7)
            ORDER BY o.name, o.organisation_id OFFSET $8 LIMIT $9""",
        "organisation",
        sorted(some),
        sorted(every),
        search is None,
        teams,
        owner,
        team,
        offset,
        limit + 1,
    )
    return [dict(r) for r in rows]


async def list_people(
    conn: Conn,
    *,
    search: tuple[set[str], set[str]] | None,
    teams: list[str] | None,
    owner: str | None,
    organisation: uuid.UUID | None,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    every, some = search or (set(), set())
    rows = await conn.fetch(
        f"""WITH {HITS}
            SELECT p.person_id, p.organisation_id, p.owner_id, p.team_id, p.erased, p.name_token, p.title_token
            FROM customer_people p
            WHERE p.merged_into IS NULL AND ($4 OR p.person_id IN (SELECT id FROM hits))
              AND ($5::text[] IS NULL OR p.team_id = ANY($5) OR p.owner_id = $6)
              AND ($7::uuid IS NULL OR p.organisation_id = $7)
            ORDER BY p.registered_at, p.person_id OFFSET $8 LIMIT $9""",
        "person",
        sorted(some),
        sorted(every),
        search is None,
        teams,
        owner,
        organisation,
        offset,
        limit + 1,
    )
    return [dict(r) for r in rows]


async def duplicates(
    conn: Conn, *, kinds: list[str], teams: list[str] | None, owner: str | None, offset: int, limit: int
) -> list[dict[str, Any]]:
    """Groups of customers sharing a value of one of ``kinds`` (email, phone, tax), within the scope."""
    rows = await conn.fetch(
        """WITH scoped AS (
               SELECT k.key, k.kind, k.id FROM customer_keys k
               LEFT JOIN customer_organisations o ON k.kind = 'organisation' AND o.organisation_id = k.id
               LEFT JOIN customer_people p ON k.kind = 'person' AND p.person_id = k.id
               WHERE split_part(k.key, ':', 1) = ANY($1::text[])
                 AND coalesce(o.organisation_id, p.person_id) IS NOT NULL
                 AND coalesce(o.merged_into, p.merged_into) IS NULL
                 AND ($2::text[] IS NULL OR coalesce(o.team_id, p.team_id) = ANY($2)
                      OR coalesce(o.owner_id, p.owner_id) = $3))
           SELECT split_part(key, ':', 1) AS match,
                  array_agg(id ORDER BY id) FILTER (WHERE kind = 'organisation') AS organisations,
                  array_agg(id ORDER BY id) FILTER (WHERE kind = 'person') AS people
           FROM scoped GROUP BY key HAVING count(*) > 1
           ORDER BY min(id::text), key OFFSET $4 LIMIT $5""",
        kinds,
        teams,
        owner,
        offset,
        limit + 1,
    )
    return [dict(r) for r in rows]


async def person_holding(conn: Conn, schema: str, key: str, team_id: str) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    """The live person of ``team_id`` holding the index ``key`` (the earliest registered) and the organisation they
    read as; ``schema``: the read model's active generation (another projection's reaction reads it)."""
    row = await conn.fetchrow(
        f"""SELECT p.person_id, coalesce(o.merged_into, p.organisation_id) AS organisation_id
            FROM {schema}.customer_keys k JOIN {schema}.customer_people p ON p.person_id = k.id
            LEFT JOIN {schema}.customer_organisations o ON o.organisation_id = p.organisation_id
            WHERE k.key = $1 AND k.kind = 'person' AND p.team_id = $2 AND p.merged_into IS NULL AND NOT p.erased
            ORDER BY p.registered_at, p.person_id LIMIT 1""",
        key,
        team_id,
    )
    return None if row is None else (row["person_id"], row["organisation_id"])
