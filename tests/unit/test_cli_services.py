"""``pipelines services up`` starts the agenda's notifier as its own process kind beside the agenda (decision 0020),
and, when no SMTP server is set, a local sink that takes its messages and writes them to ``mail.log`` (``services
down`` stops it by its pid file, as the other parts)."""

from __future__ import annotations

import os
import signal
import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from shared.ops.settings import SERVICES, Settings
from testkit.faults import free_port
from tools import cli


def test_each_part_runs_as_its_own_process_kind() -> None:
    assert (*SERVICES, "agenda-notifier", "web") == cli.PARTS
    assert cli._command("agenda") == ["-m", "services.agenda", "all"]
    assert cli._command("agenda-notifier") == ["-m", "services.agenda", "notifier"]
    assert cli._command("web") == ["-m", "services.web"]
    assert cli._port(Settings(_env_file=None, ops_port=None), "agenda-notifier") == cli.NOTIFIER_OPS_PORT
    assert cli._port(Settings(_env_file=None, ops_port=9300), "agenda-notifier") == 9300
    assert cli._port(Settings(_env_file=None), "agenda") == 8105


def test_a_server_set_is_the_notifiers_and_no_sink_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "RUN", tmp_path)
    env = cli._mail_sink(Settings(_env_file=None, smtp_host="smtp.example.vn"), {"X": "1"})
    assert env == {"X": "1", "PIPELINES_OPS_PORT": str(cli.NOTIFIER_OPS_PORT)}  # its own settings: the server's
    assert not (tmp_path / "services" / "mail.pid").exists()


def test_without_a_server_a_local_sink_takes_the_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setattr(cli, "RUN", tmp_path)
    monkeypatch.setattr(cli, "MAIL_SINK_PORT", port)
    (tmp_path / "services").mkdir()
    env = cli._mail_sink(Settings(_env_file=None, smtp_host=None), {})
    try:
        assert env["PIPELINES_SMTP_HOST"] == "127.0.0.1" and env["PIPELINES_SMTP_PORT"] == str(port)
        assert env["PIPELINES_SMTP_STARTTLS"] == "false"
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "p@pipelines.vn", "lan@pipelines.vn", "Nhắc việc"
        message.set_content("Gọi lại chị Yến lúc 9:00")
        for _ in range(100):  # the sink starts in its own process
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
                    smtp.send_message(message)
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        log = tmp_path / "services" / "mail.log"
        for _ in range(100):
            if "lan@pipelines.vn" in log.read_text(errors="replace"):
                break
            time.sleep(0.05)
        assert "lan@pipelines.vn" in log.read_text(errors="replace")
    finally:  # the sink this test started, by the pid ``services down`` stops it by (and reaped: it is our child)
        pid = int((tmp_path / "services" / "mail.pid").read_text())
        os.killpg(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    assert cli._alive("mail") is None
