"""Importing ad spend (issue 26 item 3): rows of kind ``spend`` in the leads service's ``POST /imports/batches``.

A spend row is one campaign's spend on one day, from an ad platform's export (Facebook Ads Manager, Google Ads:
shared/imports/mappings/facebook_ads.toml, google_ads.toml). Its one fact, ``record_spend``, names the campaign as
the platform does: our campaign's id, its code (set it to the platform's campaign id) or its name (exact, case
ignored); a name two of our campaigns share, or none, refuses the row with its reason.

It goes through the campaign's own command (``RecordSpend`` on ``campaign-<id>``), so its rules are the API's
(``PUT /campaigns/{id}/spend/{day}``): the spend is in the campaign's currency, the campaign has been launched.
Idempotent per campaign and day: the same amount again appends nothing (``exists``); another amount is the
platform's revised figure (Facebook and Google revise a day's spend for a few days): a ``CampaignSpendCorrected``
giving the source as its reason (``created``). The row's id is the campaign's id.

Time: the spend's business time is its ``day`` (ROI and cost per lead read spend by that day); the event's
occurred time is the import's (the platform reported the figure now), so a year of spend imported onto a campaign
created today is not refused as "before the campaign's last event".
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.leads import domain
from services.leads.domain import Campaign
from services.leads.handlers import Leads, campaign_stream
from shared.core.decider import RefusedError
from shared.core.events import DomainEvent
from shared.core.limits import MAX_NAME_CHARS, Count, Day, MoneyField
from shared.store.commands import Context, execute

KIND = "spend"
CAMPAIGN_PREFIX = campaign_stream(uuid.UUID(int=0)).split("-")[0] + "-"
COMMAND = "record_spend"


class SpendFact(BaseModel):
    """The body of a spend row's ``record_spend`` fact."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_NAME_CHARS)
    campaign: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]  # our id, code or name
    platform_id: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)] | None = None  # the ad platform's
    day: Day
    until: Day | None = None  # a row's last day (an export's "Reporting ends"): a spend row is one day's
    amount: MoneyField
    impressions: Count = 0
    clicks: Count = 0


class FactLike(Protocol):
    @property
    def command(self) -> str: ...
    @property
    def body(self) -> Mapping[str, Any]: ...


