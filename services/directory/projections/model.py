"""The ``directory`` read model's tables and the function applying the directory's events to them. Each
batch's rows are read once, folded in order and written once (``shared.messaging.rows``): any split of a
history into batches leaves the same tables."""

from __future__ import annotations

from collections.abc import Sequence

from services.directory import events as ev
from shared.messaging.projections import Fact, Projection
from shared.messaging.rows import Rows, Table
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


USERS = Table(
    "users",
    {
        "user_id": "text",
        "team_id": "text",
        "roles": "text[]",
        "active": "boolean",
        "language": "text",
        "time_zone": "text",
        "quiet_start": "time",
        "quiet_end": "time",
        "name_token": "text",
        "email_token": "text",
        "erased": "boolean",
        "handed_to": "text",
        "registered_at": "timestamptz",
        "reminders": "text",
        "digest_at": "time",
    },
    defaults={"roles": [], "erased": False, "reminders": "immediate"},
)
TEAMS = Table("teams", {"team_id": "text", "name": "text", "active": "boolean", "created_at": "timestamptz"})


def _registered(users: Rows, fact: Fact, e: ev.UserRegistered) -> None:
    q = e.quiet_hours
    row = USERS.new(
        user_id=e.user_id,
        team_id=e.team_id,
        roles=list(e.roles),
        active=True,
        language=e.language,
        time_zone=e.time_zone,
        quiet_start=q.start if q else None,
        quiet_end=q.end if q else None,
        name_token=fact.envelope.data.get("name"),  # the sealed tokens, opened at query time
        email_token=fact.envelope.data.get("email"),
        registered_at=e.registered_at,
    )
    users.insert(row)
    users.update(e.user_id, reminders=e.reminders, digest_at=e.digest_at)  # a second registration's too


def _profile(users: Rows, fact: Fact, e: ev.UserProfileChanged) -> None:
    q = e.quiet_hours
    users.update(
        e.user_id,
        language=e.language,
        time_zone=e.time_zone,
        quiet_start=q.start if q else None,
        quiet_end=q.end if q else None,
        name_token=fact.envelope.data.get("name"),
        email_token=fact.envelope.data.get("email"),
        reminders=e.reminders,
        digest_at=e.digest_at,
    )


def _fold(users: Rows, teams: Rows, fact: Fact) -> None:
    match fact.event:
        case ev.UserRegistered() as e:
            _registered(users, fact, e)
        case ev.UserProfileChanged() as e:
            _profile(users, fact, e)
        case ev.UserRolesChanged() as e:
            users.update(e.user_id, roles=list(e.new))
        case ev.UserMovedToTeam() as e:
            users.update(e.user_id, team_id=e.new)
        case ev.UserDeactivated() as e:
            users.update(e.user_id, active=False, handed_to=e.handed_to)
        case ev.UserReactivated() as e:
            users.update(e.user_id, active=True, handed_to=None)
        case ev.UserPersonalDataErased() as e:
            users.update(e.user_id, erased=True, name_token=None, email_token=None)
        case ev.TeamCreated() as e:
            teams.insert(TEAMS.new(team_id=e.team_id, name=e.name, active=True, created_at=e.created_at))
        case ev.TeamRenamed() as e:
            teams.update(e.team_id, name=e.new)
        case ev.TeamClosed() as e:
            teams.update(e.team_id, active=False)


async def apply_directory(conn: Conn, facts: Sequence[Fact]) -> None:
    """A batch of the directory's events on users and teams, in order: read once, folded, written once."""
    events = [f.event for f in facts]
    users = await USERS.rows(conn, {e.user_id for e in events if isinstance(e, ev.UserEvent)})
    teams = await TEAMS.rows(conn, {e.team_id for e in events if isinstance(e, ev.TeamEvent)})
    for fact in facts:
        _fold(users, teams, fact)
    await users.flush(conn)
    await teams.flush(conn)


def directory(topic: str) -> Projection:
    return Projection(
        name="directory",
        topics=(topic,),
        ddl=DDL,
        apply=apply_directory,
        accepts=("pipelines.directory.",),
        tables=("users", "teams"),
    )
