"""Generated histories of the directory's and the agenda's topics (and the deals', leads' and production's events
their read models read), for the batch-split tests (testkit/batches.py): CloudEvents JSON as the relay publishes
them, each stream's versions 1, 2, … in order, streams interleaved at random, some messages redelivered.

Each event starts from the real message of its type in docs/events/examples.jsonl (what the relay wrote in the
demo: every field the contract has) with its ids and the fields a read model keeps drawn anew; every message is
validated to its typed event here, so a history is what the services could have published. Personal fields are
either plaintext (indexed by the read models that open them) or the example's token, sealed under a key no one
has (opened as None: an erased subject). Odd cases are there on purpose: events of things never registered or
opened, a second registration of the same id, an organisation and a person merged, a rate set twice for a day,
an activity changed after it closed.
"""

from __future__ import annotations

import functools
import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from services.agenda import events as _agenda
from services.deals import events as _deals
from services.directory import events as _directory
from services.leads import events as _leads
from shared.messaging.envelope import CloudEvent

KNOWN = (_agenda, _deals, _directory, _leads)  # their event types registered, for ``to_event``

Message = tuple[bytes, bytes]
EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "events" / "examples.jsonl"
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
TEAMS = ("north", "south", "east")
USERS = ("u-an", "u-binh", "u-chi", "u-dung", "u-hoa")
POISONED = "directory-team-team-poisoned"  # the stream of ``directory_history(poison=True)``'s bad event


@functools.cache
def _examples() -> dict[str, dict[str, Any]]:
    """Each event type's example data (its latest schema version)."""
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    for line in EXAMPLES.read_text().splitlines():
        value = json.loads(line)["value"]
        if value["schemaversion"] >= out.get(value["type"], (0, {}))[0]:
            out[value["type"]] = (value["schemaversion"], value["data"])
    return {t: d for t, (_, d) in out.items()}


def _json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class Streams:
    """Streams being written: ``add`` appends an event (its type's example data with ``fields`` over it)."""

    def __init__(self, rng: random.Random, service: str) -> None:
        self.rng = rng
        self.service = service
        self.streams: dict[str, list[Message]] = {}
        self.clock = T0

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def at(self) -> datetime:
        self.clock += timedelta(minutes=self.rng.randint(1, 300))
        return self.clock

    def add(self, stream: str, short_type: str, **fields: Any) -> None:
        event_type = f"pipelines.{self.service}.{short_type}"
        data = json.loads(json.dumps(_examples()[event_type]))
        data.update({k: _json(v) for k, v in fields.items()})
        messages = self.streams.setdefault(stream, [])
        at = self.at()
        envelope = CloudEvent(
            id=str(self.uid()),
            source=f"/pipelines/{self.service}",
            type=event_type,
            subject=stream,
            time=at,
            data=data,
            streamid=stream,
            streamversion=len(messages) + 1,
            position=1,
            schemaversion=_version(event_type),
            recordedtime=at,
            correlationid="c",
            causationid="c",
        )
        envelope.to_event()  # a history holds only events the services could publish
        messages.append((stream.encode(), envelope.kafka_value()))


@functools.cache
def _versions() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in EXAMPLES.read_text().splitlines():
        value = json.loads(line)["value"]
        out[value["type"]] = max(out.get(value["type"], 0), value["schemaversion"])
    return out


def _version(event_type: str) -> int:
    return _versions()[event_type]


def interleave(rng: random.Random, *parts: Streams, redeliver: float = 0.03) -> list[Message]:
    """The streams' messages in one partition's order: each stream's in its own order, streams mixed at random,
    some message already sent sent again."""
    queues = [list(q) for s in parts for q in s.streams.values()]
    out: list[Message] = []
    while queues:
        q = rng.choice(queues)
        out.append(q.pop(0))
        if rng.random() < redeliver:
            out.append(rng.choice(out))
        if not q:
            queues.remove(q)
    return out


def _some(rng: random.Random, choices: list[Callable[[], None]], low: int, high: int) -> None:
    for _ in range(rng.randint(low, high)):
        rng.choice(choices)()