class RowLike(Protocol):
    @property
    def row(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def facts(self) -> Sequence[Any]: ...


class CampaignIndex:
    """Our campaigns by id, code and name (case ignored), folded from their streams once per batch."""

    def __init__(self, campaigns: Mapping[uuid.UUID, Campaign]) -> None:
        self.by_id = dict(campaigns)
        self.by_code: dict[str, list[uuid.UUID]] = {}
        self.by_name: dict[str, list[uuid.UUID]] = {}
        for cid, c in sorted(campaigns.items()):
            if c.code:
                self.by_code.setdefault(c.code.casefold(), []).append(cid)
            self.by_name.setdefault(c.name.strip().casefold(), []).append(cid)

    @classmethod
    async def read(cls, leads: Leads) -> CampaignIndex:
        recorded = await leads.store.read_streams(CAMPAIGN_PREFIX)
        by_stream: dict[str, list[Any]] = {}
        for r in recorded:
            by_stream.setdefault(r.stream_id, []).append(r.to_event())
        campaigns = {
            uuid.UUID(stream.removeprefix(CAMPAIGN_PREFIX)): domain.campaign_decider.fold(events)
            for stream, events in by_stream.items()
        }
        return cls({cid: c for cid, c in campaigns.items() if c.status != "none"})

    def find(self, ref: str, platform_id: str | None = None) -> uuid.UUID:
        """Our campaign a platform's row names: the platform's campaign id as our code, else ``ref`` as our id,
        our code or our name (refused: unknown or ambiguous)."""
        if platform_id is not None and len(self.by_code.get(platform_id.strip().casefold(), [])) == 1:
            return self.by_code[platform_id.strip().casefold()][0]
        try:
            as_id = uuid.UUID(ref)
        except ValueError:
            as_id = None
        if as_id is not None and as_id in self.by_id:
            return as_id
        key = ref.strip().casefold()
        for index, what in ((self.by_code, "code"), (self.by_name, "name")):
            found = index.get(key, [])
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise domain.LeadRuleError(
                    "campaign_ambiguous", f"{len(found)} campaigns have the {what} {ref!r}: give its id or code"
                )
        raise domain.LeadRuleError("unknown_campaign", f"no campaign has the id, code or name {ref!r}")


def _error(field: str, reason: str) -> dict[str, str]:
    return {"field": field, "reason": reason}


def _parse(row: RowLike) -> SpendFact | list[dict[str, str]]:
    facts = list(row.facts)
    if len(facts) != 1:
        return [_error("facts", f"a spend row has one fact ({COMMAND}), got {len(facts)}")]
    fact = facts[0]
    if fact.command != COMMAND:
        return [_error("facts[0].command", f"a spend row's fact is {COMMAND}")]
    try:
        spend = SpendFact.model_validate(dict(fact.body))
    except ValidationError as invalid:
        return [
            _error("facts[0].body." + ".".join(str(p) for p in e["loc"]), e["msg"])
            for e in invalid.errors(include_url=False)
        ]
    if spend.until is not None and spend.until != spend.day:
        return [_error("facts[0].body.until", f"a row covers {spend.day} to {spend.until}: export one row per day")]
    return spend


async def import_spend_rows(
    leads: Leads, source: str, rows: Sequence[RowLike], ctx: Context, *, dry_run: bool
) -> list[dict[str, Any]]:
    """Each spend row recorded on its campaign (one result per row, in order: the batch contract's shape)."""
    index = await CampaignIndex.read(leads)
    out: list[dict[str, Any]] = []
    for row in rows:
        parsed = _parse(row)
        if isinstance(parsed, list):
            out.append({"row": row.row, "status": "refused", "id": None, "errors": parsed})
            continue
        try:
            campaign_id = index.find(parsed.campaign, parsed.platform_id)
        except domain.LeadRuleError as refused:
            out.append(
                {
                    "row": row.row,
                    "status": "refused",
                    "id": None,
                    "errors": [_error("facts[0].body.campaign", refused.message)],
                }
            )
            continue
        out.append(await _record(leads, source, row.row, campaign_id, parsed, ctx, dry_run=dry_run))
    return out


async def _record(
    leads: Leads, source: str, row: int, campaign_id: uuid.UUID, fact: SpendFact, ctx: Context, *, dry_run: bool
) -> dict[str, Any]:
    answer: dict[str, Any] = {"row": row, "status": "created", "id": str(campaign_id), "errors": []}

    def decide(state: Campaign) -> list[DomainEvent]:
        """On the campaign as the append finds it: a day recorded with another amount is corrected."""
        previous = state.spend.get(fact.day)
        correction = None if previous is None or previous == fact.amount else f"re-imported from {source}"
        cmd = domain.RecordSpend(
            amount=fact.amount,
            impressions=fact.impressions,
            clicks=fact.clicks,
            source=source,
            correction_reason=correction,
        )
        return domain.decide_campaign(state, cmd, campaign_id, fact.day)

    try:
        if dry_run:
            events = decide((await leads.campaign(campaign_id)).state)
        else:
            now = dataclasses.replace(ctx, occurred_at=None)  # the import's time: the business time is the day
            stream = campaign_stream(campaign_id)
            done = await execute(leads.store, stream, domain.campaign_decider, decide, **now.options(leads.clock()))
            events = list(done.events)
    except RefusedError as refused:
        field = "facts[0].body.amount" if refused.rule in {"currency_mismatch", "negative_spend"} else "facts[0]"
        return {**answer, "status": "refused", "errors": [_error(field, refused.message)]}
    if not events:
        answer["status"] = "exists"
    return answer
