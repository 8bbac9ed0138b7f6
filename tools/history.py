"""``pipelines history``: a deal's, lead's, order's, user's, team's, organisation's or person's timeline and state,
asked of the running service's HTTP API.

Why over HTTP and not from the event store: the timeline alone could be read from the store with the kernel's
contracts, but the state is the service's own fold of its events (its decider) and its own JSON shaping
(``state_as_json``), both insides of the service that a tool must not import (the import contract "The tools reach
the services through their APIs and contracts"). The API already answers both, with the access rules every other
client gets: the CLI signs a short token for the ``auditor`` role (reads everything; a customer's personal fields read as
null, where the store would show sealed ``pii:v1:`` tokens; the directory shows a colleague's name and email to
whoever may see the user, auditors included) with the deployment's key, as ``pipelines token`` does. So the service must be running (``pipelines services up``).

- deal: ``GET /deals/{id}/state`` (``?at=`` for ``--as-of``, the state as recorded then) and
  ``GET /deals/{id}/history``, the timeline cut at the state's version;
- lead and order: ``GET /leads/{id}`` / ``GET /orders/{id}`` and their ``/history``. Those APIs answer the state
  now only, so with ``--as-of`` the timeline is cut at that time (what was recorded by then) and no state is
  given (``History.state`` is None);
- user and team: the directory's ``GET /users/{id}`` / ``GET /teams/{id}`` and their ``/history`` (each change with
  who made it and why), the state now only as for a lead. Their ids are not UUIDs but the directory's own (a user's
  token ``sub``, a team's slug): ``parse_id`` checks one against the directory's rule before anything is asked;
- organisation and person: the directory's ``GET /organisations/{id}`` / ``GET /people/{id}`` and their
  ``/history``, the state now only. One merged into another reads as that one (its ``read_from`` names the one
  asked): its own timeline is given whole, with the state of the one it reads as (``History.reads_as``);
- activity: the agenda's ``GET /activities/{id}`` and its ``/history``, the state now only.

Each event of a timeline has both its times: when it happened (``occurred_at``, back-dated by ``X-Occurred-At`` or
an import) and when it was recorded (``recorded_at``); ``--as-of`` cuts on the recorded time (decision 0021).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from shared.edge.auth import issue_token
from shared.edge.keys import SigningKeys
from shared.ops.settings import Settings

# kind -> (service, the path of one aggregate under its API)
KINDS: dict[str, tuple[str, str]] = {
    "deal": ("deals", "/deals/{id}"),
    "lead": ("leads", "/leads/{id}"),
    "order": ("production", "/orders/{id}"),
    "user": ("directory", "/users/{id}"),
    "team": ("directory", "/teams/{id}"),
    "organisation": ("directory", "/organisations/{id}"),
    "person": ("directory", "/people/{id}"),
    "activity": ("agenda", "/activities/{id}"),
}
# the directory's ids: its path parameters' rules (services/directory/domain/commands.py, the API's insides, which a
# tool may not import: tests/unit/test_cli_history.py checks these are the same); the other kinds' ids are UUIDs
ID_RULES: dict[str, tuple[str, int]] = {
    "user": (r"^[A-Za-z0-9][A-Za-z0-9._:|+-]*$", 100),  # USER_ID_PATTERN, MAX_ID_CHARS
    "team": (r"^[a-z0-9]+(-[a-z0-9]+)*$", 60),  # TEAM_ID_PATTERN, MAX_CODE_CHARS
}
PAGE = 200  # the APIs' largest page
EDGE_FIELDS = ("version", "as_of")  # what the API adds to the aggregate's state


class ServiceError(RuntimeError):
    """The service did not answer (not running, not at the configured address) or refused the request."""


class BusyError(ServiceError):
    """The service answered 503 ``busy`` (its requests in flight at their bound: decision 0032): retry after
    ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy, retry in {retry_after} s")
        self.retry_after = retry_after


def busy_after(r: httpx.Response) -> int | None:
    """The seconds a 503 ``busy`` answer says to wait (its ``Retry-After``, 1 to 60; 1 if unreadable), else None."""
    if r.status_code != 503 or not r.headers.get("content-type", "").endswith("json"):
        return None
    try:
        rule = r.json().get("rule")
    except (ValueError, AttributeError):
        return None
    if rule != "busy":
        return None
    after = r.headers.get("retry-after", "")
    return min(max(int(after), 1), 60) if after.isdigit() else 1


