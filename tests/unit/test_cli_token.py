"""``pipelines token``: the demo's tokens (issue 20, item 3): no manager without a team; directors for every team."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from shared.edge.auth import TokenVerifier
from shared.ops.settings import Settings
from testkit.services import TEST_JWKS, operator_settings
from tools import cli, local

SETTINGS = operator_settings(Settings(_env_file=None))


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


def test_without_signing_keys_the_token_command_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """An API's environment (public keys only) cannot mint a token: a clear error, exit 2."""
    monkeypatch.setattr(
        local,
        "load_settings",
        lambda: Settings(_env_file=None, jwt_public_keys=TEST_JWKS).model_copy(update={"jwt_signing_keys": {}}),
    )
    out = CliRunner().invoke(cli.app, ["token", "admin"])
    assert out.exit_code == 2
    assert "no signing keys: set PIPELINES_JWT_SIGNING_KEYS" in out.output and "eyJ" not in out.output
