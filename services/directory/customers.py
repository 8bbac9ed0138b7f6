"""The customers' use cases: organisations and people registered, changed, reassigned, merged; a person erased.
Nothing here imports the users' half (``handlers``): what a command names of it — an owner, a team — is checked
through ``References``, which the composition root (``main``) gives.

- *Owner and team*: a command placing an organisation or a person checks that the team exists and is open and the
  owner is an active user of it (422 naming ``team_id`` / ``owner_id``); an organisation a person works for
  exists and is not merged (422 naming ``organisation_id``); the target of a merge too (422 naming ``into``).
- *One organisation per tax code*: the stream ``directory-taxcode-<code>`` names its holder (``TaxCodeClaimed``);
  an organisation registered or changed to a code held by another is refused, 409 ``tax_code_taken`` naming the
  one holding it (``existing``; a merged holder: the one it reads as). A claim whose organisation never got
  registered (a registration that crashed half-way) is free again after ``STALE_CLAIM``; a registration retried
  with its Idempotency-Key gets the same organisation id (derived from the key), so it finds its own claim.
- *Merge*: the source's ``…Merged`` first (its rules refuse), then the target's ``…Absorbed`` (once: a merge sent
  again after a crash completes it).
- *Erasure*: decided first (a refusal destroys nothing), then the key destroyed, then the event appended.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from services.directory.domain import customer_commands as c
from services.directory.domain import organisation as org
from services.directory.domain import person as per
from services.directory.domain.errors import DuplicateError, InvalidReferenceError
from services.directory.events import TaxCodeClaimed
from shared.privacy.pii import KeyStore, keys_of
from shared.store import ConcurrencyError, EventStore, NewEvent
from shared.store.commands import CommandResult, Context, Loaded, execute, load

Clock = Callable[[], datetime]
Check = Callable[[Any, int], None]
ORGANISATION_STREAM = "directory-organisation-"
PERSON_STREAM = "directory-person-"
TAX_CODE_STREAM = "directory-taxcode-"
STALE_CLAIM = timedelta(minutes=1)
NS_CUSTOMER_FROM_REQUEST = uuid.UUID("3d0c7f5e-8f7b-5e52-9a61-0c2f4b8d7e01")


def organisation_stream(organisation_id: uuid.UUID) -> str:
    return f"{ORGANISATION_STREAM}{organisation_id}"


def person_stream(person_id: uuid.UUID) -> str:
    return f"{PERSON_STREAM}{person_id}"


def new_id(ctx: Context) -> uuid.UUID:
    """The id of what a request registers: derived from its Idempotency-Key (a retry registers the same one),
    else new."""
    return uuid.uuid5(NS_CUSTOMER_FROM_REQUEST, ctx.idempotency.key) if ctx.idempotency else uuid.uuid4()


class References(Protocol):
    """The users' half, as the customers' commands check it."""

    async def check_owner(self, owner_id: str, team_id: str) -> None:
        """Raise ``InvalidReferenceError`` naming ``team_id`` (no such team, or closed) or ``owner_id`` (no such
        user, inactive, or not in the team)."""
        ...


class Customers:
    def __init__(self, store: EventStore, clock: Clock, references: References, keys: KeyStore | None = None) -> None:
        self.store = store
        self.clock = clock
        self.references = references
        self.keys = keys if keys is not None else keys_of(store)

    async def organisation(self, organisation_id: uuid.UUID, **read: Any) -> Loaded[org.Organisation]:
        return await load(self.store, organisation_stream(organisation_id), org.organisation_decider, **read)

    async def person(self, person_id: uuid.UUID, **read: Any) -> Loaded[per.Person]:
        return await load(self.store, person_stream(person_id), per.person_decider, **read)

    # ------------------------------------------------------------------------------------------ organisations
    async def handle_organisation(
        self, organisation_id: uuid.UUID, cmd: c.OrganisationCommand, ctx: Context, check: Check | None = None
    ) -> CommandResult[org.Organisation]:
        now = self.clock()
        ctx.check_time(now)  # before a tax code is claimed: not in the future, within the caller's limit
        at = ctx.at(now)  # the fact's time (X-Occurred-At, an import)
        if not await self._replayed(ctx):
            await self._organisation_references(organisation_id, cmd, at)
        result = await execute(
            self.store,
            organisation_stream(organisation_id),
            org.organisation_decider,
            lambda state: org.decide_organisation(state, cmd, at, organisation_id),
            check=check,
            **ctx.options(now),
        )
        if isinstance(cmd, c.MergeOrganisation):
            await execute(
                self.store,
                organisation_stream(cmd.into),
                org.organisation_decider,
                lambda target: org.absorb(target, cmd.into, organisation_id, cmd.reason, at),
                **(ctx.options(now) | {"expected_version": None, "idempotency": None, "time_order": "clamp"}),
            )
        return result

    async def _replayed(self, ctx: Context) -> bool:
        """Whether the request was answered before (its Idempotency-Key): then its checks are not run again."""
        return ctx.idempotency is not None and await self.store.idempotent_result(ctx.idempotency) is not None

    async def _organisation_references(
        self, organisation_id: uuid.UUID, cmd: c.OrganisationCommand, now: datetime
    ) -> None:
        if isinstance(cmd, c.RegisterOrganisation | c.ReassignOrganisation):
            await self.references.check_owner(cmd.owner_id, cmd.team_id)
        if isinstance(cmd, c.RegisterOrganisation | c.ChangeOrganisation) and cmd.tax_code:
            state = (await self.organisation(organisation_id)).state
            org.decide_organisation(state, cmd, now, organisation_id)  # its own refusals come first
            if cmd.tax_code != state.tax_code:
                await self._claim(cmd.tax_code, organisation_id, now)
        if isinstance(cmd, c.MergeOrganisation):
            await self._live_organisation(cmd.into, "into")

    async def register_organisation(self, cmd: c.RegisterOrganisation, ctx: Context) -> CommandResult[org.Organisation]:
        return await self.handle_organisation(new_id(ctx), cmd, ctx)

    async def _live_organisation(self, organisation_id: uuid.UUID, field: str) -> org.Organisation:
        o = (await self.organisation(organisation_id)).state
        if o.organisation_id is None:
            raise InvalidReferenceError("unknown_organisation", f"{field}: no organisation {organisation_id}", field)
        if o.merged_into is not None:
            raise InvalidReferenceError(
                "organisation_merged", f"{field}: organisation {organisation_id} was merged into {o.merged_into}", field
            )
        return o

    async def tax_code_holder(self, tax_code: str) -> tuple[uuid.UUID | None, int]:
        """The organisation holding ``tax_code`` now (None: nobody), as the organisation it reads as, and the
        version of the code's stream."""
        claims = await self.store.read_stream(TAX_CODE_STREAM + tax_code)
        if not claims:
            return None, 0
        last = claims[-1]
        holder = uuid.UUID(last.data["organisation_id"])
        o = (await self.organisation(holder)).state
        if o.organisation_id is None:  # claimed, not registered: a registration under way, or one that crashed
            # the store's clock, not the business clock: how long ago the claim was recorded
            pending = datetime.now(UTC) - last.recorded_at < STALE_CLAIM
            return (holder if pending else None), last.version
        if o.tax_code != tax_code:  # its tax code was changed since
            return None, last.version
        while o.merged_into is not None:  # held by a duplicate: by the organisation it reads as
            holder = o.merged_into
            o = (await self.organisation(holder)).state
        return holder, last.version

    async def _claim(self, tax_code: str, organisation_id: uuid.UUID, now: datetime) -> None:
        for _ in range(3):
            holder, version = await self.tax_code_holder(tax_code)
            if holder == organisation_id:
                return
            if holder is not None:
                raise DuplicateError(
                    "tax_code_taken", f"tax_code: organisation {holder} has the tax code {tax_code}", str(holder)
                )
            claim = NewEvent(TaxCodeClaimed(tax_code=tax_code, organisation_id=organisation_id), occurred_at=now)
            try:
                await self.store.append(TAX_CODE_STREAM + tax_code, [claim], expected_version=version)
                return
            except ConcurrencyError:
                continue  # another claimed it meanwhile: read who
        raise ConcurrencyError(TAX_CODE_STREAM + tax_code, -1)

    # ------------------------------------------------------------------------------------------ people
    async def handle_person(
        self, person_id: uuid.UUID, cmd: c.PersonCommand, ctx: Context, check: Check | None = None
    ) -> CommandResult[per.Person]:
        now = self.clock()
        ctx.check_time(now)  # before a key is destroyed: not in the future, within the caller's limit
        at = ctx.at(now)  # the fact's time (X-Occurred-At, an import)
        owner, team = "", ""
        if await self._replayed(ctx):
            pass  # answered before: execute replays it
        elif isinstance(cmd, c.RegisterPerson):
            owner, team = await self._place_person(cmd)
        elif isinstance(cmd, c.ChangePerson) and cmd.organisation_id is not None:
            await self._live_organisation(cmd.organisation_id, "organisation_id")
        elif isinstance(cmd, c.ReassignPerson):
            await self.references.check_owner(cmd.owner_id, cmd.team_id)
        elif isinstance(cmd, c.MergePerson):
            await self._live_person(cmd.into, "into")
        elif isinstance(cmd, c.ErasePerson):
            await self._destroy_key(person_id, cmd, at, ctx, check)
        result = await execute(
            self.store,
            person_stream(person_id),
            per.person_decider,
            lambda state: per.decide_person(state, cmd, at, person_id, owner_id=owner, team_id=team),
            check=check,
            **ctx.options(now),
        )
        if isinstance(cmd, c.MergePerson):
            await execute(
                self.store,
                person_stream(cmd.into),
                per.person_decider,
                lambda target: per.absorb(target, cmd.into, person_id, cmd.reason, at),
                **(ctx.options(now) | {"expected_version": None, "idempotency": None, "time_order": "clamp"}),
            )
        return result

    async def register_person(self, cmd: c.RegisterPerson, ctx: Context) -> CommandResult[per.Person]:
        return await self.handle_person(new_id(ctx), cmd, ctx)

    async def _place_person(self, cmd: c.RegisterPerson) -> tuple[str, str]:
        """The owner and team of a new person: as given, else their organisation's (422 naming ``owner_id`` when
        there is neither)."""
        owner, team = cmd.owner_id, cmd.team_id
        if cmd.organisation_id is not None:
            o = await self._live_organisation(cmd.organisation_id, "organisation_id")
            owner, team = owner or o.owner_id, team or o.team_id
        if not owner or not team:
            field = "owner_id" if not owner else "team_id"
            raise InvalidReferenceError("owner_required", f"{field}: give one, or an organisation_id", field)
        await self.references.check_owner(owner, team)
        return owner, team

    async def _live_person(self, person_id: uuid.UUID, field: str) -> per.Person:
        p = (await self.person(person_id)).state
        if p.person_id is None:
            raise InvalidReferenceError("unknown_person", f"{field}: no person {person_id}", field)
        if p.merged_into is not None:
            raise InvalidReferenceError(
                "person_merged", f"{field}: person {person_id} was merged into {p.merged_into}", field
            )
        return p

    async def _destroy_key(
        self, person_id: uuid.UUID, cmd: c.ErasePerson, now: datetime, ctx: Context, check: Check | None
    ) -> None:
        if self.keys is None:
            raise RuntimeError("this directory has no key store: it cannot erase a person")
        if ctx.idempotency is not None and await self.store.idempotent_result(ctx.idempotency) is not None:
            return
        loaded = await self.person(person_id)
        if ctx.expected_version is not None and ctx.expected_version != loaded.version:
            return
        if check is not None:
            check(loaded.state, loaded.version)
        per.decide_person(loaded.state, cmd, now, person_id)
        await self.keys.erase(per.person_subject(person_id), reason=cmd.reason)