# ---------------------------------------------------------------------------------------------- the directory
def _reach(s: Streams, user: str, plain: bool) -> dict[str, Any]:
    rng = s.rng
    quiet = {"start": "21:00:00", "end": "07:00:00"} if rng.random() < 0.5 else None
    reach: dict[str, Any] = {
        "subject": f"user:{user}",
        "language": rng.choice(["vi", "en"]),
        "time_zone": rng.choice(["Asia/Ho_Chi_Minh", "Asia/Bangkok"]),
        "quiet_hours": quiet,
        "reminders": rng.choice(["immediate", "digest"]),
        "digest_at": "08:00:00" if rng.random() < 0.5 else None,
    }
    if plain:
        reach |= {"name": f"Người {user}", "email": f"{user}.{rng.randint(1, 3)}@example.vn"}
    return reach


def _user(s: Streams, n: int) -> None:
    rng, user = s.rng, f"u-{n}-{s.uid().hex[:6]}"
    stream, plain = f"directory-user-{user}", rng.random() < 0.7
    registered = {"user_id": user, "team_id": rng.choice(TEAMS), "roles": ["sales_rep"], "registered_at": s.at()}
    if rng.random() < 0.1:  # events of a user never registered: nothing but progress
        s.add(stream, "UserRolesChanged", user_id=user, old=[], new=["sales_manager"], reason="r")
    s.add(stream, "UserRegistered", **registered, **_reach(s, user, plain))
    r = functools.partial(s.add, stream, user_id=user, reason="r")
    _some(
        rng,
        [
            lambda: r("UserProfileChanged", **_reach(s, user, rng.random() < 0.7)),
            lambda: r(
                "UserRolesChanged", old=["sales_rep"], new=rng.choice([["sales_manager"], ["sales_rep", "admin"]])
            ),
            lambda: r("UserMovedToTeam", old="north", new=rng.choice(TEAMS)),
            lambda: r("UserDeactivated", team_id="north", handed_to=rng.choice(USERS), deactivated_at=s.at()),
            lambda: r("UserReactivated", team_id="north"),
            lambda: r("UserPersonalDataErased", subject=f"user:{user}", erased_at=s.at()),
            lambda: s.add(stream, "UserRegistered", **registered, **_reach(s, user, plain)),  # a second time
        ],
        1,
        6,
    )


def _team(s: Streams, n: int) -> None:
    team = f"team-{n}"
    stream = f"directory-team-{team}"
    s.add(stream, "TeamCreated", team_id=team, name=f"Team {n}", created_at=s.at())
    if s.rng.random() < 0.5:
        s.add(stream, "TeamRenamed", team_id=team, old=f"Team {n}", new=f"Đội {n}", reason="r")
    if s.rng.random() < 0.3:
        s.add(stream, "TeamClosed", team_id=team, reason="r", closed_at=s.at())


def _organisation(s: Streams, others: list[uuid.UUID]) -> uuid.UUID:
    rng, org = s.rng, s.uid()
    stream = f"directory-organisation-{org}"
    details = {
        "name": rng.choice(["Nhà hàng Sen", "Quán Mộc", "Khách sạn Xa"]) + f" {org.hex[:4]}",
        "tax_code": rng.choice([None, f"{rng.randint(10**9, 10**10 - 1)}"]),
        "industry": rng.choice([None, "restaurant", "hotel"]),
        "addresses": [{"line": "1 Lê Lợi", "province": p} for p in rng.sample(["ha-noi", "hue", "da-nang"], 2)],
    }
    owner = {"owner_id": rng.choice(USERS), "team_id": rng.choice(TEAMS)}
    if rng.random() < 0.1:  # changed before it was registered: an index row, no organisation row
        s.add(stream, "OrganisationChanged", organisation_id=org, reason="r", **details)
    s.add(stream, "OrganisationRegistered", organisation_id=org, registered_at=s.at(), **details, **owner)
    r = functools.partial(s.add, stream, organisation_id=org, reason="r")
    _some(
        rng,
        [
            lambda: r("OrganisationChanged", **details | {"name": f"Công ty {s.uid().hex[:5]}"}),
            lambda: r("OrganisationReassigned", old_owner_id="u-an", old_team_id="north", **owner),
            lambda: r("OrganisationMerged", into=rng.choice(others) if others else s.uid(), merged_at=s.at()),
            lambda: r("OrganisationAbsorbed", merged_from=s.uid(), merged_at=s.at()),
        ],
        0,
        4,
    )
    return org


