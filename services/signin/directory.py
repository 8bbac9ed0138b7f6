"""The users as the directory has them now: the sign-in service asks the directory's API (decision 0017) with a
short token it mints for itself (``sub`` ``service:signin``, role admin, ``DIRECTORY_TOKEN_S``), never keeping a
copy: roles, team and whether the user is active are read again at each sign-in and each token.

- ``by_email``: ``POST /users/lookup`` (the directory's blind index of users' emails: the email in the body only).
- ``user``: ``GET /users/{id}``.
``UnavailableError`` when the directory does not answer (the caller answers 503: nothing was decided).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from services.signin.domain.errors import UnavailableError
from shared.edge.auth import ROLES, issue_token
from shared.edge.keys import SigningKeys

SERVICE_SUBJECT = "service:signin"
DIRECTORY_TOKEN_S = 120  # the lifetime of the token the sign-in service asks the directory with
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class DirectoryUser:
    user_id: str
    name: str | None
    email: str | None
    team: str | None
    roles: tuple[str, ...]
    active: bool

    @classmethod
    def of(cls, view: dict[str, Any]) -> DirectoryUser:
        return cls(
            user_id=str(view["user_id"]),
            name=view.get("name"),
            email=view.get("email"),
            team=view.get("team_id") or None,
            roles=tuple(sorted(r for r in view.get("roles", ()) if r in ROLES)),
            active=bool(view.get("active")),
        )

    def summary(self) -> dict[str, Any]:
        """What the sign-in answers say of the user."""
        return {"user_id": self.user_id, "name": self.name, "roles": list(self.roles), "team": self.team}


class Users(Protocol):
    async def by_email(self, email: str) -> DirectoryUser | None: ...
    async def user(self, user_id: str) -> DirectoryUser | None: ...


class DirectoryClient:
    def __init__(self, base_url: str, keys: SigningKeys, *, transport: httpx.AsyncBaseTransport | None = None):
        self._keys = keys
        self._token: tuple[str, float] | None = None
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=TIMEOUT_S, transport=transport)

    def _bearer(self) -> dict[str, str]:
        if self._token is None or self._token[1] - 30 < time.time():
            ttl = timedelta(seconds=DIRECTORY_TOKEN_S)
            token = issue_token(self._keys, user_id=SERVICE_SUBJECT, roles=["admin"], ttl=ttl)
            self._token = (token, time.time() + DIRECTORY_TOKEN_S)
        return {"Authorization": f"Bearer {self._token[0]}"}

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            answer = await self._http.request(method, path, headers=self._bearer(), **kwargs)
        except httpx.HTTPError as exc:
            raise UnavailableError(f"the directory does not answer: {type(exc).__name__}") from None
        if answer.status_code >= 500 or answer.status_code in (401, 403):
            raise UnavailableError(f"the directory answered {answer.status_code}")
        return answer

    async def by_email(self, email: str) -> DirectoryUser | None:
        answer = await self._call("POST", "/users/lookup", json={"email": email})
        if answer.status_code == 422:  # not an email the directory takes: no one has it
            return None
        items = [DirectoryUser.of(v) for v in answer.json().get("items", [])]
        return items[0] if len(items) == 1 else None  # two users with one email: neither signs in with it

    async def user(self, user_id: str) -> DirectoryUser | None:
        answer = await self._call("GET", f"/users/{quote(user_id, safe='')}")
        if answer.status_code in (404, 422):
            return None
        return DirectoryUser.of(answer.json())

    async def close(self) -> None:
        await self._http.aclose()


class MemoryUsers:
    """The directory as unit tests give it."""

    def __init__(self, *users: DirectoryUser) -> None:
        self.users = {u.user_id: u for u in users}

    async def by_email(self, email: str) -> DirectoryUser | None:
        found = [u for u in self.users.values() if u.email and u.email.lower() == email.lower()]
        return found[0] if len(found) == 1 else None

    async def user(self, user_id: str) -> DirectoryUser | None:
        return self.users.get(user_id)
