"""``pipelines`` against a busy API (issue 32 item 3, decision 0032): a directory API served on a port (in-memory
store) with its in-flight bound at 1 and one request held in it (its head sent, its body not) answers 503 ``busy``;
``pipelines history`` then prints one line, ``error: busy, retry in N s``, and exits 4. Once the held request is gone
the same command is answered as usual."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from typer.testing import CliRunner

from shared.ops.settings import Settings
from testkit.apps import served_directory
from tools import cli, local

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


@pytest.fixture
def settings() -> Iterator[Settings]:
    """The directory API on a port, bounded at one request in flight; the settings the CLI reads, pointing at it."""
    with served_directory(NOW, max_in_flight=1) as s:
        yield s


def in_flight(http: httpx.Client) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith('pipelines_http_in_flight{service="directory"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_busy_api_is_one_line_and_exit_4_then_the_command_works_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "load_settings", lambda: settings)
    runner = CliRunner()
    port = settings.directory_port
    with httpx.Client(base_url=settings.api_url("directory"), timeout=10) as http:
        held = socket.create_connection(("127.0.0.1", port))
        held.sendall(b"POST /teams HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n")
        for _ in range(500):
            if in_flight(http) == 1:
                break
            threading.Event().wait(0.02)
        result = runner.invoke(cli.app, ["history", "team", "north"])
        assert result.exit_code == 4, result.output
        lines = [x for x in result.output.splitlines() if "http.request" not in x]
        assert len(lines) == 1 and lines[0] in ("error: busy, retry in 1 s", "error: busy, retry in 2 s"), lines
        held.close()  # the held request ends (its client went away): the bound is free again
        for _ in range(500):
            if in_flight(http) == 0:
                break
            threading.Event().wait(0.02)
    result = runner.invoke(cli.app, ["history", "team", "north"])
    assert result.exit_code == 1 and "no team north" in result.output, result.output  # answered: no such team