@dataclass(frozen=True)
class Entry:
    """One event of the timeline, as the API's audit trail gives it."""

    version: int
    event_type: str
    occurred_at: datetime
    recorded_at: datetime
    actor: str | None
    reason: str | None  # why, when the change gave it
    data: dict[str, Any]


@dataclass
class History:
    events: list[Entry]
    state: dict[str, Any] | None  # None: the service answers no state as of the time asked
    reads_as: str | None = None  # a merged organisation's or person's: the id of the one it reads as


def parse_id(kind: str, text: str) -> uuid.UUID | str:
    """``kind``'s id from the command line; ValueError saying what it should be."""
    if kind not in ID_RULES:
        return uuid.UUID(text)
    pattern, longest = ID_RULES[kind]
    if len(text) > longest or not re.fullmatch(pattern, text):
        shape = "letters, digits and . _ : | + -" if kind == "user" else "lower-case letters and digits, - between"
        raise ValueError(f"not a {kind} id ({shape}, at most {longest} characters): {text!r}")
    return text


def operator_headers(settings: Settings, ttl: timedelta = timedelta(minutes=5)) -> dict[str, str]:
    """A bearer header for reading as an auditor, signed with the deployment's active key."""
    token = issue_token(
        SigningKeys.from_settings(settings),
        user_id="pipelines-cli",
        roles=["auditor"],
        ttl=ttl,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    return {"Authorization": f"Bearer {token}"}


async def history(
    settings: Settings,
    kind: str,
    aggregate_id: uuid.UUID | str,
    as_of: datetime | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> History:
    """The timeline (oldest first) and the state, now or as recorded at ``as_of``; no events: no such aggregate
    (or none yet at ``as_of``)."""
    service, path = KINDS[kind]
    base = settings.api_url(service)
    one = path.format(id=aggregate_id)
    headers = operator_headers(settings)
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, transport=transport) as http:
            if kind == "deal":  # the API folds a deal as recorded at a time
                state = await _get(http, f"{one}/state", {"at": as_of.isoformat()} if as_of else {})
            else:  # a lead's, an order's, a user's or a team's state now only
                state = None if as_of else await _get(http, one, {})
            events = await _timeline(http, one) if state is not None or as_of else []
    except httpx.TransportError as exc:
        raise ServiceError(f"the {service} service does not answer at {base} ({exc}): is it running?") from None
    reads_as = _reads_as(kind, state)
    if state is not None and reads_as is None:  # the timeline up to the state's version (an append in between)
        events = [e for e in events if e.version <= state["version"]]
    if as_of is not None:
        events = [e for e in events if e.recorded_at <= as_of]
    if not events:
        return History([], None)
    shown = None if state is None else {k: v for k, v in state.items() if k not in (*EDGE_FIELDS, "read_from")}
    return History(events, shown, reads_as)


def _reads_as(kind: str, state: dict[str, Any] | None) -> str | None:
    """The id of the one a merged organisation or person reads as (None: not merged)."""
    if state is None or state.get("read_from") is None:
        return None
    return str(state[f"{kind}_id"])


async def _get(http: httpx.AsyncClient, url: str, params: dict[str, str]) -> dict[str, Any] | None:
    """The API's answer (None: 404, no such aggregate or not one the caller may see)."""
    r = await http.get(url, params=params)
    if r.status_code == 404:
        return None
    if (after := busy_after(r)) is not None:
        raise BusyError(after)
    if r.status_code >= 400:
        detail = r.json().get("detail", "") if r.headers.get("content-type", "").endswith("json") else r.text[:200]
        raise ServiceError(f"GET {r.url}: {r.status_code} {detail}")
    body: dict[str, Any] = r.json()
    return body


async def _timeline(http: httpx.AsyncClient, one: str) -> list[Entry]:
    entries: list[Entry] = []
    cursor: str | None = None
    while True:
        params = {"limit": str(PAGE)} | ({"cursor": cursor} if cursor else {})
        page = await _get(http, f"{one}/history", params)
        if page is None:
            return []
        entries += [
            Entry(
                version=item["version"],
                event_type=item["type"],
                occurred_at=datetime.fromisoformat(item["occurred_at"]),
                recorded_at=datetime.fromisoformat(item["recorded_at"]),
                actor=item.get("actor"),
                reason=item.get("reason"),
                data=item.get("data") or {},
            )
            for item in page["items"]
        ]
        cursor = page.get("next_cursor")
        if not cursor:
            return entries
