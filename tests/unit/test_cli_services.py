"""``pipelines services up`` starts the agenda's notifier as its own process kind beside the agenda (decision 0020),
and, when no SMTP server is set, a local sink that takes its messages and writes them to ``mail.log`` (``services
down`` stops it by its pid file, as the other parts)."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from shared.edge.auth import TokenVerifier
from shared.ops.settings import SERVICES, Settings
from shared.ops.stack import free_port
from testkit.services import TEST_KEYS
from tools import local


def test_each_part_runs_as_its_own_process_kind() -> None:
    assert (*SERVICES, "signin", "agenda-notifier", "webhooks", "webhooks-dispatcher", "web") == local.PARTS
    assert local._command("signin") == ["-m", "services.signin"]
    # the webhooks' two processes (decision 0026): the API on its port, the dispatcher's /readyz on an ops port
    assert local._command("webhooks") == ["-m", "services.webhooks", "api"]
    assert local._command("webhooks-dispatcher") == ["-m", "services.webhooks", "dispatcher"]
    assert local.port(Settings(_env_file=None), "webhooks") == 8108
    assert local.port(Settings(_env_file=None, ops_port=9300), "webhooks-dispatcher") == local.DISPATCHER_OPS_PORT
    env = local._env(Settings(_env_file=None), "webhooks-dispatcher", {"X": "1"})
    assert env == {"X": "1", "PIPELINES_OPS_PORT": str(local.DISPATCHER_OPS_PORT)}
    assert local.port(Settings(_env_file=None), "signin") == 8107
    assert local._command("agenda") == ["-m", "services.agenda", "all"]
    assert local._command("agenda-notifier") == ["-m", "services.agenda", "notifier"]
    assert local._command("web") == ["-m", "services.web"]
    assert local.port(Settings(_env_file=None, ops_port=None), "agenda-notifier") == local.NOTIFIER_OPS_PORT
    assert local.port(Settings(_env_file=None, ops_port=9300), "agenda-notifier") == 9300
    assert local.port(Settings(_env_file=None), "agenda") == 8105


def test_a_server_set_is_the_notifiers_and_no_sink_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "RUN", tmp_path)
    env = local._mail_sink(Settings(_env_file=None, smtp_host="smtp.example.vn"), {"X": "1"})
    assert env == {"X": "1", "PIPELINES_OPS_PORT": str(local.NOTIFIER_OPS_PORT)}  # its own settings: the server's
    assert not (tmp_path / "services" / "mail.pid").exists()


def test_without_a_server_a_local_sink_takes_the_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setattr(local, "RUN", tmp_path)
    monkeypatch.setattr(local, "MAIL_SINK_PORT", port)
    (tmp_path / "services").mkdir()
    env = local._mail_sink(Settings(_env_file=None, smtp_host=None), {})
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
    assert local.alive("mail") is None


def test_without_a_graph_url_the_leads_read_facebook_leads_from_a_local_stub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setattr(local, "RUN", tmp_path)
    monkeypatch.setattr(local, "GRAPH_STUB_PORT", port)
    monkeypatch.delenv("PIPELINES_FACEBOOK_GRAPH_URL", raising=False)
    (tmp_path / "services").mkdir()
    assert local._graph_stub({}) == {}  # no access token: no Facebook webhook to serve, no stub
    env = local._graph_stub(dict(os.environ) | {"PIPELINES_FACEBOOK_ACCESS_TOKEN": "t" * 24})
    pid = int((tmp_path / "services" / "graph.pid").read_text())
    try:
        assert env["PIPELINES_FACEBOOK_GRAPH_URL"] == f"http://127.0.0.1:{port}"
        assert os.environ["PIPELINES_FACEBOOK_GRAPH_URL"] == env["PIPELINES_FACEBOOK_GRAPH_URL"]  # the simulation's
        for _ in range(200):  # the stub starts in its own process
            try:
                if httpx.get(f"{env['PIPELINES_FACEBOOK_GRAPH_URL']}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        wrong = httpx.get(f"{env['PIPELINES_FACEBOOK_GRAPH_URL']}/v21.0/1", params={"access_token": "x"}, timeout=5)
        assert wrong.status_code == 400 and wrong.json()["error"]["code"] == 190
    finally:
        os.killpg(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.environ.pop("PIPELINES_FACEBOOK_GRAPH_URL", None)
    assert local.alive("graph") is None
    # a Graph URL set (a deployment's, or Facebook's own): no stub
    monkeypatch.setenv("PIPELINES_FACEBOOK_GRAPH_URL", "https://graph.facebook.com")
    assert local._graph_stub({"PIPELINES_FACEBOOK_ACCESS_TOKEN": "t"}) == {"PIPELINES_FACEBOOK_ACCESS_TOKEN": "t"}


def test_only_the_signin_process_is_given_the_signing_keys() -> None:
    """Decision 0022: `services up` hands the signing keys to the sign-in service alone; every other part gets the
    public keys and where to read them again."""
    seeds = json.dumps(TEST_KEYS.seeds())
    settings = Settings(_env_file=None, jwt_signing_keys=seeds, jwt_active_kid="test")
    env = {"PIPELINES_JWT_SIGNING_KEYS": seeds, "PIPELINES_JWT_ACTIVE_KID": "test", "X": "1"}
    assert local._keys_env(settings, "signin", env) == env
    for part in ("deals", "agenda-notifier", "web"):
        other = local._keys_env(settings, part, env)
        assert "PIPELINES_JWT_SIGNING_KEYS" not in other and "PIPELINES_JWT_ACTIVE_KID" not in other
        assert json.loads(other["PIPELINES_JWT_PUBLIC_KEYS"]) == TEST_KEYS.jwks()
        assert other["PIPELINES_JWKS_URL"] == "http://127.0.0.1:8107/.well-known/jwks.json" and other["X"] == "1"


def test_a_reset_link_is_asked_with_an_admin_token_and_points_at_the_board(monkeypatch: pytest.MonkeyPatch) -> None:
    """`pipelines signin reset-link USER_ID` (decision 0022): the sign-in service's link, as the board's page."""
    asked: list[httpx.Request] = []

    def post(url: str, headers: dict[str, str], timeout: float) -> httpx.Response:
        asked.append(httpx.Request("POST", url, headers=headers))
        return httpx.Response(201, json={"link_token": "L" * 43, "expires_at": "2026-12-07T09:00:00+00:00"})

    monkeypatch.setattr(httpx, "post", post)  # what tools.local posts with
    settings = Settings(_env_file=None, jwt_signing_keys=json.dumps(TEST_KEYS.seeds()), board_url="https://b.vn/")
    link, expires = local.reset_link(settings, "u-admin")
    assert link == "https://b.vn/reset?token=" + "L" * 43 and expires.startswith("2026-12-07")
    (request,) = asked
    assert str(request.url) == "http://127.0.0.1:8107/users/u-admin/password-reset"
    token = request.headers["authorization"].removeprefix("Bearer ")
    verifier = TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines")
    assert verifier.verify(token).roles == frozenset({"admin"})
