"""What the directory API's user and team routes answer, as models: the OpenAPI documents say it, with an example,
and a fuzz run checks each answer against it (decision 0029). ``extra="allow"``: a field added to a view is
answered before its model names it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from shared.edge.queries import Page

_USER: dict[str, JsonValue] = {
    "user_id": "u-lan",
    "name": "Nguyễn Thị Lan",
    "email": "lan.nguyen@example.vn",
    "language": "vi",
    "time_zone": "Asia/Ho_Chi_Minh",
    "quiet_hours": {"start": "21:00", "end": "07:00"},
    "reminders": "immediate",
    "digest_at": None,
    "team_id": "north",
    "roles": ["sales"],
    "active": True,
    "handed_to": None,
    "erased": False,
}


class QuietHours(BaseModel):
    start: str = Field(description="HH:MM, local time")
    end: str = Field(description="HH:MM, local time")


class UserRow(BaseModel):
    """A user as the list shows them: name and email opened (null once erased)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_USER]})
    user_id: str
    name: str | None
    email: str | None
    language: str
    time_zone: str
    quiet_hours: QuietHours | None
    reminders: str = Field(description="immediate or digest")
    digest_at: str | None = Field(description="HH:MM, local time, for a digest")
    team_id: str | None
    roles: list[str]
    active: bool
    handed_to: str | None = Field(description="who took over a deactivated user's work")
    erased: bool


class UserView(UserRow):
    """A user now, with the version of their stream (its ETag)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_USER | {"version": 3}]})
    version: int


class TeamView(BaseModel):
    """A team now, with the version of its stream (its ETag)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"team_id": "north", "name": "Miền Bắc", "active": True, "version": 2}]},
    )
    team_id: str
    name: str
    active: bool
    version: int


UserPage = Page[UserRow]


class OrganisationView(BaseModel):
    """An organisation now (a merged one: the one it reads as, and ``read_from`` the id asked for)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "organisation_id": "2b3c4d5e-6f70-4a81-9b2c-3d4e5f607182",
                    "name": "Công ty Hòa Bình",
                    "tax_code": "0101234567",
                    "addresses": [
                        {
                            "line1": "12 Lý Thường Kiệt",
                            "ward": None,
                            "province": "01",
                            "label": "head office",
                            "province_name": "Hà Nội",
                        }
                    ],
                    "industry": "hospitality",
                    "owner_id": "u-lan",
                    "team_id": "north",
                    "merged_into": None,
                    "merged_from": [],
                    "version": 2,
                    "read_from": None,
                }
            ]
        },
    )
    organisation_id: str = Field(json_schema_extra={"format": "uuid"})
    name: str
    tax_code: str | None
    addresses: list[dict[str, JsonValue]] = Field(description="each with its province's name")
    industry: str | None
    owner_id: str
    team_id: str
    merged_into: str | None
    merged_from: list[str]
    version: int
    read_from: str | None = Field(description="the id asked for, when it was merged into this one")


class PersonView(BaseModel):
    """A person now, details opened (null once erased); a merged one: the person they read as."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "person_id": "3c4d5e6f-7081-4b92-8c3d-4e5f60718293",
                    "organisation_id": "2b3c4d5e-6f70-4a81-9b2c-3d4e5f607182",
                    "name": "Phạm Thu Hà",
                    "title": "Giám đốc mua hàng",
                    "phones": ["0905123456"],
                    "emails": ["ha.pham@hoabinh.vn"],
                    "zalo_id": None,
                    "consent": {"marketing": True, "given_at": "2026-11-20T03:00:00+00:00", "text_version": "v2"},
                    "owner_id": "u-lan",
                    "team_id": "north",
                    "erased": False,
                    "merged_into": None,
                    "merged_from": [],
                    "version": 3,
                    "read_from": None,
                }
            ]
        },
    )
    person_id: str = Field(json_schema_extra={"format": "uuid"})
    organisation_id: str | None
    name: str | None
    title: str | None
    phones: list[str] | None
    emails: list[str] | None
    zalo_id: str | None
    consent: dict[str, JsonValue] | None
    owner_id: str
    team_id: str
    erased: bool
    merged_into: str | None
    merged_from: list[str]
    version: int
    read_from: str | None = Field(description="the id asked for, when they were merged into this one")


