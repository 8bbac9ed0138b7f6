"""What the notifier reads, from the agenda's read models: the open activities (``activities``), the alerts that
name the users they concern (``alerts``, the alerts topic's read model each service keeps) and the recipients (the
directory's replica, ``directory``: language, time zone, quiet hours, reminders, the email opened from its token
with the shared key store — None once the user is erased)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from services.agenda.notifier.plan import Activity, Alert, Recipient
from shared.messaging.projections import ReadModels
from shared.privacy.pii import PersonalData

AHEAD = timedelta(hours=38)  # the end of any time zone's local day, from now: what a digest may gather


@dataclass
class ReadModelSource:
    read_models: ReadModels
    personal_data: PersonalData
    overdue_window: timedelta = timedelta(days=1)
    alert_window: timedelta = timedelta(days=1)

    async def activities(self, now: datetime) -> list[Activity]:
        async with self.read_models.connection("activities") as conn:
            rows = await conn.fetch(
                """SELECT activity_id, owner_id, kind, title, due_at, subject_type, subject_ref FROM activities
                   WHERE status = 'scheduled' AND due_at > $1 AND due_at <= $2""",
                now - self.overdue_window,
                now + AHEAD,
            )
        return [
            Activity(
                r["activity_id"],
                r["owner_id"],
                r["kind"],
                r["title"],
                r["due_at"],
                r["subject_type"],
                str(r["subject_ref"]),
            )
            for r in rows
        ]

    async def alerts(self, now: datetime) -> list[Alert]:
        try:
            async with self.read_models.connection("alerts") as conn:
                rows = await conn.fetch(
                    """SELECT alert_id, kind, summary, entity, raised_at, concerns FROM alerts
                       WHERE cleared_at IS NULL AND raised_at > $1""",
                    now - self.alert_window,
                )
        except (LookupError, asyncpg.UndefinedColumnError, asyncpg.UndefinedTableError):
            return []  # no alerts read model here (yet), or one of before ``concerns``
        return [
            Alert(r["alert_id"], r["kind"], r["summary"], r["entity"], r["raised_at"], tuple(r["concerns"]))
            for r in rows
        ]

    async def recipients(self, user_ids: set[str], roles: set[str]) -> dict[str, Recipient]:
        async with self.read_models.connection("directory") as conn:
            rows = await conn.fetch(
                """SELECT user_id, active, language, time_zone, quiet_start, quiet_end, reminders, digest_at,
                          email_token, roles FROM users WHERE user_id = ANY($1) OR (active AND roles && $2)""",
                list(user_ids),
                list(roles),
            )
        opened = await self.personal_data.open([{"email": r["email_token"]} for r in rows])
        return {
            r["user_id"]: Recipient(
                r["user_id"],
                o["email"],
                r["language"],
                r["time_zone"],
                r["quiet_start"],
                r["quiet_end"],
                r["reminders"],
                r["digest_at"],
                r["active"],
                tuple(r["roles"]),
            )
            for r, o in zip(rows, opened, strict=True)
        }


@dataclass
class MemorySource:
    """The notifier's input in memory (unit tests, the benchmark)."""

    users: dict[str, Recipient] = field(default_factory=dict)
    open_activities: list[Activity] = field(default_factory=list)
    active_alerts: list[Alert] = field(default_factory=list)

    async def activities(self, now: datetime) -> list[Activity]:
        return list(self.open_activities)

    async def alerts(self, now: datetime) -> list[Alert]:
        return list(self.active_alerts)

    async def recipients(self, user_ids: set[str], roles: set[str]) -> dict[str, Recipient]:
        return {u: r for u, r in self.users.items() if u in user_ids or (r.active and set(r.roles) & roles)}
