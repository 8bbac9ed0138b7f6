"""Users and teams as the API answers them: JSON, the name and email opened for the answer only."""

from __future__ import annotations

from typing import Any

from services.directory.domain import Team, User
from services.directory.events import QuietHours
from shared.privacy.pii import PersonalData
from shared.store import RecordedEvent

PROFILE_EVENTS = ("pipelines.directory.UserRegistered", "pipelines.directory.UserProfileChanged")


def quiet(q: QuietHours | None) -> dict[str, str] | None:
    return {"start": q.start.isoformat("minutes"), "end": q.end.isoformat("minutes")} if q else None


async def user_view(u: User, events: list[RecordedEvent], version: int, personal_data: PersonalData) -> dict[str, Any]:
    """A user from their stream: the name and email of the last event that gave them, opened now."""
    last = next((e for e in reversed(events) if e.event_type in PROFILE_EVENTS), None)
    sealed = {"name": last.data.get("name"), "email": last.data.get("email")} if last else {}
    (opened,) = await personal_data.open([sealed])
    deactivated = (e for e in reversed(events) if e.event_type == "pipelines.directory.UserDeactivated")
    handed_to = None if u.active else next((e.data.get("handed_to") for e in deactivated), None)
    return {
        "user_id": u.user_id,
        "name": opened.get("name"),
        "email": opened.get("email"),
        "language": u.language,
        "time_zone": u.time_zone,
        "quiet_hours": quiet(u.quiet_hours),
        "reminders": u.reminders,
        "digest_at": u.digest_at.isoformat("minutes") if u.digest_at else None,
        "team_id": u.team_id,
        "roles": list(u.roles),
        "active": u.active,
        "handed_to": handed_to,
        "erased": u.erased,
        "version": version,
    }


async def user_rows(rows: list[dict[str, Any]], personal_data: PersonalData) -> list[dict[str, Any]]:
    """Rows of the read model, their sealed name and email opened for the answer."""
    opened = await personal_data.open([{"name": r["name_token"], "email": r["email_token"]} for r in rows])
    return [
        {
            "user_id": r["user_id"],
            "name": o["name"],
            "email": o["email"],
            "language": r["language"],
            "time_zone": r["time_zone"],
            "quiet_hours": {"start": r["quiet_start"].isoformat("minutes"), "end": r["quiet_end"].isoformat("minutes")}
            if r["quiet_start"] is not None
            else None,
            "reminders": r["reminders"],
            "digest_at": r["digest_at"].isoformat("minutes") if r["digest_at"] is not None else None,
            "team_id": r["team_id"],
            "roles": list(r["roles"]),
            "active": r["active"],
            "handed_to": r["handed_to"],
            "erased": r["erased"],
        }
        for r, o in zip(rows, opened, strict=True)
    ]


def team_view(t: Team, version: int) -> dict[str, Any]:
    return {"team_id": t.team_id, "name": t.name, "active": t.active, "version": version}
