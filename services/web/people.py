"""The Team and Salesperson filters (issue 27 item 5): dropdowns of the teams and users the signed-in user may see,
as the directory answers them to the user's own token (``GET /teams``, ``GET /users``; decision 0017's scope: a
director, an auditor or an admin every team, anyone else their own team and its users). A salesperson is narrowed
further here to their own team and themself. A filter value outside the lists is refused (422, the filter named)
rather than shown as an empty panel; while the directory does not answer, a team or salesperson cannot be chosen.

The lists are kept per session for ``KEEP_S`` (a page's panels, exports and live refreshes ask together)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from services.web.apis import Apis
from services.web.catalogs import N_
from services.web.panels import Filters, Said
from shared.edge.auth import Principal

KEEP_S = 60.0
KEPT = 10_000
PAGES = 20  # 4,000 teams or users at most in one dropdown
SALES_ROLES = frozenset({"sales", "sales_manager"})  # whose name the Salesperson filter lists
WIDER = frozenset({"sales_manager", "sales_director", "admin", "auditor"})  # a role that sees past one's own deals


@dataclass(frozen=True)
class Choices:
    teams: tuple[tuple[str, str], ...] = ()  # (team id, name)
    users: tuple[tuple[str, str], ...] = ()  # (user id, name)
    known: bool = True  # False: the directory did not answer (nothing may be chosen)

    def refusal(self, f: Filters) -> str | None:
        """Why the page's team or salesperson is not one the user may choose; None when both are."""
        for name, value, allowed in (("team", f.team, self.teams), ("owner", f.owner, self.users)):
            if value is None:
                continue
            if not self.known:
                return Said(
                    f"{name}: the directory does not answer right now, so it cannot be checked: try again",
                    N_(
                        "The directory does not answer right now, so the team or salesperson cannot be checked: try again."
                    ),
                )
            if value not in {k for k, _ in allowed}:
                return Said(
                    f"{name}: {value[:40]!r} is not one you may see",
                    N_("This team or salesperson is not one you may see."),
                )
        return None


async def _all(apis: Apis, path: str, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params = {"active": "true", "limit": "200"}
    for _ in range(PAGES):
        r = await apis.http.get(apis.directory + path, params=params, headers={"Authorization": f"Bearer {token}"})
        r.raise_for_status()
        body = r.json()
        items += body["items"]
        if not body.get("next_cursor"):
            break
        params = params | {"cursor": body["next_cursor"]}
    return items


async def load(apis: Apis, p: Principal, token: str) -> Choices:
    """What the directory lets ``p`` see, narrowed for a salesperson to their own team and themself."""
    try:
        teams, users = await asyncio.gather(_all(apis, "/teams", token), _all(apis, "/users", token))
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return Choices(known=False)
    own = not p.roles & WIDER  # a salesperson (or a role that owns no team's deals)
    team_list = tuple((t["team_id"], t.get("name") or t["team_id"]) for t in teams if not own or t["team_id"] == p.team)
    user_list = tuple(
        (u["user_id"], u.get("name") or u["user_id"])
        for u in users
        if (not own and SALES_ROLES & set(u.get("roles") or ())) or u["user_id"] == p.user_id
    )
    return Choices(tuple(sorted(team_list, key=lambda t: t[1])), tuple(sorted(user_list, key=lambda u: u[1])))


class People:
    """Each session's lists, for ``KEEP_S``."""

    def __init__(self, apis: Apis) -> None:
        self.apis = apis
        self.kept: dict[str, tuple[float, Choices]] = {}

    async def choices(self, key: str, p: Principal, token: str) -> Choices:
        now = time.monotonic()
        kept = self.kept.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        found = await load(self.apis, p, token)
        if found.known:  # a directory that did not answer is asked again next time
            if len(self.kept) >= KEPT:
                self.kept = {k: v for k, v in self.kept.items() if v[0] > now}
                if len(self.kept) >= KEPT:
                    self.kept.clear()
            self.kept[key] = (now + KEEP_S, found)
        return found
