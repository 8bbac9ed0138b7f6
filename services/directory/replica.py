"""The directory's replica: the read model each pipeline service keeps of the users and teams (decision 0017), and
the check a command or a query filter naming one makes against it.

Published by the directory beside its events (its read-side contract): the other services' projectors build the
``directory`` read model from ``pipelines.directory.events`` with ``replica(topic)``, and their APIs check the
users and teams a request names with ``References.check`` — never a call to the directory, so a directory outage
stops no sale. Tables (unqualified: each generation has its own schema): ``users`` (user_id, team_id, roles,
active, handed_to; and how to reach them: language, time_zone, quiet_start, quiet_end, reminders, digest_at,
email_token, the email sealed), ``teams`` (team_id, active) and ``rates`` (currency, effective_from, per_vnd: the
exchange rates, issue 26). What else a pipeline needs of the directory (organisations,
people) is added here: its DDL to ``DDL``, its events to ``apply``.

A client that has just changed a user or team (registered, moved, reactivated) names the directory's answer in
``X-Directory-After: <stream_id>@<version>[, …]`` (the answer's ``stream_id`` and ``version``): the check waits,
bounded like read-your-writes (5 s, else 503), until the replica has applied those events, then decides.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from services.directory import events as ev
from services.directory.replica_customers import (
    CUSTOMER_TABLES,
    CUSTOMERS_DDL,
    CustomerReferences,
    CustomerRows,
    MemoryCustomers,
    PostgresCustomers,
)
from shared.core.decider import InvalidError
from shared.core.events import DomainEvent
from shared.core.rates import RateTable
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection, ReadModelBehindError, ReadModels
from shared.messaging.rows import Rows, Table
from shared.store.db import Conn

NAME = "directory"
TABLES = ("users", "teams", "rates", *CUSTOMER_TABLES)
DDL = (
    """
CREATE TABLE IF NOT EXISTS users (
    user_id text PRIMARY KEY, team_id text NOT NULL, roles text[] NOT NULL DEFAULT '{}', active boolean NOT NULL,
    handed_to text);
