"""Tokens no API can forge, on real processes (issue 27 item 4, decision 0022).

Two replicas of the deals API run as processes (``python -m services.deals api``) given public keys only: an empty
JWKS and the URL they read it from (``PIPELINES_JWKS_URL``; a static file server here — the sign-in service's
``/.well-known/jwks.json`` in a deployment). Their environment, read from ``/proc``, holds no private key, and with
it nothing can sign. Rotation: a key added to the JWKS and made active is accepted by both replicas on the first
request naming it (an unknown key id rereads the JWKS), the old key's tokens still pass until it is removed, then
both replicas refuse them (they reread the JWKS every ``PIPELINES_JWKS_REFRESH_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.deals import main as deals_main
from shared.edge.auth import issue_token
from shared.edge.keys import SigningKeys
from shared.ops.stack import ROOT, Endpoints, free_port
from testkit.services import drop_everything, isolated_settings, process_env, stop_processes
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

OLD = SigningKeys.from_seeds({"2026-05": b"o" * 32})
NEW = SigningKeys.from_seeds({"2026-11": b"n" * 32})


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No line on stderr for each request."""


@contextlib.contextmanager
def jwks_server(root: Path) -> Iterator[tuple[str, Path]]:
    """A static HTTP server of ``root`` (http.server): the JWKS URL and the file it serves."""
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", root / "jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def publish(path: Path, *keys: SigningKeys) -> None:
    """What the sign-in service would serve once its signing keys are ``keys`` (written whole, then renamed)."""
    doc = {"keys": [k for s in keys for k in s.jwks()["keys"]]}
    path.with_suffix(".tmp").write_text(json.dumps(doc))
    os.replace(path.with_suffix(".tmp"), path)


def environ(process: subprocess.Popen[bytes]) -> dict[str, str]:
    raw = Path(f"/proc/{process.pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def sign_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Try to sign a token with whatever keys the settings of ``env`` give."""
    script = (
        "from shared.edge.keys import SigningKeys; from shared.ops.settings import Settings; "
        "print(SigningKeys.from_settings(Settings(_env_file=None)).sign({'sub': 'x'}))"
    )
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)


async def status(http: httpx.AsyncClient, url: str, keys: SigningKeys) -> int:
    token = issue_token(keys, user_id="u-audit", roles=["auditor"])
    r = await http.get(f"{url}/deals/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"})
    return r.status_code  # 404 (no such deal) once the token is accepted; 401 when refused


async def test_replicas_holding_public_keys_only_verify_and_follow_a_key_rotation(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    settings = isolated_settings(endpoints)
    core = await deals_main.build(settings)  # the schema and topics, as a deployment's first start makes them
    await core.ensure_topics()
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    processes: list[subprocess.Popen[bytes]] = []
    with jwks_server(tmp_path) as (jwks_url, jwks_file), contextlib.ExitStack() as logs:
        publish(jwks_file, OLD)
        for i, port in enumerate(ports):
            env = process_env(
                settings,
                PIPELINES_DEALS_PORT=str(port),
                PIPELINES_JWT_PUBLIC_KEYS='{"keys": []}',  # none given: every key comes from the JWKS URL
                PIPELINES_JWKS_URL=jwks_url,
                PIPELINES_JWKS_REFRESH_S="1",
            )
            log = logs.enter_context((tmp_path / f"deals-{i}.log").open("wb"))
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "services.deals", "api"], cwd=ROOT, env=env, stdout=log, stderr=log
                )
            )
        try:
            async with httpx.AsyncClient(timeout=10) as http:

                async def serving() -> bool:
                    for url in urls:
                        with contextlib.suppress(httpx.TransportError):
                            if await status(http, url, OLD) == 404:
                                continue
                        return False
                    return True

                await wait_until(serving, timeout=120, interval=0.5)

                # 1. no private key in either process's environment, and nothing can sign with it
                for process in processes:
                    env = environ(process)
                    assert "PIPELINES_JWT_SIGNING_KEYS" not in env and "PIPELINES_JWT_ACTIVE_KID" not in env
                    assert all('"d"' not in value for value in env.values())
                    minted = await asyncio.to_thread(sign_with, env)
                    assert minted.returncode != 0 and "no signing keys" in minted.stderr, minted.stdout
                    assert "eyJ" not in minted.stdout

                # 2. the new key published and made active: accepted by both on the first request naming it
                publish(jwks_file, OLD, NEW)
                assert [await status(http, url, NEW) for url in urls] == [404, 404]
                assert [await status(http, url, OLD) for url in urls] == [404, 404]  # the old one still valid

                # 3. the old key removed (its tokens expired): refused by both once they reread the JWKS
                publish(jwks_file, NEW)

                async def old_refused() -> bool:
                    return [await status(http, url, OLD) for url in urls] == [401, 401]

                await wait_until(old_refused, timeout=30, interval=0.2)
                assert [await status(http, url, NEW) for url in urls] == [404, 404]
        finally:
            stop_processes(processes)
            await core.close()
            await drop_everything(settings)
