"""The ``directory`` read model's tables and the function applying the directory's events to them. Each
statement is idempotent per event (a replay or a batch applied again changes nothing)."""

from __future__ import annotations

from services.directory import events as ev
from shared.messaging.projections import Fact, Projection, one_by_one
from shared.store.db import Conn

DDL = """
CREATE TABLE IF NOT EXISTS users (
    user_id text PRIMARY KEY, team_id text NOT NULL, roles text[] NOT NULL DEFAULT '{}',
    active boolean NOT NULL, language text NOT NULL, time_zone text NOT NULL, quiet_start time, quiet_end time,
    name_token text, email_token text, erased boolean NOT NULL DEFAULT false,
    handed_to text, registered_at timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS users_by_team ON users (team_id, user_id);
CREATE TABLE IF NOT EXISTS teams (
    team_id text PRIMARY KEY, name text NOT NULL, active boolean NOT NULL, created_at timestamptz NOT NULL);
ALTER TABLE users ADD COLUMN IF NOT EXISTS reminders text NOT NULL DEFAULT 'immediate',
    ADD COLUMN IF NOT EXISTS digest_at time;
"""


async def _registered(conn: Conn, fact: Fact, e: ev.UserRegistered) -> None:
    q = e.quiet_hours
    await conn.execute(
        """INSERT INTO users (user_id, team_id, roles, active, language, time_zone, quiet_start, quiet_end,
                              name_token, email_token, registered_at)
           VALUES ($1, $2, $3, true, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING""",
        e.user_id,
        e.team_id,
        list(e.roles),
        e.language,
        e.time_zone,
        q.start if q else None,
        q.end if q else None,
        fact.envelope.data.get("name"),  # the sealed tokens, opened at query time
        fact.envelope.data.get("email"),
        e.registered_at,
    )
    await _reminders(conn, e)


async def _reminders(conn: Conn, e: ev.UserRegistered | ev.UserProfileChanged) -> None:
    await conn.execute(
        "UPDATE users SET reminders = $2, digest_at = $3 WHERE user_id = $1", e.user_id, e.reminders, e.digest_at
    )


async def _profile(conn: Conn, fact: Fact, e: ev.UserProfileChanged) -> None:
    q = e.quiet_hours
    await conn.execute(
        """UPDATE users SET language = $2, time_zone = $3, quiet_start = $4, quiet_end = $5, name_token = $6,
               email_token = $7 WHERE user_id = $1""",
        e.user_id,
        e.language,
        e.time_zone,
        q.start if q else None,
        q.end if q else None,
        fact.envelope.data.get("name"),
        fact.envelope.data.get("email"),
    )
    await _reminders(conn, e)


async def apply_one(conn: Conn, fact: Fact) -> None:
    match fact.event:
        case ev.UserRegistered() as e:
            await _registered(conn, fact, e)
        case ev.UserProfileChanged() as e:
            await _profile(conn, fact, e)
        case ev.UserRolesChanged() as e:
            await conn.execute("UPDATE users SET roles = $2 WHERE user_id = $1", e.user_id, list(e.new))
        case ev.UserMovedToTeam() as e:
            await conn.execute("UPDATE users SET team_id = $2 WHERE user_id = $1", e.user_id, e.new)
        case ev.UserDeactivated() as e:
            await conn.execute(
                "UPDATE users SET active = false, handed_to = $2 WHERE user_id = $1", e.user_id, e.handed_to
            )
        case ev.UserReactivated() as e:
            await conn.execute("UPDATE users SET active = true, handed_to = NULL WHERE user_id = $1", e.user_id)
        case ev.UserPersonalDataErased() as e:
            await conn.execute(
                "UPDATE users SET erased = true, name_token = NULL, email_token = NULL WHERE user_id = $1", e.user_id
            )
        case ev.TeamCreated() as e:
            await conn.execute(
                "INSERT INTO teams VALUES ($1, $2, true, $3) ON CONFLICT DO NOTHING", e.team_id, e.name, e.created_at
            )
        case ev.TeamRenamed() as e:
            await conn.execute("UPDATE teams SET name = $2 WHERE team_id = $1", e.team_id, e.new)
        case ev.TeamClosed() as e:
            await conn.execute("UPDATE teams SET active = false WHERE team_id = $1", e.team_id)


apply_directory = one_by_one(apply_one)


def directory(topic: str) -> Projection:
    return Projection(
        name="directory",
        topics=(topic,),
        ddl=DDL,
        apply=apply_directory,
        accepts=("pipelines.directory.",),
        tables=("users", "teams"),
    )