CREATE INDEX IF NOT EXISTS users_by_team ON users (team_id, user_id);
CREATE TABLE IF NOT EXISTS teams (team_id text PRIMARY KEY, active boolean NOT NULL);
-- how to reach a user (issue 25: the agenda's notifier reads them): language, time zone, quiet hours, the reminders'
-- preference and the email still sealed (``pii:v1:user:<id>:…``, opened when a message is sent; None once erased)
ALTER TABLE users ADD COLUMN IF NOT EXISTS language text NOT NULL DEFAULT 'vi',
    ADD COLUMN IF NOT EXISTS time_zone text NOT NULL DEFAULT 'Asia/Ho_Chi_Minh',
    ADD COLUMN IF NOT EXISTS quiet_start time, ADD COLUMN IF NOT EXISTS quiet_end time,
    ADD COLUMN IF NOT EXISTS reminders text NOT NULL DEFAULT 'immediate', ADD COLUMN IF NOT EXISTS digest_at time,
    ADD COLUMN IF NOT EXISTS email_token text;
-- exchange rates (issue 26): đồng per unit of the currency from a day on (shared.core.rates converts with them)
CREATE TABLE IF NOT EXISTS rates (
    currency text NOT NULL, effective_from date NOT NULL, per_vnd numeric NOT NULL, PRIMARY KEY (currency, effective_from));
"""
    + CUSTOMERS_DDL
)  # organisations and people: services.directory.replica_customers
AFTER_HEADER = "X-Directory-After"
MAX_AFTER = 8  # streams one request may wait for
MAX_AFTER_CHARS = 1000
WAIT_S = 5.0
_AFTER = re.compile(r"^(directory-[A-Za-z0-9][A-Za-z0-9._:|+-]{0,200})@([1-9][0-9]{0,9})$")


# ---------------------------------------------------------------------------------------------- the read model
USERS = Table(
    "users",
    {
        "user_id": "text",
        "team_id": "text",
        "roles": "text[]",
        "active": "boolean",
        "handed_to": "text",
        "language": "text",
        "time_zone": "text",
        "quiet_start": "time",
        "quiet_end": "time",
        "reminders": "text",
        "digest_at": "time",
        "email_token": "text",
    },
    defaults={"roles": [], "language": "vi", "time_zone": "Asia/Ho_Chi_Minh", "reminders": "immediate"},
)
TEAMS = Table("teams", {"team_id": "text", "active": "boolean"})
RATES = Table(
    "rates", {"currency": "text", "effective_from": "date", "per_vnd": "numeric"}, key=("currency", "effective_from")
)


async def apply(conn: Conn, facts: Sequence[Fact]) -> None:
    """A batch of directory events on the replica, in order: each table's rows read once, folded, written once
    (``shared.messaging.rows``); any split of a history leaves the same tables."""
    events = [f.event for f in facts]
    users = await USERS.rows(conn, {e.user_id for e in events if isinstance(e, ev.UserEvent)})
    teams = await TEAMS.rows(conn, {e.team_id for e in events if isinstance(e, ev.TeamEvent)})
    rates = await RATES.rows(conn, ())
    customers = await CustomerRows.load(conn, events)
    for fact in facts:
        match fact.event:
            case ev.UserRegistered() as e:
                users.insert(USERS.new(user_id=e.user_id, team_id=e.team_id, roles=list(e.roles), active=True))
                _reach(users, fact, e)
            case ev.UserProfileChanged() as e:
                _reach(users, fact, e)
            case ev.UserPersonalDataErased() as e:
                users.update(e.user_id, email_token=None)
            case ev.UserRolesChanged() as e:
                users.update(e.user_id, roles=list(e.new))
            case ev.UserMovedToTeam() as e:
                users.update(e.user_id, team_id=e.new)
            case ev.UserDeactivated() as e:
                users.update(e.user_id, active=False, handed_to=e.handed_to)
            case ev.UserReactivated() as e:
                users.update(e.user_id, active=True, handed_to=None)
            case ev.TeamCreated() as e:
                teams.insert(TEAMS.new(team_id=e.team_id, active=True))
            case ev.TeamClosed() as e:
                teams.update(e.team_id, active=False)
            case ev.RateSet() as e:
                rates.put(RATES.new(currency=e.currency, effective_from=e.effective_from, per_vnd=e.per_vnd))
            case event:
                customers.apply(event)
    for rows in (users, teams, rates):
        await rows.flush(conn)
    await customers.flush(conn)


async def apply_one(conn: Conn, fact: Fact) -> None:
    """One directory event on the replica (a batch of one)."""
    await apply(conn, [fact])


def _reach(users: Rows, fact: Fact, e: ev.UserRegistered | ev.UserProfileChanged) -> None:
    """How the user is reached now; the email kept sealed, as the directory's own read model keeps it."""
    q = e.quiet_hours
    users.update(
        e.user_id,
        language=e.language,
        time_zone=e.time_zone,
        quiet_start=q.start if q else None,
        quiet_end=q.end if q else None,
        reminders=e.reminders,
        digest_at=e.digest_at,
        email_token=fact.envelope.data.get("email"),
    )


def replica(topic: str) -> Projection:
    """The ``directory`` read model of a pipeline service, from the directory's topic."""
    return Projection(
        name=NAME,
        topics=(topic,),
        ddl=DDL,
        apply=apply,
        accepts=("pipelines.directory.",),
        tables=TABLES,
    )


# ---------------------------------------------------------------------------------------------- hand-overs
@dataclass(frozen=True)
class Owned:
    """What one of a service's events says of the thing it changes: its owner now (None: unchanged) and whether it
    is open now (None: unchanged)."""

    item_id: str
    owner_id: str | None = None
    open: bool | None = None


Ownership = Callable[[DomainEvent], Owned | None]
# (conn, item id, the owner it is taken from, the owner it goes to, why, the event that caused it): the service's
# reaction, appending on ``conn`` (the runner's transaction); it reloads the item and does nothing when it is no
# longer open or no longer the old owner's (a replay, a rebuild, a second delivery)
HandOver = Callable[[Conn, str, str, str, str, CloudEvent], Awaitable[None]]
HANDOVERS_DDL = """
CREATE TABLE IF NOT EXISTS owned (item_id text PRIMARY KEY, owner_id text, open boolean NOT NULL DEFAULT true);
CREATE INDEX IF NOT EXISTS owned_by_owner ON owned (owner_id) WHERE open;
CREATE TABLE IF NOT EXISTS handed_over (user_id text PRIMARY KEY, handed_to text NOT NULL, reason text NOT NULL);
"""
OWNED = Table("owned", {"item_id": "text", "owner_id": "text", "open": "boolean"})


def handovers(
    directory_topic: str, own_topic: str, own_events: tuple[str, ...], ownership: Ownership, hand_over: HandOver
) -> Projection:
    """The ``handovers`` reaction of a pipeline service: a deactivated user's open things go to the user the admin
    named (``UserDeactivated.handed_to``). It keeps who owns which open thing (from the service's own events:
    ``ownership``) and who was handed over to whom, in one runner, so the two orders of a race meet: a
    deactivation hands over what is open then; a thing opened for (or given back to) a user already deactivated is
    handed over when its own event arrives."""

    async def owned_run(conn: Conn, run: list[tuple[Fact, Owned]]) -> None:
        """A run of the service's own events between two of the directory's, in order: the ``owned`` rows read and
        written once, the hand-over of each thing open for a user handed over (``handed_over`` read once: only the
        directory's events, which end a run, change it)."""
        if not run:
            return
        rows = await OWNED.rows(conn, {o.item_id for _, o in run})
        owners = {o.owner_id for _, o in run} | {r["owner_id"] for r in rows.rows.values() if r is not None}
        gone = {
            r["user_id"]: (r["handed_to"], r["reason"])
            for r in await conn.fetch(
                "SELECT user_id, handed_to, reason FROM handed_over WHERE user_id = ANY($1::text[])",
                [o for o in owners if o is not None],
            )
        }
        for fact, owned in run:
            row = rows.get(owned.item_id)
            if row is None:
                row = OWNED.new(item_id=owned.item_id, owner_id=owned.owner_id, open=owned.open is not False)
                rows.put(row)
            else:
                owner = row["owner_id"] if owned.owner_id is None else owned.owner_id
                rows.update(owned.item_id, owner_id=owner, open=row["open"] if owned.open is None else owned.open)
            if row["open"] and (to := gone.get(row["owner_id"])) is not None:
                await hand_over(conn, owned.item_id, row["owner_id"], to[0], to[1], fact.envelope)
        await rows.flush(conn)

    async def directory_event(conn: Conn, fact: Fact) -> None:
        e = fact.event
        if isinstance(e, ev.UserDeactivated):
            reason = f"{e.user_id} deactivated, handed to {e.handed_to}: {e.reason}"
            await conn.execute(
                """INSERT INTO handed_over VALUES ($1, $2, $3)
                   ON CONFLICT (user_id) DO UPDATE SET handed_to = $2, reason = $3""",
                e.user_id,
                e.handed_to,
                reason,
            )
            items = await conn.fetch(
                "SELECT item_id FROM owned WHERE owner_id = $1 AND open ORDER BY item_id", e.user_id
            )
            for r in items:
                await hand_over(conn, r["item_id"], e.user_id, e.handed_to, reason, fact.envelope)
        elif isinstance(e, ev.UserReactivated):
            await conn.execute("DELETE FROM handed_over WHERE user_id = $1", e.user_id)

    async def apply(conn: Conn, facts: Sequence[Fact]) -> None:
        """A batch in order: each run of the service's own events at once (``owned_run``), each of the directory's
        alone (decision 0030)."""
        run: list[tuple[Fact, Owned]] = []
        for fact in facts:
            if isinstance(fact.event, ev.UserDeactivated | ev.UserReactivated):
                await owned_run(conn, run)
                run = []
                await directory_event(conn, fact)
            elif (owned := ownership(fact.event)) is not None:
                run.append((fact, owned))
        await owned_run(conn, run)

    return Projection(
        name="handovers",
        topics=(directory_topic, own_topic),
        ddl=HANDOVERS_DDL,
        apply=apply,
        accepts=("pipelines.directory.UserDeactivated", "pipelines.directory.UserReactivated", *own_events),
        tables=("owned", "handed_over"),
    )


# ---------------------------------------------------------------------------------------------- the check
@dataclass(frozen=True)
class UserRef:
    user_id: str
    team_id: str
    active: bool = True
    roles: tuple[str, ...] = ()
    handed_to: str | None = None


@dataclass(frozen=True)
class TeamRef:
    team_id: str
    active: bool = True


class UnknownReferenceError(InvalidError):
    """A request names a user or team the directory does not have, or that cannot take it: 422 naming ``field``
    (``where``: body or query)."""

    def __init__(self, rule: str, message: str, field: str, where: str = "body") -> None:
        super().__init__(rule, message)
        self.field = field
        self.where = where


def parse_after(
    value: str | None,
    *,
    header: str = AFTER_HEADER,
    pattern: re.Pattern[str] = _AFTER,
    rule: str = "invalid_directory_after",
    what: str = "directory answers",
) -> tuple[tuple[str, int], ...]:
    """A read-your-writes header (``X-Directory-After``; the agenda's ``X-Subject-After`` gives its own ``header``,
    ``pattern``, ``rule`` and ``what``): answers' ``stream_id@version``, comma-separated (else 422 naming it)."""
    if not value:
        return ()
    parts = [p.strip() for p in value.split(",")] if len(value) <= MAX_AFTER_CHARS else []
    found = [pattern.match(p) for p in parts]
    if not parts or len(parts) > MAX_AFTER or not all(found):
        raise UnknownReferenceError(
            rule, f"{header}: at most {MAX_AFTER} {what} as stream_id@version, comma-separated", header, "header"
        )
    return tuple((m.group(1), int(m.group(2))) for m in found if m)


class References(CustomerReferences):
    """The users and teams a request names, checked against the replica. Subclasses read it."""

    async def lookup(
        self, users: Collection[str], teams: Collection[str], after: Sequence[tuple[str, int]]
    ) -> tuple[dict[str, UserRef], dict[str, TeamRef]]:
        raise NotImplementedError

    async def rates(self) -> RateTable:
        """The exchange rates the directory has set, as replicated here (issue 26)."""
        raise NotImplementedError

    async def check(
        self,
        *,
        owner_id: str | None = None,
        team_id: str | None = None,
        after: Sequence[tuple[str, int]] = (),
        where: str = "body",
        filtering: bool = False,
    ) -> None:
        """Refuse (``UnknownReferenceError``) an unknown user or team; for a command (not ``filtering``) also an
        inactive user, a closed team, and an owner who is not in the team named. A filter may name a deactivated
        user or a closed team: their past deals still count."""
        users = [owner_id] if owner_id is not None else []
        teams = [team_id] if team_id is not None else []
        if not users and not teams:
            return
        known_users, known_teams = await self.lookup(users, teams, after)
        if team_id is not None:
            team = known_teams.get(team_id)
            if team is None:
                raise UnknownReferenceError("unknown_team", f"team_id: no team {team_id}", "team_id", where)
            if not team.active and not filtering:
                raise UnknownReferenceError("team_closed", f"team_id: team {team_id} is closed", "team_id", where)
        if owner_id is not None:
            user = known_users.get(owner_id)
            if user is None:
                raise UnknownReferenceError("unknown_user", f"owner_id: no user {owner_id}", "owner_id", where)
            if filtering:
                return
            if not user.active:
                raise UnknownReferenceError(
                    "user_inactive", f"owner_id: user {owner_id} is deactivated", "owner_id", where
                )
            if team_id is not None and user.team_id != team_id:
                raise UnknownReferenceError(
                    "not_in_team", f"owner_id: user {owner_id} is not in team {team_id}", "owner_id", where
                )


class PostgresReplica(References, PostgresCustomers):
    """The replica as a pipeline's projector keeps it (its ``directory`` read model)."""

    def __init__(self, read_models: ReadModels, wait_s: float = WAIT_S) -> None:
        self.read_models = read_models
        self.wait_s = wait_s

    async def lookup(
        self, users: Collection[str], teams: Collection[str], after: Sequence[tuple[str, int]]
    ) -> tuple[dict[str, UserRef], dict[str, TeamRef]]:
        deadline = time.monotonic() + self.wait_s
        for stream, version in after:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReadModelBehindError(NAME, stream, version, 0)
            async with self.read_models.connection(NAME, wait_for=(stream, version), wait_s=left):
                pass
        async with self.read_models.connection(NAME) as conn:
            u = await conn.fetch(
                "SELECT user_id, team_id, roles, active, handed_to FROM users WHERE user_id = ANY($1)", list(users)
            )
            t = await conn.fetch("SELECT team_id, active FROM teams WHERE team_id = ANY($1)", list(teams))
        return (
            {
                r["user_id"]: UserRef(r["user_id"], r["team_id"], r["active"], tuple(r["roles"]), r["handed_to"])
                for r in u
            },
            {r["team_id"]: TeamRef(r["team_id"], r["active"]) for r in t},
        )

    async def rates(self) -> RateTable:
        async with self.read_models.connection(NAME) as conn:
            rows = await conn.fetch("SELECT currency, effective_from, per_vnd FROM rates")
        return RateTable.of((r["currency"], r["effective_from"], r["per_vnd"]) for r in rows)


@dataclass
class MemoryReplica(References, MemoryCustomers):
    """The replica in memory (the in-memory apps and unit tests): seeded, or fed the directory's events."""

    users: dict[str, UserRef] = field(default_factory=dict)
    teams: dict[str, TeamRef] = field(default_factory=dict)
    rate_rows: dict[tuple[str, date], Decimal] = field(default_factory=dict)

    def seed(self, *users: tuple[str, str]) -> MemoryReplica:
        """Active users ``(user_id, team_id)`` and their open teams."""
        for user_id, team_id in users:
            self.users[user_id] = UserRef(user_id, team_id)
            self.teams.setdefault(team_id, TeamRef(team_id))
        return self

    def apply(self, event: DomainEvent) -> None:
        """What ``apply_one`` does to the tables, on the dictionaries."""
        match event:
            case ev.UserRegistered() as e:
                self.users.setdefault(e.user_id, UserRef(e.user_id, e.team_id, roles=e.roles))
            case ev.UserRolesChanged() as e:
                self._user(e.user_id, roles=e.new)
            case ev.UserMovedToTeam() as e:
                self._user(e.user_id, team_id=e.new)
            case ev.UserDeactivated() as e:
                self._user(e.user_id, active=False, handed_to=e.handed_to)
            case ev.UserReactivated() as e:
                self._user(e.user_id, active=True, handed_to=None)
            case ev.TeamCreated() as e:
                self.teams.setdefault(e.team_id, TeamRef(e.team_id))
            case ev.TeamClosed() as e:
                if e.team_id in self.teams:
                    self.teams[e.team_id] = TeamRef(e.team_id, active=False)
            case ev.RateSet() as e:
                self.rate_rows[(e.currency, e.effective_from)] = e.per_vnd
            case _:
                self.apply_customer(event)

    def _user(self, user_id: str, **changes: object) -> None:
        if user_id in self.users:
            self.users[user_id] = replace(self.users[user_id], **changes)  # type: ignore[arg-type]

    async def lookup(
        self, users: Collection[str], teams: Collection[str], after: Sequence[tuple[str, int]]
    ) -> tuple[dict[str, UserRef], dict[str, TeamRef]]:
        return (
            {u: self.users[u] for u in users if u in self.users},
            {t: self.teams[t] for t in teams if t in self.teams},
        )

    async def rates(self) -> RateTable:
        return RateTable.of((c, d, r) for (c, d), r in self.rate_rows.items())
