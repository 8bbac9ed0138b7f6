"""The marketing read model's tables and how a batch of leads' events changes them (decision 0030).

A batch is folded in memory: the rows of the leads, campaigns and nurture emails it names are read in one
statement per table, each event changes its row in order (an event of a lead, campaign or email not there changes
nothing; a second capture or creation keeps the first row), and each table's changed rows are written back in one
statement. The same tables as event by event, for any split of a history into batches
(tests/integration/test_leads_batches.py). No personal data in plaintext: a lead keeps its sealed contact token.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from services.leads import events as ev
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact
from shared.messaging.rows import Row, read, read_sql, upsert_sql, write
from shared.store.db import Conn

DDL = """
CREATE TABLE IF NOT EXISTS leads (
    lead_id uuid PRIMARY KEY, source text NOT NULL, channel text, campaign_code text, captured_at timestamptz NOT NULL,
    status text NOT NULL, owner_id text, team_id text, contact_token text, first_contacted_at timestamptz,
    mql_at timestamptz, sql_at timestamptz, converted_at timestamptz, won_at timestamptz, won_value numeric,
    won_currency text, lost_at timestamptz, disqualified_at timestamptz, disqualify_reason text,
    fit integer, score numeric, scored_at timestamptz, segments text[] NOT NULL DEFAULT '{}',
    nurture text, duplicate_of uuid, merged_into uuid, erased boolean NOT NULL DEFAULT false);
CREATE INDEX IF NOT EXISTS leads_by_capture ON leads (captured_at);
CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id uuid PRIMARY KEY, name text NOT NULL, channel text NOT NULL, code text, budget numeric NOT NULL,
    currency text NOT NULL, status text NOT NULL);
CREATE TABLE IF NOT EXISTS spend (
    campaign_id uuid NOT NULL, day date NOT NULL, amount numeric NOT NULL, impressions integer NOT NULL,
    clicks integer NOT NULL, PRIMARY KEY (campaign_id, day));
CREATE TABLE IF NOT EXISTS nurture_emails (
    message_id text PRIMARY KEY, lead_id uuid NOT NULL, sequence_id text NOT NULL, step integer NOT NULL,
    opened boolean NOT NULL DEFAULT false, clicked boolean NOT NULL DEFAULT false);
