"""The leads service's use cases: capture (idempotent per source delivery, with duplicate detection), the lead
lifecycle, merging, erasure, campaigns, and recording deal outcomes back on the lead.

The duplicate index holds keyed hashes (HMAC) of normalised emails and phones, never the values; an erasure
deletes the lead's rows with its key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import asyncpg
import structlog
from pydantic import BaseModel

from services.deals.events import DealLost, DealWon, deal_id_for_lead
from services.leads import domain, sources
from services.leads.domain import Campaign, Lead
from services.leads.events import LeadContact, LeadEvent
from shared.core import normalize
from shared.core.events import registry
from shared.messaging.envelope import CloudEvent
from shared.privacy.pii import PersonalData
from shared.store import AppendResult, DuplicateEventError, EventStore
from shared.store.commands import CommandResult, Context, Created, Loaded, Step, execute, execute_new, load
from shared.store.db import Conn, identifier
from shared.store.migrations import Migration, apply

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]
NS_LEAD_FROM_SOURCE = uuid.UUID("0b5e5a0e-0c6b-5d8e-8a34-6c1a7b2f0001")
NS_LEAD_FROM_IMPORT = uuid.UUID("0b5e5a0e-0c6b-5d8e-8a34-6c1a7b2f0002")
REACTIONS_ACTOR = "system:leads-reactions"


def lead_stream(lead_id: uuid.UUID) -> str:
    return f"lead-{lead_id}"


def campaign_stream(campaign_id: uuid.UUID) -> str:
    return f"campaign-{campaign_id}"


def lead_id_for(source: str, external_id: str, *, imported: bool = False) -> uuid.UUID:
    """A source's delivery always maps to the same lead, so a repeated delivery captures nothing new. What a client
    types in or imports (``imported``) maps into a namespace of its own: the ids of the sources' verified deliveries
    (the webhooks) are not one a client can take first by naming the same source and external id."""
    return uuid.uuid5(NS_LEAD_FROM_IMPORT if imported else NS_LEAD_FROM_SOURCE, f"{source}:{external_id}")


# ---------------------------------------------------------------------------------------------- duplicates
def match_keys(contact: LeadContact | None, secret: bytes) -> dict[str, str]:
    """kind → keyed hash of the normalised email / phone."""
    if contact is None:
        return {}
    values = {"email": normalize.email(contact.email), "phone": normalize.phone(contact.phone)}
    return {
        kind: f"{kind}:" + hmac.new(secret, v.encode(), hashlib.sha256).hexdigest() for kind, v in values.items() if v
    }


class Claim(Protocol):
    """The duplicate index while a capture holds its keys: no other capture sharing one finds or adds meanwhile."""

    async def find(self, keys: Iterable[str]) -> dict[uuid.UUID, list[str]]: ...
    async def add(self, lead_id: uuid.UUID, keys: Iterable[str]) -> None: ...


class DedupeIndex(Protocol):
    def claim(self, keys: Iterable[str]) -> AbstractAsyncContextManager[Claim]: ...
    async def forget(self, lead_id: uuid.UUID) -> None: ...


class InMemoryDedupe:
    def __init__(self) -> None:
        self.rows: set[tuple[str, uuid.UUID]] = set()
        self._claimed = asyncio.Lock()

    @asynccontextmanager
    async def claim(self, keys: Iterable[str]) -> AsyncIterator[Claim]:
        """One capture at a time (every key at once: this index is for tests)."""
        async with self._claimed:
            yield self

    async def find(self, keys: Iterable[str]) -> dict[uuid.UUID, list[str]]:
        wanted, out = set(keys), dict[uuid.UUID, list[str]]()
        for key, lead in sorted(self.rows):
            if key in wanted:
                out.setdefault(lead, []).append(key.split(":")[0])
        return out

    async def add(self, lead_id: uuid.UUID, keys: Iterable[str]) -> None:
        self.rows |= {(k, lead_id) for k in keys}

    async def forget(self, lead_id: uuid.UUID) -> None:
        self.rows = {r for r in self.rows if r[1] != lead_id}


class PostgresDedupe:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = identifier(schema)
        self.table = f"{self.schema}.dedupe_keys"
        # A claim holds a pool connection while its capture takes others (the append, the subject's key): at most
        # half the pool is held by claims, so the captures never wait for a connection only they could free.
        self._claims = asyncio.Semaphore(max(1, pool.get_max_size() // 2))

    @asynccontextmanager
    async def claim(self, keys: Iterable[str]) -> AsyncIterator[Claim]:
        """The index for one capture, under a transaction-level advisory lock on each of its keys (taken in
        order, so two claims never wait for each other in a cycle): a second capture of the same person waits
        until the first's keys are committed, then finds them. The rows added commit when the block ends."""
        async with self._claims, self.pool.acquire() as conn, conn.transaction():
            for key in sorted(set(keys)):
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('pipelines.leads.dedupe'), hashtext($1))",
                    f"{self.schema}:{key}",
                )
            yield _PostgresClaim(conn, self.table)

    async def setup(self) -> None:
        """The index's table, made once (``shared.store.migrations``)."""
        ddl = f"""CREATE TABLE IF NOT EXISTS {self.table} (key text NOT NULL, lead_id uuid NOT NULL,
                    PRIMARY KEY (key, lead_id));
                CREATE INDEX IF NOT EXISTS dedupe_keys_by_lead ON {self.table} (lead_id)"""
        await apply(self.pool, self.schema, [Migration("leads.dedupe.0001", "duplicate index", ddl)])

    async def forget(self, lead_id: uuid.UUID) -> None:
        await self.pool.execute(f"DELETE FROM {self.table} WHERE lead_id = $1", lead_id)


