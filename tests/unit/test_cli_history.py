"""``pipelines history user|team|organisation|person``: a user's, team's, organisation's or person's timeline (who,
what, when, why) and state, asked over HTTP of a directory API served on a port (on the in-memory store: the CLI's
side is what is tried here), an unknown id (one line, exit 1), an id the directory could not have (refused before
anything is asked), ``--as-of``, a merged organisation (its own timeline whole, the state of the one it reads as)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from typer.testing import CliRunner

from services.directory.domain.commands import TEAM_ID_PATTERN, USER_ID_PATTERN
from shared.core.limits import MAX_CODE_CHARS, MAX_ID_CHARS
from shared.edge.auth import issue_token
from shared.ops.settings import Settings
from testkit.apps import served_directory
from testkit.services import TEST_KEYS
from tools import cli, history, local

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
MADE: dict[str, str] = {}  # the ids the directory gave the organisations and the person the fixture registered


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    """The directory API on a port, with an admin's changes made; the settings the CLI reads, pointing at it."""
    with served_directory(NOW) as s:
        token = issue_token(
            TEST_KEYS,
            user_id="u-admin",
            roles=["admin"],
            issuer=s.jwt_issuer,
            audience=s.jwt_audience,
        )
        admin = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=s.api_url("directory"), headers=admin) as http:
            assert http.post("/teams", json={"team_id": "north", "name": "North"}).status_code == 201
            for user in ("u-lan", "u-minh"):
                body = {
                    "user_id": user,
                    "name": f"Name of {user}",
                    "email": f"{user}@example.vn",
                    "team_id": "north",
                    "roles": ["sales"],
                }
                assert http.post("/users", json=body).status_code == 201, body
            r = http.post("/users/u-lan/deactivate", json={"handed_to": "u-minh", "reason": "left the firm"})
            assert r.status_code == 200, r.text
            ids = []
            for name in ("Công ty Hoa Sen", "Hoa Sen Co."):
                body = {"name": name, "owner_id": "u-minh", "team_id": "north"}
                r = http.post("/organisations", json=body)
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            change = {"name": "Hoa Sen Co.", "industry": "furniture", "reason": "what they make"}
            assert http.put(f"/organisations/{ids[1]}", json=change).status_code == 200  # its stream longer
            r = http.post(f"/organisations/{ids[1]}/merge", json={"into": ids[0], "reason": "the same company"})
            assert r.status_code == 200, r.text
            r = http.post(  # met at a fair two days before, entered now: back-dated (decision 0021)
                "/people",
                json={"organisation_id": ids[0], "name": "Trần Thị Đào", "reason": "met at a fair"},
                headers={"X-Occurred-At": "2026-12-04T10:00:00+07:00"},
            )
            assert r.status_code == 201, r.text
            MADE.update(organisation=ids[0], merged=ids[1], person=r.json()["id"])
        yield s


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(local, "load_settings", lambda: settings)
    return CliRunner()


def said(runner: CliRunner, *args: str) -> tuple[int, str]:
    """The exit code and what the CLI printed, without the lines the server (in this process) logs meanwhile."""
    result = runner.invoke(cli.app, ["history", *args])
    return result.exit_code, "\n".join(line for line in result.output.splitlines() if "http.request" not in line)


def test_a_users_and_a_teams_timeline_say_who_what_when_and_why(runner: CliRunner) -> None:
    code, out = said(runner, "user", "u-lan")
    assert code == 0, out
    assert re.search(r"^1\t2026-12-06 03:00\t[^\t]+\tUserRegistered\tu-admin\t", out, re.M), out  # piped: TSV
    assert re.search(
        r"^2\t[^\t]+\t[^\t]+\tUserDeactivated\tu-admin\thanded_to=\"u-minh\"[^\t]*\tleft the firm$", out, re.M
    ), out
    assert '"active": false' in out and '"handed_to": "u-minh"' in out  # the state now
    code, out = said(runner, "team", "north")
    assert code == 0, out
    assert re.search(r"TeamCreated\tu-admin\t", out) and '"name": "North"' in out, out


def test_an_organisations_and_a_persons_timeline_and_a_merged_one_reading_as_another(runner: CliRunner) -> None:
    code, out = said(runner, "organisation", MADE["organisation"])
    assert code == 0 and "OrganisationRegistered" in out and "OrganisationAbsorbed" in out, out
    assert "the same company" in out and "Công ty Hoa Sen" in out and "merged:" not in out, out
    code, out = said(runner, "organisation", MADE["merged"])  # its own events, the state of the one it reads as
    assert code == 0 and "OrganisationMerged" in out and f"reads as {MADE['organisation']}" in out, out
    assert "Hoa Sen Co." in out and '"name": "Công ty Hoa Sen"' in out and "read_from" not in out, out
    code, out = said(runner, "person", MADE["person"])
    assert code == 0 and "PersonRegistered" in out and "met at a fair" in out, out
    today = datetime.now(UTC).strftime("%Y-%m-%d")  # the store's clock: when it was recorded
    assert "v\thappened\trecorded\tevent\tby\twhat\twhy" in out, out
    assert re.search(rf"^1\t2026-12-04 10:00\t{today} \d\d:\d\d\tPersonRegistered", out, re.M), out
    assert said(runner, "person", "7b0e6a4c-1a48-4d6f-9a51-0c8c3f1d2e99")[0] == 1
    assert said(runner, "organisation", "north")[0] == 2  # an organisation's id is a UUID


def test_an_unknown_id_is_one_line_and_a_bad_one_is_refused_before_asking(runner: CliRunner) -> None:
    for kind, ghost in (("user", "u-ghost"), ("team", "south")):
        assert said(runner, kind, ghost) == (1, f"error: no {kind} {ghost}")
    for kind, bad in (("user", ".lan"), ("user", "u lan"), ("team", "North"), ("team", "n" * 61), ("deal", "u-lan")):
        code, out = said(runner, kind, bad)
        assert code == 2 and "Invalid value" in out and "http" not in out, (kind, bad, out)
    code, out = said(runner, "pipeline", "x")
    assert code == 2 and "'deal', 'lead', 'order', 'user', 'team', 'organisation', 'person'" in out, out


def test_as_of_cuts_the_timeline_and_gives_no_state(runner: CliRunner) -> None:
    """The directory answers a user's state now only (as the leads API): with --as-of, what was recorded by then."""
    code, out = said(runner, "user", "u-lan", "--as-of", "2999-01-01T00:00:00+00:00")
    assert code == 0 and "UserDeactivated" in out and "state now only" in out and '"active"' not in out, out
    assert said(runner, "user", "u-lan", "--as-of", "2000-01-01T00:00:00+00:00") == (
        1,
        "error: no user u-lan as of 2000-01-01T00:00:00+00:00",
    )


def test_the_id_rules_are_the_directorys() -> None:
    assert history.ID_RULES == {"user": (USER_ID_PATTERN, MAX_ID_CHARS), "team": (TEAM_ID_PATTERN, MAX_CODE_CHARS)}