"""

LEADS: dict[str, str] = {
    "lead_id": "uuid",
    "source": "text",
    "channel": "text",
    "campaign_code": "text",
    "captured_at": "timestamptz",
    "status": "text",
    "owner_id": "text",
    "team_id": "text",
    "contact_token": "text",
    "first_contacted_at": "timestamptz",
    "mql_at": "timestamptz",
    "sql_at": "timestamptz",
    "converted_at": "timestamptz",
    "won_at": "timestamptz",
    "won_value": "numeric",
    "won_currency": "text",
    "lost_at": "timestamptz",
    "disqualified_at": "timestamptz",
    "disqualify_reason": "text",
    "fit": "integer",
    "score": "numeric",
    "scored_at": "timestamptz",
    "segments": "text[]",
    "nurture": "text",
    "duplicate_of": "uuid",
    "merged_into": "uuid",
    "erased": "boolean",
}
CAMPAIGNS = {
    "campaign_id": "uuid",
    "name": "text",
    "channel": "text",
    "code": "text",
    "budget": "numeric",
    "currency": "text",
    "status": "text",
}
SPEND = {"campaign_id": "uuid", "day": "date", "amount": "numeric", "impressions": "integer", "clicks": "integer"}
EMAILS = {
    "message_id": "text",
    "lead_id": "uuid",
    "sequence_id": "text",
    "step": "integer",
    "opened": "boolean",
    "clicked": "boolean",
}
_READ_LEADS, _WRITE_LEADS = read_sql("leads", LEADS), upsert_sql("leads", LEADS)
_READ_CAMPAIGNS, _WRITE_CAMPAIGNS = read_sql("campaigns", CAMPAIGNS), upsert_sql("campaigns", CAMPAIGNS)
_READ_EMAILS, _WRITE_EMAILS = read_sql("nurture_emails", EMAILS), upsert_sql("nurture_emails", EMAILS)
_WRITE_SPEND = upsert_sql("spend", SPEND, key=("campaign_id", "day"))


def _captured(e: CloudEvent, event: ev.LeadCaptured) -> Row:
    a = event.attribution
    row: Row = dict.fromkeys(LEADS)
    row.update(
        lead_id=event.lead_id,
        source=event.source,
        channel=a.channel,
        campaign_code=a.campaign_id or a.utm_campaign,
        captured_at=event.captured_at,
        status="new",
        contact_token=e.data.get("contact"),  # the sealed token, opened at query time
        segments=[],
        erased=False,
    )
    return row


def _qualified(row: Row, event: ev.LeadQualified) -> None:
    column = "mql_at" if event.level == "mql" else "sql_at"
    row[column] = row[column] or event.at
    row["status"] = event.level


def _contacted(row: Row, event: ev.LeadContacted) -> None:
    row["first_contacted_at"] = row["first_contacted_at"] or event.at
    if row["status"] == "new":
        row["status"] = "contacted"


def _nurture_started(row: Row, event: ev.LeadNurtureStarted) -> None:
    row["nurture"] = event.sequence_id
    if row["status"] not in ("mql", "sql"):
        row["status"] = "nurturing"


# What each kind of lead event does to its lead's row (the envelope, the event, the row).
LEAD_CHANGES: dict[type[ev.LeadEvent], Callable[[CloudEvent, Any, Row], None]] = {
    ev.LeadContactDetailsUpdated: lambda e, x, row: row.update(contact_token=e.data.get("contact")),
    ev.LeadDuplicateDetected: lambda e, x, row: row.update(duplicate_of=x.duplicate_of),
    ev.LeadMergedInto: lambda e, x, row: row.update(status="merged", merged_into=x.survivor_id),
    ev.LeadAssigned: lambda e, x, row: row.update(owner_id=x.owner_id, team_id=x.team_id),
    ev.LeadSegmented: lambda e, x, row: row.update(segments=list(x.segments)),
    ev.LeadScored: lambda e, x, row: row.update(fit=x.fit, score=x.total, scored_at=x.at),
    ev.LeadContacted: lambda e, x, row: _contacted(row, x),
    ev.LeadNurtureStarted: lambda e, x, row: _nurture_started(row, x),
    ev.LeadNurtureStopped: lambda e, x, row: row.update(nurture=None),
    ev.LeadQualified: lambda e, x, row: _qualified(row, x),
    ev.LeadDisqualified: lambda e, x, row: row.update(
        status="disqualified", disqualified_at=x.at, disqualify_reason=x.reason, nurture=None
    ),
    ev.LeadConverted: lambda e, x, row: row.update(
        status="converted", converted_at=row["converted_at"] or e.time, nurture=None
    ),
    ev.LeadRecycled: lambda e, x, row: row.update(status="nurturing"),
    ev.LeadBecameCustomer: lambda e, x, row: row.update(
        won_at=x.won_at, won_value=x.value.amount, won_currency=x.value.currency
    ),
    ev.LeadOpportunityLost: lambda e, x, row: row.update(lost_at=x.lost_at),
    ev.LeadPersonalDataErased: lambda e, x, row: row.update(erased=True),
}
_ENGAGED = {"email_open": "opened", "email_click": "clicked"}  # an engagement naming a nurture email


async def _apply_leads(conn: Conn, facts: list[tuple[CloudEvent, ev.LeadEvent]]) -> None:
    rows = await read(conn, _READ_LEADS, {event.lead_id for _, event in facts})
    changed: dict[uuid.UUID, Row] = {}
    for e, event in facts:
        row = rows.get(event.lead_id)
        if isinstance(event, ev.LeadCaptured):
            if row is None:
                rows[event.lead_id] = changed[event.lead_id] = _captured(e, event)
        elif row is not None:
            LEAD_CHANGES[type(event)](e, event, row)
            changed[event.lead_id] = row
    await write(conn, _WRITE_LEADS, LEADS, changed.values())


async def _apply_emails(conn: Conn, events: list[ev.NurtureEmailSent | ev.LeadEngagementRecorded]) -> None:
    keys = {x.message_id if isinstance(x, ev.NurtureEmailSent) else x.asset_id for x in events}
    rows = await read(conn, _READ_EMAILS, keys)
    changed: dict[str, Row] = {}
    for x in events:
        if isinstance(x, ev.NurtureEmailSent):
            if x.message_id not in rows:
                rows[x.message_id] = changed[x.message_id] = {
                    "message_id": x.message_id,
                    "lead_id": x.lead_id,
                    "sequence_id": x.sequence_id,
                    "step": x.step,
                    "opened": False,
                    "clicked": False,
                }
        elif (row := rows.get(x.asset_id)) is not None:
            row[_ENGAGED[x.kind.value]] = True
            changed[row["message_id"]] = row
    await write(conn, _WRITE_EMAILS, EMAILS, changed.values())


def _campaign(row: Row | None, event: ev.CampaignEvent) -> Row | None:
    """The campaign's row after the event (None: it changes nothing)."""
    match event:
        case ev.CampaignCreated():
            if row is not None:
                return None
            b = event.budget
            values = (event.campaign_id, event.name, event.channel, event.code, b.amount, b.currency, "draft")
            return dict(zip(CAMPAIGNS, values, strict=True))
        case ev.CampaignStatusChanged() if row is not None:
            row["status"] = event.status
            return row
        case ev.CampaignBudgetChanged() if row is not None:
            row["budget"] = event.new.amount
            return row
    return None


