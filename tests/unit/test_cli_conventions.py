"""``pipelines`` follows command-line conventions (issue 31): --version, --json on read commands, choices for
services and kinds, errors as one line on stderr with a non-zero exit and no traceback, whole values when piped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from shared.ops.settings import SERVICES
from shared.ops.version import VERSION
from tools import cli_ops, history, output

ROOT = Path(__file__).resolve().parents[2]


def pipelines(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script as a user runs it, its stdout a pipe."""
    code = "import sys; from tools.cli import main; sys.argv[0] = 'pipelines'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )


def test_choices_are_the_services_and_kinds() -> None:
    assert [s.value for s in cli_ops.Service] == list(SERVICES)
    assert [k.value for k in cli_ops.Kind] == list(history.KINDS)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["dlq", "list", "nosuchservice"], "'nosuchservice' is not one of"),
        (["relay", "status", "deal"], "'deal' is not one of"),
        (["history", "deals", "x"], "'deals' is not one of"),
        (["history", "deal", "not-a-uuid"], "badly formed"),
        (["history", "deal"], "Missing argument"),
        (["dlq", "show", "deals"], "Missing option '--offset'"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_a_users_mistake_is_one_line_on_stderr_and_exit_2(args: list[str], says: str) -> None:
    result = pipelines(*args)
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr


def test_a_service_that_does_not_answer_is_one_line_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.ops.stack import free_port

    monkeypatch.setenv("PIPELINES_DEALS_API_URL", f"http://127.0.0.1:{free_port()}")
    result = pipelines("history", "deal", "7f0c3f4e-3b9b-4e5c-9d7e-4a1b2c3d4e5f")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "does not answer" in result.stderr and "Traceback" not in result.stderr


def test_version() -> None:
    result = pipelines("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"pipelines {VERSION}\n", "")


def test_read_commands_answer_json_and_whole_values_when_piped() -> None:
    as_json = pipelines("events", "--json")
    assert as_json.returncode == 0, as_json.stderr
    catalog = json.loads(as_json.stdout)
    assert {"type", "version", "personal_fields", "fields"} <= set(catalog[0])
    piped = pipelines("events")
    header, *rows = piped.stdout.splitlines()
    assert header.split("\t") == ["type", "version", "personal fields", "fields"]
    assert len(rows) == len(catalog)
    widest = max(catalog, key=lambda e: len(", ".join(e["fields"])))
    assert f"{widest['type']}\t{widest['version']}\t" in piped.stdout
    assert ", ".join(widest["fields"]) in piped.stdout and len(max(rows, key=len)) > 120  # not cut at 80 columns
    status = pipelines("services", "status", "--json")
    assert {r["service"] for r in json.loads(status.stdout)} >= set(SERVICES)


def test_every_read_command_takes_json() -> None:
    reads = {
        ("events",),
        ("projections",),
        ("history",),
        ("tail",),
        ("services", "status"),
        ("dlq", "list"),
        ("dlq", "show"),
        ("relay", "status"),
    }
    for command in reads:
        result = pipelines(*command, "--help")
        assert result.returncode == 0 and "--json" in result.stdout, command


def test_a_fault_of_ours_is_one_line_without_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = typer.Typer()

    @app.command()
    def boom() -> None:
        raise RuntimeError("the\nbug")

    monkeypatch.setattr(sys, "argv", ["pipelines"])
    with pytest.raises(SystemExit) as exited:
        output.run(app)
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err == "error: RuntimeError: the bug (a fault of ours: PIPELINES_DEBUG=1 shows where)\n"
    monkeypatch.setenv("PIPELINES_DEBUG", "1")
    with pytest.raises(RuntimeError):
        output.run(app)
