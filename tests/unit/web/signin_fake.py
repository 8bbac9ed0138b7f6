"""The sign-in service's answers as decision 0022 fixes them, faked at the HTTP transport for the board's unit tests
(the real service: tests/e2e/test_web_sign_in.py). Users sign in with the password ``PASSWORD``; ``locked@…`` is
locked, ``busy@…`` throttled; each session's tokens are signed with the tests' key and carry its ``sid``."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.edge.auth import issue_token
from testkit.services import TEST_KEYS

PASSWORD = "correct horse battery"
SIGNIN_PORT = 8107


@dataclass
class FakeSignIn:
    users: dict[str, tuple[str, tuple[str, ...], str | None]] = field(default_factory=dict)  # email → user
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)  # secret → its user, csrf, ended
    calls: list[str] = field(default_factory=list)
    down: bool = False

    def session(self, user: str, *roles: str, team: str | None = None) -> str:
        """A live session's secret (the cookie's value), as if the user had signed in."""
        secret = secrets.token_urlsafe(32)
        self.sessions[secret] = {"user": (user, roles, team), "csrf": secrets.token_urlsafe(32), "ended": False}
        return secret

    def grant(self, secret: str, status: int = 200, **more: Any) -> httpx.Response:
        s = self.sessions[secret]
        user, roles, team = s["user"]
        sid = hashlib.sha256(secret.encode()).hexdigest()[:32]  # as decision 0022 says
        token = issue_token(TEST_KEYS, user_id=user, roles=roles, team=team, session_id=sid)
        body = {
            "token": token,
            "token_expires_at": time.time() + 300,
            "csrf": s["csrf"],
            "user": {"user_id": user, "roles": list(roles), "team": team},
        }
        return httpx.Response(status, json=body | more)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        if self.down:
            raise httpx.ConnectError("refused")
        body = json.loads(request.content or b"{}")
        path = request.url.path
        if path == "/sessions/password":
            return self.password(body)
        if path in ("/sessions/token", "/sessions/end", "/sessions/end-all"):
            s = self.sessions.get(body.get("session", ""))
            if s is None or s["ended"]:
                return problem(401, "session_ended")
            if path == "/sessions/token":
                return self.grant(body["session"])
            for other in self.sessions.values():
                if other is s or (path == "/sessions/end-all" and other["user"][0] == s["user"][0]):
                    other["ended"] = True
            return httpx.Response(200, json={"ended": 1})
        if path == "/password-resets":
            if body.get("token") != "a-good-link-token-0123":
                return problem(400, "reset_invalid")
            return httpx.Response(200, json={"user_id": "u-lan", "ended": 0})
        if path == "/oidc/start":
            url = "https://id.example.vn/authorize?state=st-1&" + request.url.query.decode()
            return httpx.Response(200, json={"authorize_url": url, "binding": "b" * 43})
        if path == "/oidc/callback":
            if body != {"code": "c-1", "state": "st-1", "binding": "b" * 43}:
                return problem(401, "oidc_refused")
            secret = self.session("u-oidc", "sales", team="north")
            return self.grant(secret, 201, next="/marketing", session=secret)
        return problem(404, "not_found")

    def password(self, body: dict[str, Any]) -> httpx.Response:
        email = body.get("email", "")
        if email.startswith("locked@"):
            return problem(423, "locked", retry_after=600)
        if email.startswith("busy@"):
            return problem(429, "too_many_requests", retry_after=42)
        if email not in self.users or body.get("password") != PASSWORD:
            return problem(401, "bad_credentials")
        user, roles, team = self.users[email]
        secret = self.session(user, *roles, team=team)
        return self.grant(secret, 201, session=secret)


def problem(status: int, rule: str, retry_after: int | None = None) -> httpx.Response:
    body = {"type": f"urn:pipelines:problem:{rule}", "title": "…", "status": status, "detail": rule, "rule": rule}
    headers = {"Content-Type": "application/problem+json"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)
