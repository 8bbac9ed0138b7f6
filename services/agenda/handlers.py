"""The agenda's use cases: an activity scheduled, rescheduled, completed, cancelled, reassigned (load → decide →
append); what a request names (the subject, the owner) is checked at the edge (``api``) against the replicas
before, and the caller's rights on the activity inside the command runner's loop (``check``), on the state the
append is proven against.

"In the past" is the command's occurred time (``X-Occurred-At``, default the clock's now): the decision is made at
``ctx.occurred_at or now``, so imported history keeps working.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from services.agenda import domain
from services.agenda.events import activity_stream
from shared.store import EventStore
from shared.store.commands import CommandResult, Context, Created, Loaded, Step, execute, execute_new, load

Clock = Callable[[], datetime]
Check = Callable[[domain.Activity, int], None]
ACTIVITY_STREAM = "agenda-activity-"
REACTIONS_ACTOR = "system:agenda-reactions"
NS_ACTIVITY_FROM_REQUEST = uuid.UUID("8a3e6f1c-4b2d-5e7f-9c0a-1d2e3f4a5b25")


def new_id(ctx: Context) -> uuid.UUID:
    """The id of what a request schedules: derived from its actor and Idempotency-Key (a retry schedules the same
    one), else new."""
    if ctx.idempotency is None:
        return uuid.uuid4()
    return uuid.uuid5(NS_ACTIVITY_FROM_REQUEST, f"{ctx.actor}:{ctx.idempotency.key}")


class Agenda:
    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def using(self, store: EventStore) -> Agenda:
        """The same use cases on another store (a reaction's: the runner's transaction)."""
        return Agenda(store, self.clock)

    async def activity(self, activity_id: uuid.UUID, **read: Any) -> Loaded[domain.Activity]:
        return await load(self.store, activity_stream(activity_id), domain.activity_decider, **read)

    async def schedule(
        self, cmd: domain.Schedule, place: domain.Placement, ctx: Context
    ) -> CommandResult[domain.Activity]:
        return await self.handle(new_id(ctx), cmd, ctx, place=place)

    async def handle(
        self,
        activity_id: uuid.UUID,
        cmd: domain.ActivityCommand,
        ctx: Context,
        check: Check | None = None,
        place: domain.Placement | None = None,
    ) -> CommandResult[domain.Activity]:
        now = self.clock()
        at = ctx.at(now)
        return await execute(
            self.store,
            activity_stream(activity_id),
            domain.activity_decider,
            lambda state: domain.decide(state, cmd, at, activity_id, place),
            check=check,
            **ctx.options(now),
        )

    async def import_activity(
        self,
        activity_id: uuid.UUID,
        facts: Sequence[tuple[datetime, domain.ActivityCommand]],
        metadata: dict[str, Any],
        places: Callable[[], Awaitable[list[domain.Placement | None]]],
        *,
        dry_run: bool = False,
    ) -> Created[domain.Activity] | None:
        """An imported activity's history (issue 26): its scheduling, then what became of it, each decided as
        ``handle`` decides it, at its occurred time, all in one append; None: it was imported before. ``places()``
        (each fact's placement, as the routes settle it from the replicas: the scheduling's, a reassignment's)
        runs once the activity is known to be new."""
        placed: list[domain.Placement | None] = []

        async def checks() -> None:
            placed.extend(await places())

        def step(i: int, at: datetime, cmd: domain.ActivityCommand) -> Step[domain.Activity]:
            return Step(at, lambda state: domain.decide(state, cmd, at, activity_id, placed[i]))

        return await execute_new(
            self.store,
            activity_stream(activity_id),
            domain.activity_decider,
            [step(i, at, cmd) for i, (at, cmd) in enumerate(facts)],
            metadata=metadata,
            dry_run=dry_run,
            checks=checks,
        )
