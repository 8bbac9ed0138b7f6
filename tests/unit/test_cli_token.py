"""``pipelines token``: the demo's tokens (issue 20, item 3): no manager without a team; directors for every team."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from shared.edge.auth import TokenVerifier
from shared.ops.settings import Settings
from tools import cli, local

SETTINGS = Settings(jwt_keys=json.dumps({"k": "k" * 40}), jwt_active_kid="k")


@pytest.fixture(autouse=True)
def local_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "load_settings", lambda: SETTINGS)


def test_a_manager_token_needs_a_team_and_a_director_covers_every_team() -> None:
    runner = CliRunner()
    refused = runner.invoke(cli.app, ["token", "sales_manager"])
    assert refused.exit_code == 2, refused.output
    assert "--team" in refused.output
    assert runner.invoke(cli.app, ["token", "sales_boss"]).exit_code == 2
    verifier = TokenVerifier.from_settings(SETTINGS)
    manager = runner.invoke(cli.app, ["token", "sales_manager", "--team", "north", "--user", "u-mai"])
    assert manager.exit_code == 0, manager.output
    got = verifier.verify(manager.output.strip())
    assert (got.user_id, got.roles, got.team) == ("u-mai", frozenset({"sales_manager"}), "north")
    director = runner.invoke(cli.app, ["token", "sales_director", "--user", "u-dir"])
    assert director.exit_code == 0, director.output
    assert verifier.verify(director.output.strip()).roles == frozenset({"sales_director"})


def test_an_importer_token_carries_the_importer_role_only() -> None:
    """Decision 0021: the importer runs imports and back-dates; ``pipelines token importer`` makes one."""
    out = CliRunner().invoke(cli.app, ["token", "importer", "--user", "u-import"])
    assert out.exit_code == 0, out.output
    got = TokenVerifier.from_settings(SETTINGS).verify(out.output.strip())
    assert (got.user_id, got.roles, got.team) == ("u-import", frozenset({"importer"}), None)
