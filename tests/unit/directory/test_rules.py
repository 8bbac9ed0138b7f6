"""The directory's rules, given as events: users and teams (given → when → then, testkit.slices)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from pydantic import ValidationError

from services.directory.domain import (
    ChangeProfile,
    ChangeRoles,
    CloseTeam,
    CreateTeam,
    Deactivate,
    EraseUser,
    MoveToTeam,
    Reactivate,
    RegisterUser,
    RenameTeam,
    decide_team,
    decide_user,
    team_decider,
    user_decider,
)
from services.directory.events import (
    QuietHours,
    TeamClosed,
    TeamCreated,
    TeamRenamed,
    UserDeactivated,
    UserMovedToTeam,
    UserPersonalDataErased,
    UserProfileChanged,
    UserReactivated,
    UserRegistered,
    UserRolesChanged,
)
from shared.core.events import registry
from shared.edge.auth import ROLES
from testkit.slices import Slice

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
LAN = "u-lan"
users = Slice(user_decider, lambda u, cmd: decide_user(u, cmd, NOW, LAN, known_roles=ROLES))
teams = Slice(team_decider, lambda t, cmd: decide_team(t, cmd, NOW, "north"))
REGISTERED = UserRegistered(
    user_id=LAN,
    subject="user:u-lan",
    name=None,  # as stored: the sealed fields read back as None to the domain
    email=None,
    language="vi",
    time_zone="Asia/Ho_Chi_Minh",
    quiet_hours=QuietHours(start=time(21), end=time(7)),
    team_id="north",
    roles=("sales",),
    registered_at=NOW,
)
DEACTIVATED = UserDeactivated(user_id=LAN, team_id="north", handed_to="u-minh", reason="left", deactivated_at=NOW)


def test_a_user_is_registered_once_with_their_sealed_profile_under_their_own_subject() -> None:
    cmd = RegisterUser(
        user_id=LAN, name="Trần Thị Lan", email="lan@example.vn", team_id="north", roles=("sales", "sales")
    )
    (e,) = users.given().when(cmd).then_events()
    assert isinstance(e, UserRegistered)
    assert (e.subject, e.name, e.roles, e.language) == ("user:u-lan", "Trần Thị Lan", ("sales",), "vi")
    assert e.personal_fields == ("name", "email") and e.subject_id() == "user:u-lan"
    users.given(REGISTERED).when(cmd).refused("user_exists")


def test_roles_are_those_tokens_carry_and_the_same_roles_again_are_refused() -> None:
    users.given(REGISTERED).when(ChangeRoles(roles=("sales_manager", "sales"), reason="promoted")).then(
        UserRolesChanged(user_id=LAN, old=("sales",), new=("sales", "sales_manager"), reason="promoted")
    )
    users.given(REGISTERED).when(ChangeRoles(roles=("sales",), reason="again")).refused("unchanged")
    refused = users.given(REGISTERED).when(ChangeRoles(roles=("root",), reason="x")).refused("unknown_role")
    assert getattr(refused, "field", None) == "roles"
    users.given().when(RegisterUser(user_id="x", name="X", email="x@x.vn", team_id="t", roles=("god",))).refused(
        "unknown_role"
    )


def test_moving_records_the_old_and_new_team_and_moving_to_the_same_team_is_refused() -> None:
    users.given(REGISTERED).when(MoveToTeam(team_id="south", reason="reorganised")).then(
        UserMovedToTeam(user_id=LAN, old="north", new="south", reason="reorganised")
    )
    users.given(REGISTERED).when(MoveToTeam(team_id="north", reason="x")).refused("unchanged")
    users.given().when(MoveToTeam(team_id="north", reason="x")).refused("not_found")


def test_deactivation_hands_over_to_someone_else_once_and_reactivation_undoes_it() -> None:
    users.given(REGISTERED).when(Deactivate(handed_to="u-minh", reason="left")).then(DEACTIVATED)
    refused = users.given(REGISTERED).when(Deactivate(handed_to=LAN, reason="left")).refused("handed_to_self")
    assert getattr(refused, "field", None) == "handed_to"
    users.given(REGISTERED, DEACTIVATED).when(Deactivate(handed_to="u-minh", reason="again")).refused("not_active")
    users.given(REGISTERED, DEACTIVATED).when(Reactivate(reason="back")).then(
        UserReactivated(user_id=LAN, team_id="north", reason="back")
    )
    users.given(REGISTERED).when(Reactivate(reason="x")).refused("already_active")
    assert not user_decider.fold([REGISTERED, DEACTIVATED]).active


def test_a_profile_is_replaced_whole_and_an_erased_user_is_forgotten_only_once_deactivated() -> None:
    cmd = ChangeProfile(name="Lan T.", email="lan.t@example.vn", language="en", time_zone="Europe/Paris", reason="x")
    (changed,) = users.given(REGISTERED).when(cmd).then_events()
    assert isinstance(changed, UserProfileChanged) and (changed.time_zone, changed.quiet_hours) == (
        "Europe/Paris",
        None,
    )
    assert user_decider.fold([REGISTERED, changed]).language == "en"
    users.given(REGISTERED).when(EraseUser(reason="asked")).refused("user_active")
    erased = UserPersonalDataErased(user_id=LAN, subject="user:u-lan", reason="asked", erased_at=NOW)
    users.given(REGISTERED, DEACTIVATED).when(EraseUser(reason="asked")).then(erased)
    users.given(REGISTERED, DEACTIVATED, erased).when(EraseUser(reason="asked")).refused("user_erased")
    users.given(REGISTERED, DEACTIVATED, erased).when(cmd).refused("user_erased")
    assert not registry.erasure_gaps("pipelines.directory.")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time_zone", "+07:00"),
        ("time_zone", "ICT"),
        ("time_zone", "../../etc/passwd"),
        ("language", "fr"),
        ("email", "not-an-email"),
        ("user_id", "has space"),
        ("user_id", "a/b"),
        ("user_id", "lan@example.vn"),
        ("user_id", "x" * 101),
        ("team_id", "North Team"),
        ("quiet_hours", {"start": "22:00", "end": "22:00"}),
        ("name", ""),
    ],
)
def test_bad_input_names_its_field(field: str, value: object) -> None:
    body = {"user_id": LAN, "name": "Lan", "email": "lan@example.vn", "team_id": "north"} | {field: value}
    with pytest.raises(ValidationError) as bad:
        RegisterUser.model_validate(body)
    assert bad.value.errors()[0]["loc"][0] == field


def test_a_team_is_created_once_renamed_and_closed_only_when_empty() -> None:
    created = TeamCreated(team_id="north", name="North", created_at=NOW)
    teams.given().when(CreateTeam(team_id="north", name="North")).then(created)
    teams.given(created).when(CreateTeam(team_id="north", name="North")).refused("team_exists")
    teams.given(created).when(RenameTeam(name="North & Centre", reason="merged")).then(
        TeamRenamed(team_id="north", old="North", new="North & Centre", reason="merged")
    )
    teams.given(created).when(RenameTeam(name="North", reason="x")).refused("unchanged")
    teams.given(created).when(CloseTeam(reason="merged")).then(
        TeamClosed(team_id="north", reason="merged", closed_at=NOW)
    )
    crowded = Slice(team_decider, lambda t, cmd: decide_team(t, cmd, NOW, "north", active_members=2))
    crowded.given(created).when(CloseTeam(reason="x")).refused("team_not_empty")
    closed = TeamClosed(team_id="north", reason="merged", closed_at=NOW)
    teams.given(created, closed).when(RenameTeam(name="Again", reason="x")).refused("team_closed")
    teams.given(created, closed).when(CloseTeam(reason="x")).refused("team_closed")
    teams.given().when(CloseTeam(reason="x")).refused("not_found")