def _person(s: Streams, organisations: list[uuid.UUID]) -> None:
    rng, person = s.rng, s.uid()
    stream, subject = f"directory-person-{person}", f"person:{person}"

    def details() -> dict[str, Any]:
        if rng.random() < 0.3:
            return {}  # the example's sealed tokens: a key no one has
        return {
            "name": f"Chị {person.hex[:4]}",
            "title": "chủ",
            "phones": [f"+849{rng.randint(10**7, 10**8 - 1)}"],
            "emails": [f"{person.hex[:6]}@example.vn"],
            "zalo_id": None,
        }

    org = rng.choice([None, *organisations])
    s.add(
        stream,
        "PersonRegistered",
        person_id=person,
        subject=subject,
        organisation_id=org,
        owner_id=rng.choice(USERS),
        team_id=rng.choice(TEAMS),
        registered_at=s.at(),
        **details(),
    )
    r = functools.partial(s.add, stream, person_id=person, reason="r")
    _some(
        rng,
        [
            lambda: r(
                "PersonChanged", subject=subject, organisation_id=rng.choice([None, *organisations]), **details()
            ),
            lambda: r("PersonReassigned", old_owner_id="u-an", old_team_id="north", owner_id="u-chi", team_id="south"),
            lambda: r("PersonMerged", into=s.uid(), merged_at=s.at()),
            lambda: r("PersonPersonalDataErased", subject=subject, erased_at=s.at()),
        ],
        0,
        4,
    )


def directory_history(seed: int, size: int = 12, *, poison: bool = False) -> list[Message]:
    """The directory's topic: ``size`` users, organisations and people, a few teams, rates and an import.
    ``poison``: one team created with a name PostgreSQL refuses (a NUL character): the ``directory`` read model
    cannot apply it (a dead letter), the others pass it (``POISONED``)."""
    rng = random.Random(seed)
    s = Streams(rng, "directory")
    for n in range(size):
        _user(s, n)
    for n in range(3):
        _team(s, n)
    if poison:
        s.add(POISONED, "TeamCreated", team_id="team-poisoned", name="Đội\x00", created_at=s.at())
    organisations: list[uuid.UUID] = []
    for _ in range(size):
        organisations.append(_organisation(s, organisations))
    for _ in range(size):
        _person(s, organisations)
    for _ in range(6):
        currency = rng.choice(["USD", "EUR"])
        day = date(2026, 3, rng.randint(1, 3))
        s.add(
            f"directory-rate-{currency}",
            "RateSet",
            currency=currency,
            effective_from=day,
            per_vnd=str(rng.randint(20, 30) * 1000),
        )
    imports = s.uid()
    s.add(f"directory-import-{imports}", "ImportStarted", import_id=imports)
    return interleave(rng, s)


