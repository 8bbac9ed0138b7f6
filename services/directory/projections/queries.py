"""The directory's queries: users and teams within a caller's scope, a page at a time (``limit + 1`` rows, so the
API knows whether there is a next page). ``teams``: the teams whose users the caller may see (None: every team);
``also``: a user the caller may see besides (themselves)."""

from __future__ import annotations

from typing import Any

from shared.store.db import Conn


async def list_users(
    conn: Conn,
    *,
    team: str | None,
    active: bool | None,
    teams: list[str] | None,
    also: str | None,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT user_id, team_id, roles, active, language, time_zone, quiet_start, quiet_end, reminders,
                  digest_at, name_token, email_token, erased, handed_to, registered_at
           FROM users
           WHERE ($1::text IS NULL OR team_id = $1) AND ($2::bool IS NULL OR active = $2)
             AND ($3::text[] IS NULL OR team_id = ANY($3) OR user_id = $4)
           ORDER BY user_id OFFSET $5 LIMIT $6""",
        team,
        active,
        teams,
        also,
        offset,
        limit + 1,
    )
    return [dict(r) for r in rows]


async def list_teams(
    conn: Conn, *, active: bool | None, teams: list[str] | None, offset: int, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT t.team_id, t.name, t.active, t.created_at,
                  (SELECT count(*) FROM users u WHERE u.team_id = t.team_id AND u.active) AS active_users
           FROM teams t
           WHERE ($1::bool IS NULL OR t.active = $1) AND ($2::text[] IS NULL OR t.team_id = ANY($2))
           ORDER BY t.team_id OFFSET $3 LIMIT $4""",
        active,
        teams,
        offset,
        limit + 1,
    )
    return [dict(r) for r in rows]