class TeamRow(BaseModel):
    """A team as the list shows it, with how many active users it has."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "team_id": "north",
                    "name": "Miền Bắc",
                    "active": True,
                    "created_at": "2026-11-01T02:00:00+00:00",
                    "active_users": 4,
                }
            ]
        },
    )
    team_id: str
    name: str
    active: bool
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    active_users: int


TeamPage = Page[TeamRow]


class Province(BaseModel):
    code: str
    name: str | None


class OrganisationRow(BaseModel):
    """An organisation as the list shows it: its provinces named, how many people it has."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "organisation_id": "2b3c4d5e-6f70-4a81-9b2c-3d4e5f607182",
                    "name": "Công ty Hòa Bình",
                    "tax_code": "0101234567",
                    "industry": "hospitality",
                    "provinces": [{"code": "01", "name": "Hà Nội"}],
                    "owner_id": "u-lan",
                    "team_id": "north",
                    "people": 2,
                }
            ]
        },
    )
    organisation_id: str = Field(json_schema_extra={"format": "uuid"})
    name: str
    tax_code: str | None
    industry: str | None
    provinces: list[Province]
    owner_id: str
    team_id: str
    people: int


OrganisationPage = Page[OrganisationRow]


class PersonRow(BaseModel):
    """A person as the list shows them: name and title opened (null once erased)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "person_id": "3c4d5e6f-7081-4b92-8c3d-4e5f60718293",
                    "organisation_id": "2b3c4d5e-6f70-4a81-9b2c-3d4e5f607182",
                    "name": "Phạm Thu Hà",
                    "title": "Giám đốc mua hàng",
                    "owner_id": "u-lan",
                    "team_id": "north",
                    "erased": False,
                }
            ]
        },
    )
    person_id: str = Field(json_schema_extra={"format": "uuid"})
    organisation_id: str | None
    name: str | None
    title: str | None
    owner_id: str
    team_id: str
    erased: bool


PersonPage = Page[PersonRow]


class Duplicate(BaseModel):
    """Customers sharing one tax code, phone or email (``match`` says which): candidates for a merge."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "match": "tax",
                    "organisations": ["2b3c4d5e-6f70-4a81-9b2c-3d4e5f607182", "4d5e6f70-8192-4ca3-9d4e-5f6071829304"],
                    "people": [],
                }
            ]
        },
    )
    match: str = Field(description="tax, phone or email")
    organisations: list[str]
    people: list[str]


DuplicatePage = Page[Duplicate]


class Rate(BaseModel):
    currency: str
    effective_from: str = Field(json_schema_extra={"format": "date"})
    per_vnd: str = Field(description="the đồng one unit is worth, a decimal as a string")


class Rates(BaseModel):
    """Every exchange rate set, per currency by day (base VND), and how totals are rounded."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "base": "VND",
                    "rounding": "each total once, half-even, to the đồng, after summing the exact products",
                    "rates": [{"currency": "USD", "effective_from": "2026-12-01", "per_vnd": "25400"}],
                }
            ]
        },
    )
    base: str
    rounding: str
    rates: list[Rate]


class ImportCounts(BaseModel):
    rows: int
    created: int
    exists: int
    refused: int
    bad: int


class BadRow(BaseModel):
    row: int = Field(description="the file's row number")
    column: str
    reason: str


class ImportJob(BaseModel):
    """An import job: its file, its state (running, done, failed), its counts so far and its first bad rows."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "id": "5e6f7081-92a3-4bb4-8c5d-6e7f8091a2b3",
                    "source": "misa",
                    "file_name": "khach-hang.csv",
                    "size": 48213,
                    "dry_run": False,
                    "owner": "u-lan",
                    "owner_team": "north",
                    "started_at": "2026-12-06T02:00:00+00:00",
                    "state": "done",
                    "row": None,
                    "counts": {"rows": 120, "created": 117, "exists": 2, "refused": 0, "bad": 1},
                    "reason": None,
                    "finished_at": "2026-12-06T02:00:09+00:00",
                    "bad_rows": [{"row": 57, "column": "tax_code", "reason": "not a tax code"}],
                }
            ]
        },
    )
    id: str = Field(json_schema_extra={"format": "uuid"})
    source: str = Field(description="the mapping it reads the file with")
    file_name: str
    size: int = Field(description="bytes")
    dry_run: bool
    owner: str | None
    owner_team: str | None
    started_at: str = Field(json_schema_extra={"format": "date-time"})
    state: str = Field(description="running, done or failed")
    row: int | None = Field(description="while running: every row up to this one answered")
    counts: ImportCounts
    reason: str | None = Field(description="why it failed")
    finished_at: str | None = Field(json_schema_extra={"format": "date-time"})
    bad_rows: list[BadRow]