@dataclass(frozen=True)
class _PostgresClaim:
    conn: Conn
    table: str

    async def find(self, keys: Iterable[str]) -> dict[uuid.UUID, list[str]]:
        return _by_lead(
            await self.conn.fetch(
                f"SELECT key, lead_id FROM {self.table} WHERE key = ANY($1::text[]) ORDER BY lead_id, key", list(keys)
            )
        )

    async def add(self, lead_id: uuid.UUID, keys: Iterable[str]) -> None:
        await self.conn.executemany(
            f"INSERT INTO {self.table} (key, lead_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [(k, lead_id) for k in keys],
        )


def _by_lead(rows: Iterable[Any]) -> dict[uuid.UUID, list[str]]:
    """lead → the kinds of its keys among the rows (``email``, ``phone``)."""
    out: dict[uuid.UUID, list[str]] = {}
    for r in rows:
        out.setdefault(r["lead_id"], []).append(r["key"].split(":")[0])
    return out


# ---------------------------------------------------------------------------------------------- use cases
@dataclass(frozen=True)
class Captured:
    lead_id: uuid.UUID
    result: CommandResult[Lead] | None  # None: this delivery was captured before
    duplicate_of: uuid.UUID | None = None


class Leads:
    def __init__(
        self,
        store: EventStore,
        personal_data: PersonalData,
        clock: Clock,
        dedupe: DedupeIndex,
        dedupe_secret: bytes,
        rules: domain.ScoringRules = domain.DEFAULT_RULES,
    ) -> None:
        self.store = store
        self.personal_data = personal_data
        self.clock = clock
        self.dedupe = dedupe
        self.dedupe_secret = dedupe_secret
        self.rules = rules

    def using(self, store: EventStore) -> Leads:
        return Leads(store, self.personal_data, self.clock, self.dedupe, self.dedupe_secret, self.rules)

    async def lead(self, lead_id: uuid.UUID, **read: Any) -> Loaded[Lead]:
        return await load(self.store, lead_stream(lead_id), domain.lead_decider, **read)

    async def capture(
        self, cmd: domain.CaptureLead, ctx: Context, lead_id: uuid.UUID | None = None, *, imported: bool = False
    ) -> Captured:
        """Capture a lead once per source delivery (``imported``: once per external id a client gives, in a namespace
        apart from the webhooks': ``lead_id_for``); flag (never merge silently) a person seen before.

        The lead and its duplicate flag are one append, with the request's Idempotency-Key: a retry answers the
        first capture (its lead, version, position and flag) and changes nothing. The duplicate index learns the
        lead's keys only once that append committed, so no retry or lost race leaves an id there without a lead.
        The capture holds its keys in the index (``claim``) from the look-up to that write: the same person
        captured twice at once is one first lead and one flagged duplicate, as when the two come one after another."""
        if ctx.idempotency and (first := await self.store.idempotent_result(ctx.idempotency)):
            return await self._captured_before(first)
        if lead_id is None:
            lead_id = lead_id_for(cmd.source, cmd.external_id, imported=imported) if cmd.external_id else uuid.uuid4()
        keys = match_keys(cmd.contact, self.dedupe_secret)
        async with self.dedupe.claim(keys.values()) as index:
            return await self._capture(cmd, ctx, lead_id, index, keys)

    async def _capture(
        self, cmd: domain.CaptureLead, ctx: Context, lead_id: uuid.UUID, index: Claim, keys: dict[str, str]
    ) -> Captured:
        if await self.store.stream_version(lead_stream(lead_id)) > 0:
            return Captured(lead_id, None)
        seen = await self._seen_before(index, lead_id, keys.values())
        commands: list[domain.Command] = [cmd]
        if seen is not None:
            commands.append(domain.RecordDuplicate(duplicate_of=seen[0], match_keys=tuple(seen[1])))
        now = self.clock()
        at = ctx.at(now)  # a back-dated capture (X-Occurred-At, an import) decides on its own time

        def decide(lead: Lead) -> list[LeadEvent]:
            events: list[LeadEvent] = []
            for command in commands:
                new = domain.decide(lead, command, at, lead_id, actor=ctx.actor, rules=self.rules)
                lead = domain.lead_decider.fold(new, lead)
                events += new
            return events

        result = await execute(self.store, lead_stream(lead_id), domain.lead_decider, decide, **ctx.options(now))
        if result.append.replayed:  # a request with the same key captured it first, meanwhile
            return await self._captured_before(result.append)
        await index.add(lead_id, keys.values())
        return Captured(lead_id, result, seen[0] if seen is not None else None)

    async def import_lead(
        self,
        lead_id: uuid.UUID,
        facts: Sequence[tuple[datetime, domain.Command]],
        metadata: dict[str, Any],
        *,
        dry_run: bool = False,
        resolve: Callable[[list[domain.Command]], Awaitable[list[domain.Command]]] | None = None,
    ) -> Created[Lead] | None:
        """An imported lead's history (issue 26): its capture, then commands of its lifecycle, each decided as
        ``capture`` and ``handle`` decide them, at its occurred time, all in one append; None: it was imported
        before. A person seen before is flagged on the capture, as a capture does (the duplicate index learns the
        lead's keys once it is appended); ``resolve(commands)`` checks what they name once the lead is known new."""
        commands = [command for _, command in facts]
        capture = commands[0]
        assert isinstance(capture, domain.CaptureLead)
        keys = match_keys(capture.contact, self.dedupe_secret)
        actor = str(metadata.get("actor", ""))
        async with self.dedupe.claim(keys.values()) as index:
            seen: list[tuple[uuid.UUID, list[str]]] = []

            async def checks() -> None:
                if resolve is not None:
                    commands[:] = await resolve(commands)
                if (found := await self._seen_before(index, lead_id, keys.values())) is not None:
                    seen.append(found)

            def step(i: int, at: datetime) -> Step[Lead]:
                def decide(lead: Lead) -> list[LeadEvent]:
                    now: list[domain.Command] = [commands[i]]
                    if i == 0 and seen:
                        now.append(domain.RecordDuplicate(duplicate_of=seen[0][0], match_keys=tuple(seen[0][1])))
                    events: list[LeadEvent] = []
                    for command in now:
                        new = domain.decide(
                            lead, command, at, lead_id, actor=actor, rules=self.rules, contact=capture.contact
                        )
                        lead = domain.lead_decider.fold(new, lead)
                        events += new
                    return events

                return Step(at, decide)

            steps = [step(i, at) for i, (at, _) in enumerate(facts)]
            created = await execute_new(
                self.store,
                lead_stream(lead_id),
                domain.lead_decider,
                steps,
                metadata=metadata,
                dry_run=dry_run,
                checks=checks,
            )
            if created is not None and created.append is not None:
                await index.add(lead_id, keys.values())
        return created

    async def _seen_before(
        self, index: Claim, lead_id: uuid.UUID, keys: Iterable[str]
    ) -> tuple[uuid.UUID, list[str]] | None:
        """Another lead with one of these keys, and the kinds that match: one whose capture committed."""
        for other, kinds in (await index.find(keys)).items():
            if other != lead_id and await self.store.stream_version(lead_stream(other)) > 0:
                return other, kinds
        return None

    async def _captured_before(self, first: AppendResult) -> Captured:
        """The answer of the earlier capture with the same Idempotency-Key, as it was then."""
        lead_id = uuid.UUID(first.stream_id.removeprefix("lead-"))
        earlier = await self.lead(lead_id, to_version=first.version)
        return Captured(lead_id, CommandResult(first, earlier.state, ()), earlier.state.duplicate_of)

    async def contact(self, lead_id: uuid.UUID) -> LeadContact | None:
        """The lead's current contact, opened (None once erased)."""
        loaded = await self.lead(lead_id)
        sealed = [
            e.data
            for e in loaded.events
            if e.event_type in ("pipelines.leads.LeadCaptured", "pipelines.leads.LeadContactDetailsUpdated")
        ]
        if not sealed:
            return None
        opened = (await self.personal_data.open([sealed[-1]]))[0].get("contact")
        return LeadContact.model_validate(opened) if opened else None

    async def handle(self, lead_id: uuid.UUID, cmd: domain.Command, ctx: Context) -> CommandResult[Lead]:
        now = self.clock()
        at = ctx.at(now)  # the fact's time: "in the past" checks compare with it
        # opened in memory for the decisions that need who the lead is; never stored or logged in clear
        contact = await self.contact(lead_id) if isinstance(cmd, domain.Convert | domain.Score) else None
        return await execute(
            self.store,
            lead_stream(lead_id),
            domain.lead_decider,
            lambda state: domain.decide(state, cmd, at, lead_id, actor=ctx.actor, rules=self.rules, contact=contact),
            **ctx.options(now),
        )

    async def merge(self, survivor: uuid.UUID, other: uuid.UUID, ctx: Context) -> CommandResult[Lead]:
        """Merge ``other`` into ``survivor``: explicit, recorded on both."""
        if survivor == other:
            raise domain.LeadRuleError("self_merge", "a lead cannot be merged into itself")
        if (await self.lead(survivor)).state.status not in domain.ACTIVE:
            raise domain.LeadRuleError("survivor_inactive", "the surviving lead must be active")
        other_ctx = dataclasses.replace(ctx, expected_version=None, idempotency=None)  # the same time, limit and actor
        await self.handle(other, domain.MergeInto(survivor_id=survivor), other_ctx)
        return await self.handle(survivor, domain.Absorb(other_lead_id=other), ctx)

    async def erase(self, lead_id: uuid.UUID, reason: str, ctx: Context) -> CommandResult[Lead]:
        """Forget the person: record the request, destroy their key, drop their duplicate-index rows."""
        result = await self.handle(lead_id, domain.Erase(reason=reason), ctx)
        await self.personal_data.keys.erase(str(lead_id), reason=reason)
        await self.dedupe.forget(lead_id)
        return result

    async def remap(self, lead_id: uuid.UUID, ctx: Context) -> CommandResult[Lead]:
        """Run the source's current mapping again on the kept raw payload."""
        loaded = await self.lead(lead_id)
        captured = next((e for e in loaded.events if e.event_type == "pipelines.leads.LeadCaptured"), None)
        if captured is None:
            raise domain.NotFoundError("lead_not_found", "no such lead")
        raw = (await self.personal_data.open([captured.data]))[0].get("raw_payload")
        if raw is None:
            raise domain.LeadRuleError("no_raw_payload", "this lead has no raw payload (manual, or erased)")
        mapped = sources.remap(loaded.state.source, raw)
        if mapped is None:
            raise domain.LeadRuleError("unmappable", f"no mapping gives a contact for source {loaded.state.source}")
        return await self.handle(lead_id, domain.UpdateContact(contact=mapped.contact, reason="mapping re-run"), ctx)

    # ------------------------------------------------------------------ campaigns
    async def campaign(self, campaign_id: uuid.UUID) -> Loaded[Campaign]:
        return await load(self.store, campaign_stream(campaign_id), domain.campaign_decider)

    async def campaign_command(
        self, campaign_id: uuid.UUID, cmd: BaseModel, ctx: Context, day: date | None = None
    ) -> CommandResult[Campaign]:
        return await execute(
            self.store,
            campaign_stream(campaign_id),
            domain.campaign_decider,
            lambda state: domain.decide_campaign(state, cmd, campaign_id, day),
            **ctx.options(self.clock()),
        )

    # ------------------------------------------------------------------ reactions
    async def react(self, envelope: CloudEvent, data: dict[str, Any]) -> None:
        """The deals service's outcome of the deal a lead's conversion opened, recorded back on the lead. Only that
        deal's (its id derives from the lead's: ``deal_id_for_lead``): another deal naming the lead as its source
        attributes nothing to it (logged as a warning)."""
        event = registry.parse(envelope.type, envelope.schemaversion, data)
        ctx = Context.reacting_to(envelope, REACTIONS_ACTOR)
        match event:
            case DealWon(source_lead_id=uuid.UUID() as lead_id):
                cmd = domain.RecordOutcome(deal_id=event.deal_id, won=True, value=event.value, at=event.won_at)
            case DealLost(source_lead_id=uuid.UUID() as lead_id):
                cmd = domain.RecordOutcome(deal_id=event.deal_id, won=False, reason=event.reason, at=event.lost_at)
            case _:
                return
        if event.deal_id != deal_id_for_lead(lead_id):
            log.warning(
                "leads.outcome_not_attributed", lead_id=str(lead_id), deal_id=str(event.deal_id), event_id=envelope.id
            )
            return
        try:
            await self.handle(lead_id, cmd, ctx)
        except DuplicateEventError:
            pass  # recorded before (a replay)
        except domain.LeadRuleError as refused:
            log.info("leads.reaction_refused", lead_id=str(lead_id), rule=refused.rule)
