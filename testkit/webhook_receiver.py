"""A webhook receiver for the tests and the benchmark (decision 0026): its own process, verifying every delivery
with the reference Standard Webhooks library from PyPI (``standardwebhooks``), not with our code.

``python -m testkit.webhook_receiver HOST PORT`` serves:

- ``POST /hooks/{name}``: a delivery. Verified with the secret configured for ``name`` (401 if it fails), then
  answered as configured: ``fail_first`` answers (e.g. ``[500, 500]``) before any success, ``fail_ids`` (event ids
  answered 500 every time), ``redirect`` (a 307 to that URL), else 204. Every request is recorded.
- ``PUT /control/{name}``: configure ``name`` (``{"secret": "whsec_…", "fail_first": [...], "fail_ids": [...],
  "redirect": null}``; what it received so far is kept); ``GET /control/{name}``: what it received (``[{"id",
  "type", "data", "webhook_id", "verified", "status", "signatures"}]``: ``signatures``, how many the
  ``webhook-signature`` header carried); ``GET /control/{name}/count``: how many verified deliveries it answered 2xx (the benchmark polls this).
- ``POST /raw/{name}``: no verification, 204 (the benchmark's baseline through the same server).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.ops.stack import free_port


@dataclass
class Hook:
    secret: str | None = None
    fail_first: list[int] = field(default_factory=list)
    fail_ids: set[str] = field(default_factory=set)
    redirect: str | None = None
    keep: bool = True  # record each request (the benchmark only counts)
    received: list[dict[str, Any]] = field(default_factory=list)
    ok: int = 0


HOOKS: dict[str, Hook] = {}


def _answer(hook: Hook, event_id: str) -> Response:
    if hook.redirect:
        return Response(status_code=307, headers={"location": hook.redirect})
    if hook.fail_first:
        return Response(status_code=hook.fail_first.pop(0))
    if event_id in hook.fail_ids:
        return Response(status_code=500)
    hook.ok += 1
    return Response(status_code=204)


async def deliver(request: Request) -> Response:
    hook = HOOKS.setdefault(request.path_params["name"], Hook())
    body = await request.body()
    try:
        event = Webhook(hook.secret or "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").verify(body, dict(request.headers))
        verified = hook.secret is not None
    except WebhookVerificationError:
        event, verified = json.loads(body or b"{}"), False
    answer = _answer(hook, str(event.get("id"))) if verified else Response(status_code=401)
    if hook.keep:
        hook.received.append(
            {
                "id": event.get("id"),
                "type": event.get("type"),
                "data": event.get("data"),
                "webhook_id": request.headers.get("webhook-id"),
                "verified": verified,
                "status": answer.status_code,
                "signatures": len(request.headers.get("webhook-signature", "").split()),
            }
        )
    return answer


async def control(request: Request) -> Response:
    name = request.path_params["name"]
    if request.method == "PUT":
        spec = await request.json()
        before = HOOKS.get(name, Hook())
        HOOKS[name] = Hook(
            secret=spec.get("secret"),
            fail_first=list(spec.get("fail_first", [])),
            fail_ids=set(spec.get("fail_ids", [])),
            redirect=spec.get("redirect"),
            keep=bool(spec.get("keep", True)),
            received=before.received,  # what it got so far stays
            ok=before.ok,
        )
        return Response(status_code=204)
    return JSONResponse(HOOKS.get(name, Hook()).received)


async def count(request: Request) -> Response:
    return JSONResponse(HOOKS.get(request.path_params["name"], Hook()).ok)


async def raw(request: Request) -> Response:
    await request.body()
    hook = HOOKS.setdefault("raw:" + request.path_params["name"], Hook(keep=False))
    hook.ok += 1
    return Response(status_code=204)


app = Starlette(
    routes=[
        Route("/hooks/{name}", deliver, methods=["POST"]),
        Route("/control/{name}", control, methods=["GET", "PUT"]),
        Route("/control/{name}/count", count, methods=["GET"]),
        Route("/raw/{name}", raw, methods=["POST"]),
    ]
)


HOST = "127.0.0.2"  # a loopback address of its own: the tests' allow-list admits it, 127.0.0.1 stays refused


@contextmanager
def running(
    host: str = HOST, command: Sequence[str] = (sys.executable, "-m", "testkit.webhook_receiver")
) -> Iterator[str]:
    """A receiver process (``command HOST PORT``: this one, or testkit.webhook_receiver_go's) on ``host`` and a free
    port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([*command, host, str(port)])
    base = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/control/ping", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the webhook receiver {command[0]} did not start") from None
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_keep_alive=75)


if __name__ == "__main__":
    main()
