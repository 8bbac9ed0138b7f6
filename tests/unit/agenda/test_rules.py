"""The agenda's rules, given as events (given → when → then, testkit.slices): an activity scheduled, rescheduled,
completed, cancelled, reassigned; "in the past" is the command's occurred time; nothing after it is done; the one
channel list of leads, deals and the agenda."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.agenda.domain import (
    Cancel,
    Complete,
    EraseNotes,
    Placement,
    Reassign,
    Reschedule,
    Schedule,
    activity_decider,
    decide,
)
from services.agenda.events import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityNotesErased,
    ActivityReassigned,
    ActivityRescheduled,
    ActivityScheduled,
)
from services.deals.domain.commands import LogActivity
from services.leads.domain.commands import RecordContact
from shared.core.channels import ActivityKind, Channel
from shared.core.events import registry
from testkit.slices import Slice

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 09:00 in Hanoi
ACTIVITY = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
DEAL = uuid.UUID("00000000-0000-4000-8000-0000000000d1")
PLACE = Placement(owner_id="u-lan", team_id="north", data_subject="c-typed-1")


def at(when: datetime) -> Slice[object]:
    """The slice whose commands happen at ``when`` (the command's occurred time)."""
    return Slice(activity_decider, lambda a, cmd: decide(a, cmd, when, ACTIVITY, PLACE))


activities = at(NOW)
SCHEDULE = Schedule(
    kind=ActivityKind.PHONE,
    subject_type="deal",
    subject_id=DEAL,
    title="Gọi lại về báo giá",
    notes="Chị Hà muốn giảm 5%",
    due_at=NOW + timedelta(hours=3),
    duration_minutes=15,
)
SCHEDULED = ActivityScheduled(
    activity_id=ACTIVITY,
    kind="phone",
    subject_type="deal",
    subject_ref=DEAL,
    owner_id="u-lan",
    team_id="north",
    title="Gọi lại về báo giá",
    notes="Chị Hà muốn giảm 5%",
    due_at=NOW + timedelta(hours=3),
    duration_minutes=15,
    data_subject="c-typed-1",
    scheduled_at=NOW,
)
STORED = SCHEDULED.model_copy(update={"notes": None})  # as the domain reads it back: sealed fields None
DONE = ActivityCompleted(activity_id=ACTIVITY, outcome=None, data_subject="c-typed-1", completed_at=NOW)
CANCELLED = ActivityCancelled(activity_id=ACTIVITY, reason="khách hủy", cancelled_at=NOW)


def test_an_activity_is_scheduled_once_with_its_owner_team_and_data_subject() -> None:
    activities.given().when(SCHEDULE).then(SCHEDULED)
    activities.given(STORED).when(SCHEDULE).refused("activity_exists")
    assert ActivityScheduled.personal_fields == ("notes",) and ActivityCompleted.personal_fields == ("outcome",)
    assert SCHEDULED.subject_id() == "c-typed-1", "notes are sealed under the subject's data-subject key"


def test_no_due_time_before_the_commands_time_which_may_be_back_dated() -> None:
    early = SCHEDULE.model_copy(update={"due_at": NOW - timedelta(minutes=1)})
    refused = activities.given().when(early).refused("due_in_the_past")
    assert getattr(refused, "field", None) == "due_at"
    # imported history: the command happened a day ago, when this due time was still ahead
    yesterday = NOW - timedelta(days=1)
    (e,) = at(yesterday).given().when(early).then_events()
    assert isinstance(e, ActivityScheduled) and e.scheduled_at == yesterday and e.due_at == early.due_at
    activities.given().when(SCHEDULE.model_copy(update={"due_at": NOW})).then_events()  # now itself is fine


def test_nothing_happens_to_an_activity_never_scheduled() -> None:
    for cmd in (
        Complete(),
        Cancel(reason="x"),
        Reschedule(due_at=NOW + timedelta(days=1)),
        Reassign(owner_id="u-binh", reason="x"),
        EraseNotes(reason="x"),
    ):
        activities.given().when(cmd).refused("not_found")


def test_rescheduling_moves_it_not_into_the_past_and_not_to_where_it_is() -> None:
    later = NOW + timedelta(days=1)
    activities.given(STORED).when(Reschedule(due_at=later, reason="khách bận")).then(
        ActivityRescheduled(
            activity_id=ACTIVITY, old_due_at=SCHEDULED.due_at, due_at=later, duration_minutes=15, reason="khách bận"
        )
    )
    activities.given(STORED).when(Reschedule(due_at=SCHEDULED.due_at)).refused("unchanged")
    (longer,) = activities.given(STORED).when(Reschedule(due_at=SCHEDULED.due_at, duration_minutes=45)).then_events()
    assert isinstance(longer, ActivityRescheduled) and longer.duration_minutes == 45
    refused = activities.given(STORED).when(Reschedule(due_at=NOW - timedelta(hours=1))).refused("due_in_the_past")
    assert getattr(refused, "field", None) == "due_at"
    # an overdue activity moved: its old due time is in the past, the new one is not
    overdue = STORED.model_copy(update={"due_at": NOW - timedelta(hours=5)})
    (moved,) = activities.given(overdue).when(Reschedule(due_at=later)).then_events()
    assert isinstance(moved, ActivityRescheduled) and moved.old_due_at == NOW - timedelta(hours=5)


def test_completion_with_its_outcome_not_before_the_scheduling() -> None:
    activities.given(STORED).when(Complete(outcome="Đồng ý ký hợp đồng")).then(
        DONE.model_copy(update={"outcome": "Đồng ý ký hợp đồng"})
    )
    at(NOW - timedelta(minutes=1)).given(STORED).when(Complete()).refused("completed_before_scheduled")
    # done late (after its due time) is still done: overdue work gets done
    (e,) = at(NOW + timedelta(days=2)).given(STORED).when(Complete()).then_events()
    assert isinstance(e, ActivityCompleted) and e.completed_at == NOW + timedelta(days=2)


def test_nothing_after_completion_or_cancellation() -> None:
    later = NOW + timedelta(days=1)
    for end, rule in ((DONE, "activity_done"), (CANCELLED, "activity_cancelled")):
        for cmd in (Complete(), Cancel(reason="x"), Reschedule(due_at=later), Reassign(owner_id="u-binh", reason="x")):
            activities.given(STORED, end).when(cmd).refused(rule)
    activities.given(STORED).when(Cancel(reason="khách hủy")).then(CANCELLED)


def test_reassigned_to_another_owner_keeping_or_naming_the_team() -> None:
    slice_ = Slice(activity_decider, lambda a, cmd: decide(a, cmd, NOW, ACTIVITY))
    slice_.given(STORED).when(Reassign(owner_id="u-binh", reason="nghỉ phép")).then(
        ActivityReassigned(
            activity_id=ACTIVITY, old_owner_id="u-lan", owner_id="u-binh", team_id="north", reason="nghỉ phép"
        )
    )
    slice_.given(STORED).when(Reassign(owner_id="u-lan", reason="x")).refused("unchanged")
    (moved,) = slice_.given(STORED).when(Reassign(owner_id="u-tuan", team_id="south", reason="x")).then_events()
    assert isinstance(moved, ActivityReassigned) and moved.team_id == "south"
    state = activity_decider.fold([STORED, moved])
    assert (state.owner_id, state.team_id, state.open) == ("u-tuan", "south", True)


def test_notes_erased_once_whatever_its_status() -> None:
    erased = ActivityNotesErased(activity_id=ACTIVITY, data_subject="c-typed-1", reason="lead erased", erased_at=NOW)
    activities.given(STORED, DONE).when(EraseNotes(reason="lead erased")).then(erased)
    activities.given(STORED, erased).when(EraseNotes(reason="again")).refused("notes_erased")
    assert not registry.erasure_gaps("pipelines.agenda.")
    assert registry.erased_subject(erased.event_type, erased.model_dump(mode="json")) == "c-typed-1"


def test_bounded_fields_are_refused_naming_the_field() -> None:
    base = SCHEDULE.model_dump()
    for change, loc in (
        ({"duration_minutes": 8 * 60 + 1}, "duration_minutes"),
        ({"duration_minutes": -1}, "duration_minutes"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"notes": "x" * 2001}, "notes"),
        ({"kind": "fax"}, "kind"),
        ({"subject_type": "campaign"}, "subject_type"),
        ({"due_at": "2026-12-07T09:00:00"}, "due_at"),  # no offset
        ({"owner_id": "u lan"}, "owner_id"),
    ):
        with pytest.raises(ValidationError) as refused:
            Schedule.model_validate(base | change)
        assert refused.value.errors()[0]["loc"][0] == loc, change


def test_one_channel_list_for_leads_deals_and_the_agenda() -> None:
    assert {k.value for k in ActivityKind} == {c.value for c in Channel} | {"task"}
    for channel in ("zalo", "in_person", "phone", "email", "meeting"):
        assert RecordContact(channel=channel).channel == channel
        LogActivity(activity_id=ACTIVITY, activity_type="call", channel=channel)
        Schedule.model_validate(SCHEDULE.model_dump() | {"kind": channel})
    with pytest.raises(ValidationError):
        RecordContact(channel="fax")
