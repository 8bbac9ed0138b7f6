"""The command routes' fast path (decision 0033): a plain command request runs without FastAPI's per-request
routing and dependency solving; anything else takes the route FastAPI built, unchanged.

A command route (``shared.edge.commands.command_routes``) costs FastAPI ~0.25 ms of CPU a request before the command
runs: matching the path against every route of the app, then solving its dependencies (the bearer token, the rights,
the body, five headers) by looking at their annotations again on each request. That was a third of the API
process's CPU per command, and the API the biggest process of a command's cost (issue 32, item 2).

The fast path is one route placed first in the app's routes. It takes a request only when it can answer it exactly
as the route would: ``POST {prefix}/{id}/{command}`` with the id a lowercase hyphenated UUID, a ``Bearer`` token
that verifies (the same ``TokenVerifier``, revocations included) for a caller with one of the route's roles,
``Content-Type: application/json`` and a body the command's model validates (``json.loads`` then ``model_validate``:
what FastAPI does for a body parameter), and none of If-Match, Idempotency-Key or X-Occurred-At. It then runs the
same ``run_command`` with the same handler, inside Starlette's exception handling, so the handler's errors (403,
404, 409, 422 of the domain) answer as they do on the route. Any other request — a missing or bad token, a caller
without the role, a body that does not validate, one of those headers — is handed, body and all, to the app's
routes as if the fast path were not there: every error answer is the route's own.

``app.state.command_fast_path = False`` turns it off (an A/B, or a doubt).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from shared.edge.auth import Principal, TokenVerifier

DECLINED = "pipelines.fast_path_declined"  # scope key: the fast path handed this request to the routes
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SLOW_HEADERS = frozenset({b"if-match", b"idempotency-key", b"x-occurred-at"})  # taken by the route's own checks

Run = Callable[[Request, uuid.UUID, Any, Principal], Awaitable[Any]]  # the route's command run, given a principal


@dataclass(frozen=True)
class RouteName:
    """What ``scope["route"]`` gives the access log and the request metric: the route's path template."""

    path: str


@dataclass(frozen=True)
class FastCommand:
    """One command route's fast path: its model, the roles it allows and its run."""

    model: type[BaseModel]
    roles: frozenset[str]
    run: Run
    route: RouteName


@dataclass
class FastCommands:
    """The fast paths of one router's command routes, by prefix (``/deals/{deal_id}``) and command name."""

    by_prefix: dict[str, dict[str, FastCommand]] = field(default_factory=dict)

    def add(self, prefix: str, name: str, command: FastCommand) -> None:
        self.by_prefix.setdefault(prefix, {})[name] = command


_REGISTERED: dict[int, tuple[APIRouter, FastCommands]] = {}  # id(router) → its command routes' fast paths


def registered(router: APIRouter) -> FastCommands:
    """The fast paths of ``router``'s command routes (made on first use; ``command_routes`` adds to them)."""
    found = _REGISTERED.get(id(router))
    if found is None or found[0] is not router:
        found = _REGISTERED[id(router)] = (router, FastCommands())
    return found[1]


def include_commands(app: FastAPI, router: APIRouter) -> None:
    """``app.include_router(router)``, and the fast path of its command routes first among the app's routes."""
    app.include_router(router)
    fast = next((r for r in app.router.routes if isinstance(r, FastPath)), None)
    if fast is None:
        fast = FastPath(app)
        app.router.routes.insert(0, fast)
    for prefix, commands in registered(router).by_prefix.items():
        fast.add(prefix, commands)


class FastPath(BaseRoute):
    """The route placed first: takes the plain command requests it can answer as their route would."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.patterns: list[tuple[re.Pattern[str], dict[str, FastCommand]]] = []
        self.taken = self.declined = 0  # requests answered here, and handed to the routes
        self.path = ""  # the template of the route last matched: see ``matches``

    def add(self, prefix: str, commands: dict[str, FastCommand]) -> None:
        head = re.escape(prefix[: prefix.index("{")])  # "/deals/{deal_id}" → "/deals/"
        tail = prefix[prefix.index("}") + 1 :]
        if tail:  # one id, last: every command route's prefix is so; any other is left to its route
            return
        self.patterns.append((re.compile(f"^{head}([^/]+)/([^/]+)$"), dict(commands)))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "POST" or DECLINED in scope:
            return Match.NONE, {}
        if not getattr(self.app.state, "command_fast_path", True):
            return Match.NONE, {}
        path = get_route_path(scope)
        for pattern, commands in self.patterns:
            if (m := pattern.match(path)) and (command := commands.get(m.group(2))) and _UUID.fullmatch(m.group(1)):
                # whoever asks which route matched reads ``route.path`` right after, with no await between (the
                # tracing's route name): the template, never the path with its ids
                self.path = command.route.path
                return Match.FULL, {"pipelines.fast_command": (command, m.group(1))}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        command, id_text = scope.pop("pipelines.fast_command")
        body = await _read_body(receive)
        replay = _replaying(body, receive)
        taken = self._take(scope, command, body)
        principal = None if taken is None else await self._principal(taken[0])
        if taken is None or principal is None or not principal.has_any(command.roles):
            scope[DECLINED] = True  # the routes answer it, as if the fast path were not there
            self.declined += 1
            await self.app.router.app(scope, replay, send)
            return
        self.taken += 1
        payload = taken[1]
        scope.setdefault("state", {})["principal"] = principal  # what current_principal sets: the access log's user
        scope["route"] = command.route
        request = Request(scope, replay, send)

        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            response = await command.run(request, uuid.UUID(id_text), payload, principal)
            await response(scope, receive, send)

        await wrap_app_handling_exceptions(answer, request)(scope, replay, send)

    def _take(self, scope: Scope, command: FastCommand, body: bytes) -> tuple[str, BaseModel] | None:
        """The token to verify and the command, when the request is one the fast path answers; else None."""
        authorization = content_type = None
        for name, value in scope["headers"]:
            if name in _SLOW_HEADERS:
                return None
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"content-type" and content_type is None:
                content_type = value
        if content_type != b"application/json" or authorization is None or not authorization.startswith(b"Bearer "):
            return None
        token = authorization[7:].decode("latin-1").strip()
        try:
            payload = command.model.model_validate(json.loads(body))
        except Exception:  # not JSON (or too deep to parse), or not the command: the route answers 400 or 422
            return None
        return token, payload

    async def _principal(self, token: str) -> Principal | None:
        verifier: TokenVerifier = self.app.state.token_verifier
        try:
            return await verifier.averify(token)
        except Exception:  # invalid, revoked, an unknown key: the route answers it its own way
            return None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: the routes see the same
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body read once more, then what the connection gives (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
