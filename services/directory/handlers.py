"""The directory's use cases: commands on users and teams, each checked against what it names.

A user's team must exist and be open (else 422 naming ``team_id``); the user taking over from a deactivated one
must be registered and active (else 422 naming ``handed_to``); both are read from their streams, so a check sees
every change committed before it. A team closes only without active users: they are counted over the directory's
events (reference data, written rarely: a few thousand events), not a read model that may lag behind.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from services.directory import domain
from services.directory.domain import InvalidReferenceError, Team, User
from services.directory.events import UserDeactivated, UserMovedToTeam, UserReactivated, UserRegistered
from shared.core.events import DomainEvent
from shared.privacy.pii import KeyStore, keys_of, parse_stored
from shared.store import EventStore
from shared.store.commands import CommandResult, Context, Loaded, execute, load

Clock = Callable[[], datetime]
USER_STREAM = "directory-user-"
TEAM_STREAM = "directory-team-"


def user_stream(user_id: str) -> str:
    return USER_STREAM + user_id


def team_stream(team_id: str) -> str:
    return TEAM_STREAM + team_id


class Directory:
    def __init__(
        self, store: EventStore, clock: Clock, known_roles: Collection[str], keys: KeyStore | None = None
    ) -> None:
        """``known_roles``: the roles tokens may carry (shared.edge.auth.ROLES); ``keys``: the personal-data key
        store an erasure destroys a key in (default: the store's)."""
        self.store = store
        self.clock = clock
        self.known_roles = frozenset(known_roles)
        self.keys = keys if keys is not None else keys_of(store)

    async def user(self, user_id: str, **read: Any) -> Loaded[User]:
        return await load(self.store, user_stream(user_id), domain.user_decider, **read)

    async def team(self, team_id: str, **read: Any) -> Loaded[Team]:
        return await load(self.store, team_stream(team_id), domain.team_decider, **read)

    async def handle_user(self, user_id: str, cmd: domain.UserCommand, ctx: Context) -> CommandResult[User]:
        now = self.clock()
        if isinstance(cmd, domain.RegisterUser | domain.MoveToTeam):
            await self._open_team(cmd.team_id)
        elif isinstance(cmd, domain.Deactivate) and cmd.handed_to != user_id:
            await self._active_user(cmd.handed_to, "handed_to")
        elif isinstance(cmd, domain.EraseUser):
            await self._destroy_key(user_id, cmd, now, ctx)
        return await execute(
            self.store,
            user_stream(user_id),
            domain.user_decider,
            lambda state: domain.decide_user(state, cmd, now, user_id, known_roles=self.known_roles),
            **ctx.options(now),
        )

    async def handle_team(self, team_id: str, cmd: domain.TeamCommand, ctx: Context) -> CommandResult[Team]:
        now = self.clock()
        members = await self.active_members(team_id) if isinstance(cmd, domain.CloseTeam) else 0
        return await execute(
            self.store,
            team_stream(team_id),
            domain.team_decider,
            lambda state: domain.decide_team(state, cmd, now, team_id, active_members=members),
            **ctx.options(now),
        )

    async def check_owner(self, owner_id: str, team_id: str) -> None:
        """What the customers' half asks (``services.directory.customers.References``): ``team_id`` exists and is
        open, ``owner_id`` is an active user in it; else 422 naming the field."""
        await self._open_team(team_id)
        await self._active_user(owner_id, "owner_id")
        user = (await self.user(owner_id)).state
        if user.team_id != team_id:
            raise InvalidReferenceError(
                "owner_not_in_team", f"owner_id: user {owner_id} is in team {user.team_id}, not {team_id}", "owner_id"
            )

    async def team_of(self, user_id: str) -> str | None:
        """A user's team (None: no such user): where a converted lead's customer goes when the lead has none."""
        user = (await self.user(user_id)).state
        return user.team_id if user.user_id is not None else None

    async def _open_team(self, team_id: str) -> None:
        team = (await self.team(team_id)).state
        if team.team_id is None:
            raise InvalidReferenceError("unknown_team", f"team_id: no team {team_id}", "team_id")
        if not team.active:
            raise InvalidReferenceError("team_closed", f"team_id: team {team_id} is closed", "team_id")

    async def _active_user(self, user_id: str, field: str) -> None:
        user = (await self.user(user_id)).state
        if user.user_id is None:
            raise InvalidReferenceError("unknown_user", f"{field}: no user {user_id}", field)
        if not user.active:
            raise InvalidReferenceError("user_inactive", f"{field}: user {user_id} is deactivated", field)

    async def _destroy_key(self, user_id: str, cmd: domain.EraseUser, now: datetime, ctx: Context) -> None:
        """As production erases a contact: the command is decided first (a refusal destroys nothing), then the
        key destroyed, then the event appended; a crash in between leaves the command to be sent again."""
        if self.keys is None:
            raise RuntimeError("this directory has no key store: it cannot erase a user")
        if ctx.idempotency is not None and await self.store.idempotent_result(ctx.idempotency) is not None:
            return
        loaded = await self.user(user_id)
        if ctx.expected_version is not None and ctx.expected_version != loaded.version:
            return
        domain.decide_user(loaded.state, cmd, now, user_id, known_roles=self.known_roles)
        await self.keys.erase(domain.subject_of(user_id), reason=cmd.reason)

    async def active_members(self, team_id: str) -> int:
        """The active users in ``team_id`` now, over every event of the directory's users (every one committed:
        ``read_all``, a tailing reader's, would hide a move committed after an older transaction still open)."""
        where: dict[str, tuple[str, bool]] = {}
        for r in await self.store.read_streams(USER_STREAM):
            _track(where, parse_stored(r.event_type, r.schema_version, r.data))
        return sum(1 for team, active in where.values() if team == team_id and active)


def _track(where: dict[str, tuple[str, bool]], e: DomainEvent) -> None:
    match e:
        case UserRegistered():
            where[e.user_id] = (e.team_id, True)
        case UserMovedToTeam():
            where[e.user_id] = (e.new, where.get(e.user_id, ("", True))[1])
        case UserDeactivated():
            where[e.user_id] = (e.team_id, False)
        case UserReactivated():
            where[e.user_id] = (e.team_id, True)
