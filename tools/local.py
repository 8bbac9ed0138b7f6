"""The whole system as local processes: each service (api, relay and projector in one), the agenda's notifier, the
web board, and the stand-ins a laptop lacks (a mail sink when no SMTP server is set, a Graph API stub when no Graph
URL is set), each with its pid file and log under the run dir (``PIPELINES_RUN_DIR``, default ``.run``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import typer
from rich.console import Console

from shared.edge.auth import issue_token
from shared.edge.keys import SigningKeys
from shared.ops.settings import SERVICES, Settings, SettingsError
from shared.ops.stack import ROOT, STACK_SCRIPT

console = Console()
RUN = Path(os.environ.get("PIPELINES_RUN_DIR", ROOT / ".run"))
NOTIFIER = "agenda-notifier"  # the agenda's fourth process kind (decision 0020), its own process beside the agenda
SIGNIN = "signin"  # the sign-in service (decision 0022): the one process given the signing keys
WEBHOOKS, DISPATCHER = "webhooks", "webhooks-dispatcher"  # the webhooks' API and its dispatcher (decision 0026)
# the processes `services up` starts: each service (all in one), the sign-in service, the notifier, the webhooks'
# two, the board
PARTS = (*SERVICES, SIGNIN, NOTIFIER, WEBHOOKS, DISPATCHER, "web")
SIGNING_SETTINGS = ("PIPELINES_JWT_SIGNING_KEYS", "PIPELINES_JWT_ACTIVE_KID")
NOTIFIER_OPS_PORT, MAIL_SINK_PORT = 8106, 8125  # the local notifier's /readyz; the SMTP sink it sends to if no server
DISPATCHER_OPS_PORT = 8109  # the local webhooks dispatcher's /healthz, /readyz and /metrics
GRAPH_STUB_PORT = 8126  # the local stand-in for Facebook's Graph API (tools/graph_stub.py) when no Graph URL is set


def _command(part: str) -> list[str]:
    kinds = {NOTIFIER: ["notifier"], WEBHOOKS: ["api"], DISPATCHER: ["dispatcher"]}
    kind = kinds.get(part, ["all"] if part in SERVICES else [])
    return ["-m", f"services.{part.split('-')[0]}", *kind]


def port(settings: Settings, part: str) -> int:  # where a part answers /readyz
    if part == DISPATCHER:
        return DISPATCHER_OPS_PORT
    return (settings.ops_port or NOTIFIER_OPS_PORT) if part == NOTIFIER else settings.port(part)


def _env(settings: Settings, part: str, env: dict[str, str]) -> dict[str, str]:
    """A part's environment: the notifier's SMTP server (or a local sink), the dispatcher's ops port, and the keys
    each part may hold."""
    if part == NOTIFIER:
        env = _mail_sink(settings, env)
    elif part == DISPATCHER:
        env = env | {"PIPELINES_OPS_PORT": str(DISPATCHER_OPS_PORT)}
    return _keys_env(settings, part, env)


def _mail_sink(settings: Settings, env: dict[str, str]) -> dict[str, str]:
    """The notifier's environment: the SMTP server set, else a local sink writing each message to mail.log."""
    notifier = env | {"PIPELINES_OPS_PORT": str(port(settings, NOTIFIER))}
    if settings.smtp_host:
        return notifier
    if not alive("mail"):
        log, sink = (RUN / "services" / "mail.log").open("ab"), f"127.0.0.1:{MAIL_SINK_PORT}"
        mail = [sys.executable, "-m", "aiosmtpd", "-n", "-l", sink, "-c", "aiosmtpd.handlers.Debugging", "stdout"]
        process = subprocess.Popen(mail, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
        _pidfile("mail").write_text(str(process.pid))
        console.print(f"[yellow]no PIPELINES_SMTP_HOST[/]: reminders go to {RUN / 'services' / 'mail.log'}")
    local = {"PIPELINES_SMTP_HOST": "127.0.0.1", "PIPELINES_SMTP_PORT": str(MAIL_SINK_PORT)}
    return notifier | local | {"PIPELINES_SMTP_STARTTLS": "false"}


def _keys_env(settings: Settings, part: str, env: dict[str, str]) -> dict[str, str]:
    """The sign-in service keeps the signing keys; every other part gets the public keys (and where to read them
    again: the sign-in service's JWKS URL), never a private key."""
    if part == SIGNIN or not settings.jwt_signing_keys:
        return env
    public = json.dumps(SigningKeys.from_settings(settings).jwks(), separators=(",", ":"))
    others = {k: v for k, v in env.items() if k not in SIGNING_SETTINGS}
    return others | {
        "PIPELINES_JWT_PUBLIC_KEYS": public,
        "PIPELINES_JWKS_URL": f"{settings.signin_base_url()}/.well-known/jwks.json",
    }


def reset_link(settings: Settings, user_id: str) -> tuple[str, str]:
    """A one-time link setting ``user_id``'s password (their first one too): the sign-in service's
    ``POST /users/{id}/password-reset``, asked with a short admin token signed by the operator's keys. The board's
    reset page with the link token, and when it expires (decision 0022)."""
    keys = SigningKeys.from_settings(settings)
    admin = issue_token(keys, user_id="operator:cli", roles=["admin"], ttl=timedelta(minutes=5))
    url = f"{settings.signin_base_url()}/users/{quote(user_id, safe='')}/password-reset"
    answer = httpx.post(url, headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    if answer.status_code != 201:
        raise RuntimeError(f"the sign-in service answered {answer.status_code}: {answer.text[:300]}")
    body = answer.json()
    return f"{settings.board_url.rstrip('/')}/reset?token={body['link_token']}", str(body["expires_at"])


def board_signin(settings: Settings, base: str) -> None:
    """How to sign in to the board after the demo: the administrator's one-time password link (decision 0022)."""
    console.print(f"The board: {base}:{settings.port('web')}/login", soft_wrap=True)
    try:
        link, _ = reset_link(settings, "u-admin")
    except (SettingsError, RuntimeError, httpx.HTTPError) as exc:
        console.print(f"[yellow]no password link for the administrator: {exc}", soft_wrap=True)
        return
    console.print("Set the administrator's password (one use, 24 hours), then sign in as admin@demo.pipelines.vn:")
    console.print(link, soft_wrap=True, highlight=False)
    console.print(
        "(a salesperson's link: .venv/bin/pipelines signin reset-link u-lan — her own deals; u-mgr: the north's "
        "manager)\n",
        soft_wrap=True,
        highlight=False,
    )


def _graph_stub(env: dict[str, str]) -> dict[str, str]:
    """No ``PIPELINES_FACEBOOK_GRAPH_URL`` set: the leads service fetches Facebook leads from the local Graph stub,
    started here (the simulation puts its Facebook leads there before sending their webhooks)."""
    if "PIPELINES_FACEBOOK_GRAPH_URL" in os.environ or not env.get("PIPELINES_FACEBOOK_ACCESS_TOKEN"):
        return env
    url = f"http://127.0.0.1:{GRAPH_STUB_PORT}"
    if not alive("graph"):
        log = (RUN / "services" / "graph.log").open("ab")
        stub = [sys.executable, "-m", "tools.graph_stub", "--port", str(GRAPH_STUB_PORT)]
        process = subprocess.Popen(stub, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
        _pidfile("graph").write_text(str(process.pid))
        console.print(f"[yellow]no PIPELINES_FACEBOOK_GRAPH_URL[/]: Facebook leads are read from the stub at {url}")
    os.environ["PIPELINES_FACEBOOK_GRAPH_URL"] = url  # the simulation, in this process, finds it there
    return env | {"PIPELINES_FACEBOOK_GRAPH_URL": url}


def stack_env() -> dict[str, str]:
    out = subprocess.run([str(STACK_SCRIPT), "env"], capture_output=True, text=True, check=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
    return env


def load_settings() -> Settings:
    os.environ.update({k: v for k, v in stack_env().items() if k not in os.environ})
    return Settings()


def _pidfile(service: str) -> Path:
    return RUN / "services" / f"{service}.pid"


def alive(service: str) -> int | None:
    try:
        pid = int(_pidfile(service).read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def up() -> None:
    """Start each part (PARTS: each service's api, relay and projector in one process, the notifier, sign-in, the
    webhooks' API and dispatcher, the board) on the local stack; wait until ready."""
    settings = load_settings()
    (RUN / "services").mkdir(parents=True, exist_ok=True)
    env = _graph_stub(dict(os.environ) | {"PIPELINES_LOG_JSON": "true"})
    for service in PARTS:
        if alive(service):
            continue
        log = (RUN / "services" / f"{service}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, *_command(service)],
            cwd=ROOT,
            env=_env(settings, service, env),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        _pidfile(service).write_text(str(process.pid))
    for service in PARTS:
        url = f"http://{settings.api_host}:{port(settings, service)}/readyz"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not alive(service):
                console.print(f"[red]{service} did not become ready; see {RUN / 'services' / (service + '.log')}")
                raise typer.Exit(1)
            time.sleep(0.5)
        console.print(f"[green]{service}[/] ready on http://{settings.api_host}:{port(settings, service)}")


def down() -> None:
    for service in (*PARTS, "mail", "graph"):
        pid = alive(service)
        if pid:
            os.killpg(pid, signal.SIGTERM)
            for _ in range(100):
                with contextlib.suppress(ChildProcessError):  # started by this process (`demo`, a test): reaped
                    os.waitpid(pid, os.WNOHANG)
                if not alive(service):
                    break
                time.sleep(0.1)
            console.print(f"{service} stopped")
        _pidfile(service).unlink(missing_ok=True)


def status() -> list[dict[str, Any]]:
    """Each local process: its pid (None when down) and where it answers."""
    settings = load_settings()
    return [{"service": s, "pid": alive(s), "url": f"http://{settings.api_host}:{port(settings, s)}"} for s in PARTS]
