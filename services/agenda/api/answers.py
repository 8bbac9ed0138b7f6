"""What the agenda API's read routes answer, as models: the OpenAPI documents say it, with an example, and a fuzz
run checks each answer against it (decision 0029). ``extra="allow"``: a field added to a view is answered before
its model names it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from shared.edge.queries import Page

_ROW: dict[str, JsonValue] = {
    "activity_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "kind": "call",
    "subject_type": "deal",
    "subject_id": "6d1f0a52-3c2b-4f7e-9a0d-1b2c3d4e5f60",
    "owner_id": "u-lan",
    "team_id": "north",
    "title": "Gọi lại chị Hà về báo giá",
    "due_at": "2026-11-25T09:00:00+07:00",
    "duration_minutes": 15,
    "status": "scheduled",
    "scheduled_at": "2026-11-24T02:30:00+00:00",
    "completed_at": None,
    "version": 1,
}


class ActivityRow(BaseModel):
    """An activity as a list shows it: without its notes or outcome (its own answer opens them)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_ROW]})
    activity_id: str = Field(json_schema_extra={"format": "uuid"})
    kind: str
    subject_type: str = Field(description="deal, lead, organisation or person")
    subject_id: str = Field(json_schema_extra={"format": "uuid"})
    owner_id: str | None
    team_id: str | None
    title: str
    due_at: str | None = Field(json_schema_extra={"format": "date-time"})
    duration_minutes: int | None
    status: str = Field(description="scheduled, done or cancelled")
    scheduled_at: str | None = Field(json_schema_extra={"format": "date-time"})
    completed_at: str | None = Field(json_schema_extra={"format": "date-time"})
    version: int


class ActivityView(ActivityRow):
    """An activity, its notes and outcome opened for those who work it (null for the others)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [_ROW | {"notes": "Chị Hà hỏi thêm về bảo hành", "outcome": None, "notes_erased": False}]
        },
    )
    notes: str | None
    outcome: str | None
    notes_erased: bool


ActivityPage = Page[ActivityRow]


class Agenda(BaseModel):
    """Whose agenda (an owner's, or a team's: no owner), in which time zone and as at when, and their open
    activities in three buckets by due time: overdue, due today (the owner's local day), upcoming."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "owner_id": "u-lan",
                    "team_id": "north",
                    "time_zone": "Asia/Ho_Chi_Minh",
                    "at": "2026-11-25T01:00:00+00:00",
                    "overdue": [],
                    "today": [_ROW],
                    "upcoming": [],
                }
            ]
        },
    )
    owner_id: str | None = Field(description="null: a team's agenda")
    team_id: str | None
    time_zone: str = Field(description="the owner's (the directory's), or the business time zone for a team's")
    at: str = Field(json_schema_extra={"format": "date-time"})
    overdue: list[ActivityRow]
    today: list[ActivityRow]
    upcoming: list[ActivityRow] = Field(description="within `days` local days after today")