# ---------------------------------------------------------------------------------------------- the agenda
def _activity(s: Streams) -> None:
    rng, activity = s.rng, s.uid()
    stream = f"agenda-activity-{activity}"
    subject = s.uid()
    scheduled = {
        "activity_id": activity,
        "subject_type": "deal",
        "subject_ref": subject,
        "data_subject": f"deal:{subject}",
        "owner_id": rng.choice(USERS),
        "team_id": rng.choice(TEAMS),
        "due_at": s.at(),
        "scheduled_at": s.at(),
        "notes": rng.choice([None, "gọi lại sau 3 giờ"]),
    }
    if rng.random() < 0.1:  # rescheduled before it was scheduled: nothing
        s.add(
            stream, "ActivityRescheduled", activity_id=activity, old_due_at=s.at(), due_at=s.at(), duration_minutes=15
        )
    s.add(stream, "ActivityScheduled", **scheduled)
    r = functools.partial(s.add, stream, activity_id=activity)
    _some(
        rng,
        [
            lambda: r("ActivityRescheduled", old_due_at=s.at(), due_at=s.at(), duration_minutes=rng.choice([15, 45])),
            lambda: r(
                "ActivityCompleted",
                data_subject=f"deal:{subject}",
                completed_at=s.at(),
                outcome=rng.choice([None, "đã gọi"]),
            ),
            lambda: r("ActivityCancelled", reason="r", cancelled_at=s.at()),
            lambda: r(
                "ActivityReassigned", old_owner_id="u-an", owner_id=rng.choice(USERS), team_id="south", reason="r"
            ),
            lambda: r("ActivityNotesErased", data_subject=f"deal:{subject}", reason="r", erased_at=s.at()),
            lambda: s.add(stream, "ActivityScheduled", **scheduled),  # a second time: the first row stays
        ],
        0,
        5,
    )


def agenda_history(seed: int, size: int = 30) -> list[Message]:
    """The agenda's own topic: ``size`` activities."""
    rng = random.Random(seed)
    s = Streams(rng, "agenda")
    for _ in range(size):
        _activity(s)
    return interleave(rng, s)


def _deal(s: Streams) -> uuid.UUID:
    rng, deal = s.rng, s.uid()
    stream = f"deal-{deal}"
    contact = rng.choice([None, str(s.uid())])
    opened = {
        "deal_id": deal,
        "owner_id": rng.choice(USERS),
        "team_id": rng.choice([*TEAMS, None]),
        "contact_id": contact,
        "contact": None
        if contact is None or rng.random() < 0.5
        else _examples()["pipelines.deals.DealOpened"]["contact"],
        "source_lead_id": rng.choice([None, s.uid()]),
        "customer": f"Khách {deal.hex[:4]}",
        "opened_at": s.at(),
    }
    if rng.random() < 0.15:  # linked before it was opened (a conversion's): nothing yet
        s.add(stream, "DealCustomerLinked", deal_id=deal, organisation_id=s.uid())
    s.add(stream, "DealOpened", **opened)
    r = functools.partial(s.add, stream, deal_id=deal)
    _some(
        rng,
        [
            lambda: r("DealReassigned", to_owner_id=rng.choice(USERS), to_team_id=rng.choice(TEAMS)),
            lambda: r("DealCustomerLinked", organisation_id=s.uid()),
            lambda: r("DealContactErased"),
            lambda: r("DealWon", won_at=s.at()),
            lambda: r("DealLost", lost_at=s.at()),
            lambda: r("DealReopened", reopened_at=s.at()),
            lambda: s.add(stream, "DealOpened", **opened),  # a second time
        ],
        0,
        5,
    )
    return deal


def _lead(s: Streams) -> None:
    rng, lead = s.rng, s.uid()
    stream = f"lead-{lead}"
    if rng.random() < 0.1:  # assigned before it was captured: nothing
        s.add(stream, "LeadAssigned", lead_id=lead, owner_id="u-an", team_id="north")
    s.add(stream, "LeadCaptured", lead_id=lead, captured_at=s.at())
    r = functools.partial(s.add, stream, lead_id=lead)
    _some(
        rng,
        [
            lambda: r("LeadAssigned", owner_id=rng.choice(USERS), team_id=rng.choice([None, *TEAMS])),
            lambda: r("LeadConverted"),
            lambda: r("LeadDisqualified", at=s.at()),
            lambda: r("LeadMergedInto", survivor_id=s.uid()),
            lambda: r("LeadRecycled"),
        ],
        0,
        4,
    )


def deals_and_leads_history(seed: int, size: int = 20) -> list[Message]:
    """What the agenda's ``subjects`` and the directory's ``adoption`` read: deals' and leads' events."""
    rng = random.Random(seed)
    deals, leads = Streams(rng, "deals"), Streams(rng, "leads")
    for _ in range(size):
        _deal(deals)
        _lead(leads)
    return interleave(rng, deals, leads)