async def _apply_campaigns(conn: Conn, events: list[ev.CampaignEvent]) -> None:
    spend: dict[tuple[uuid.UUID, Any], Row] = {}  # a day's last figures win, whether or not the campaign is known
    campaigns: list[ev.CampaignEvent] = []
    for x in events:
        if isinstance(x, ev.CampaignSpendRecorded | ev.CampaignSpendCorrected):
            amount = x.amount if isinstance(x, ev.CampaignSpendRecorded) else x.new
            values = (x.campaign_id, x.day, amount.amount, x.impressions, x.clicks)
            spend[(x.campaign_id, x.day)] = dict(zip(SPEND, values, strict=True))
        elif isinstance(x, ev.CampaignCreated | ev.CampaignStatusChanged | ev.CampaignBudgetChanged):
            campaigns.append(x)
    await write(conn, _WRITE_SPEND, SPEND, spend.values())
    rows = await read(conn, _READ_CAMPAIGNS, {x.campaign_id for x in campaigns})
    changed: dict[uuid.UUID, Row] = {}
    for x in campaigns:
        if (row := _campaign(rows.get(x.campaign_id), x)) is not None:
            rows[x.campaign_id] = changed[x.campaign_id] = row
    await write(conn, _WRITE_CAMPAIGNS, CAMPAIGNS, changed.values())


def _bucket(t: type) -> str:
    """Which table group an event type changes ("" for none)."""
    if issubclass(t, ev.LeadCaptured) or t in LEAD_CHANGES:
        return "lead"
    if issubclass(t, ev.NurtureEmailSent | ev.LeadEngagementRecorded):
        return "email"
    return "campaign" if issubclass(t, ev.CampaignEvent) else ""


_BUCKETS: dict[type, str] = {}  # by exact type: an isinstance check per event costs more than the rest of the sort


async def apply_marketing(conn: Conn, facts: Sequence[Fact]) -> None:
    """The marketing tables after a batch of leads' events in order (a batch of one is the per-event path)."""
    leads: list[tuple[CloudEvent, Any]] = []
    emails: list[Any] = []
    campaigns: list[Any] = []
    for fact in facts:
        event: Any = fact.event
        t = type(event)
        bucket = _BUCKETS.get(t)
        if bucket is None:
            bucket = _BUCKETS[t] = _bucket(t)
        if bucket == "lead":
            leads.append((fact.envelope, event))
        elif bucket == "campaign":
            campaigns.append(event)
        elif bucket == "email" and (t is ev.NurtureEmailSent or (event.asset_id and event.kind.value in _ENGAGED)):
            emails.append(event)
    await _apply_leads(conn, leads)
    await _apply_emails(conn, emails)
    await _apply_campaigns(conn, campaigns)
