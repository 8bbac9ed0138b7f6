"""The agenda's queries over the ``activities`` read model: the agenda (overdue, today, upcoming) of an owner or a
team, and lists of activities within a caller's scope, a page at a time (``limit + 1`` rows, so the API knows
whether there is a next page).

The agenda's buckets, for an owner (or a team) at ``now`` in their time zone: *overdue* — open and due before
now; *today* — open and due from now to the end of their local day; *upcoming* — open and due from the end of
their local day for ``days`` days. ``day_bounds`` computes the two instants; the SQL reads three ranges of the
index ``(owner_id, status, due_at)`` (a team's: ``(team_id, status, due_at)``) in one round trip."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.store.db import Conn

COLUMNS = """activity_id, kind, subject_type, subject_ref, owner_id, team_id, title, notes_token, outcome_token,
             data_subject, due_at, duration_minutes, status, scheduled_at, completed_at, cancelled_at, notes_erased,
             version"""
BUCKETS = ("overdue", "today", "upcoming")


def day_bounds(now: datetime, tz: ZoneInfo, days: int) -> tuple[datetime, datetime]:
    """The end of ``now``'s local day in ``tz`` and the end of the upcoming window ``days`` local days later, as
    instants (a local midnight, so a day of a DST change is its 23 or 25 hours)."""
    local = now.astimezone(tz)
    tomorrow = datetime.combine(local.date() + timedelta(days=1), time(0), tz)
    until = datetime.combine(local.date() + timedelta(days=1 + days), time(0), tz)
    return tomorrow, until


def agenda_sql(column: str) -> str:
    """The agenda's three ranges for one owner (``column`` owner_id) or team (team_id)."""
    assert column in ("owner_id", "team_id")
    one = f"""(SELECT '{{b}}' AS bucket, {COLUMNS} FROM activities
               WHERE {column} = $1 AND status = 'scheduled' AND {{range}} ORDER BY due_at, activity_id LIMIT $5)"""
    return " UNION ALL ".join(
        (
            one.format(b="overdue", range="due_at < $2"),
            one.format(b="today", range="due_at >= $2 AND due_at < $3"),
            one.format(b="upcoming", range="due_at >= $3 AND due_at < $4"),
        )
    )


OWNER_AGENDA = agenda_sql("owner_id")
TEAM_AGENDA = agenda_sql("team_id")


async def agenda(
    conn: Conn, *, owner_id: str | None, team_id: str | None, now: datetime, tz: ZoneInfo, days: int, limit: int
) -> dict[str, list[dict[str, Any]]]:
    """The owner's (or, with no owner, the team's) open activities in the three buckets, each by due time, at most
    ``limit`` each."""
    tomorrow, until = day_bounds(now, tz, days)
    sql, key = (OWNER_AGENDA, owner_id) if owner_id is not None else (TEAM_AGENDA, team_id)
    rows = await conn.fetch(sql, key, now, tomorrow, until, limit)
    out: dict[str, list[dict[str, Any]]] = {b: [] for b in BUCKETS}
    for r in rows:
        row = dict(r)
        out[row.pop("bucket")].append(row)
    return out


async def list_activities(
    conn: Conn,
    *,
    subject_type: str | None,
    subject_id: uuid.UUID | None,
    owner_id: str | None,
    team_id: str | None,
    status: str | None,
    due_from: datetime | None,
    due_to: datetime | None,
    scope: tuple[list[str] | None, str | None],
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    """Activities by the filters, within ``scope`` — (teams whose activities the caller sees, None: every team; an
    owner whose activities they see besides) — by due time."""
    teams, also = scope
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM activities
           WHERE ($1::text IS NULL OR subject_type = $1) AND ($2::uuid IS NULL OR subject_ref = $2)
             AND ($3::text IS NULL OR owner_id = $3) AND ($4::text IS NULL OR team_id = $4)
             AND ($5::text IS NULL OR status = $5) AND ($6::timestamptz IS NULL OR due_at >= $6)
             AND ($7::timestamptz IS NULL OR due_at < $7)
             AND ($8::text[] IS NULL OR team_id = ANY($8) OR owner_id = $9)
           ORDER BY due_at, activity_id OFFSET $10 LIMIT $11""",
        subject_type,
        subject_id,
        owner_id,
        team_id,
        status,
        due_from,
        due_to,
        teams,
        also,
        offset,
        limit + 1,
    )
    return [dict(r) for r in rows]
