"""Importing ad spend (issue 26 item 3): idempotent per campaign and day, a revised figure a correction, the campaign
found by id, code or name, and every bad row refused with its field and reason."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from services.leads import domain
from services.leads.handlers import InMemoryDedupe, Leads, campaign_stream
from services.leads.spend_import import import_spend_rows
from shared.core.money import Money
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
CTX = Context(actor="u-importer")


@dataclass(frozen=True)
class Fact:
    body: dict[str, Any]
    command: str = "record_spend"
    occurred_at: datetime = NOW


@dataclass(frozen=True)
class Row:
    row: int
    key: str
    facts: list[Fact] = field(default_factory=list)


def spend(row: int, campaign: str, day: str, amount: str, currency: str = "VND", **more: Any) -> Row:
    body = {"campaign": campaign, "day": day, "amount": {"amount": amount, "currency": currency}, **more}
    return Row(row, f"{campaign}/{day}", [Fact(body)])


async def campaigns(leads: Leads, *specs: tuple[str, str | None, bool]) -> list[uuid.UUID]:
    ids = []
    for name, code, launch in specs:
        cid = uuid.uuid4()
        await leads.campaign_command(
            cid, domain.CreateCampaign(name=name, channel="facebook", code=code, budget=Money.of(90_000_000)), CTX
        )
        if launch:
            await leads.campaign_command(cid, domain.ChangeCampaignStatus(status="active"), CTX)
        ids.append(cid)
    return ids


def setup() -> tuple[InMemoryEventStore, Leads]:
    store = InMemoryEventStore()
    return store, Leads(store, store.personal_data, lambda: NOW, InMemoryDedupe(), b"d" * 32)


async def test_spend_is_recorded_once_per_campaign_and_day_and_a_revised_figure_corrects_it() -> None:
    store, leads = setup()
    (tet,) = await campaigns(leads, ("Tết 2026", "fb-120210", True))
    first = [
        spend(2, "Tết 2026", "2026-01-20", "1500000", impressions=12000, clicks=340),
        spend(3, "fb-120210", "2026-01-21", "1750000"),
        spend(4, str(tet), "2026-01-22", "900000"),
    ]
    answers = await import_spend_rows(leads, "facebook_ads", first, CTX, dry_run=False)
    assert [(a["row"], a["status"], a["id"]) for a in answers] == [(r, "created", str(tet)) for r in (2, 3, 4)]
    version = await store.stream_version(campaign_stream(tet))

    again = await import_spend_rows(leads, "facebook_ads", first, CTX, dry_run=False)
    assert [a["status"] for a in again] == ["exists"] * 3
    assert await store.stream_version(campaign_stream(tet)) == version  # nothing appended

    revised = await import_spend_rows(
        leads, "facebook_ads", [spend(5, "tết 2026", "2026-01-21", "1800000")], CTX, dry_run=False
    )
    assert revised[0]["status"] == "created"
    recorded = await store.read_stream(campaign_stream(tet))
    last = recorded[-1]
    assert last.event_type == "pipelines.leads.CampaignSpendCorrected"
    assert last.data["old"]["amount"] == "1750000" and last.data["new"]["amount"] == "1800000"
    assert last.data["reason"] == "re-imported from facebook_ads"
    assert last.occurred_at == NOW  # the import's time; the business time is the spend's day
    state = (await leads.campaign(tet)).state
    assert {d: m.amount for d, m in state.spend.items()} == {
        date(2026, 1, 20): 1_500_000,
        date(2026, 1, 21): 1_800_000,
        date(2026, 1, 22): 900_000,
    }
    assert state.spend[date(2026, 1, 20)] == Money.of(1_500_000)


async def test_a_dry_run_decides_every_row_and_appends_nothing() -> None:
    store, leads = setup()
    (tet,) = await campaigns(leads, ("Tết 2026", None, True))
    version = await store.stream_version(campaign_stream(tet))
    rows = [spend(2, "Tết 2026", "2026-01-20", "1500000"), spend(3, "Hè 2026", "2026-06-01", "100")]
    answers = await import_spend_rows(leads, "google_ads", rows, CTX, dry_run=True)
    assert [a["status"] for a in answers] == ["created", "refused"]
    assert await store.stream_version(campaign_stream(tet)) == version


async def test_bad_rows_are_refused_with_their_field_and_reason() -> None:
    _, leads = setup()
    await campaigns(leads, ("Tết", None, True), ("Twin", None, True), ("twin", None, True), ("Draft", None, False))
    rows = [
        spend(2, "Nobody", "2026-01-20", "1"),
        spend(3, "TWIN", "2026-01-20", "1"),
        spend(4, "Tết", "2026-01-20", "12.50", "USD"),
        spend(5, "Draft", "2026-01-20", "1"),
        spend(6, "Tết", "20/01/2026", "1"),
        spend(7, "Tết", "2026-01-20", "-5"),
        Row(8, "x", []),
        Row(9, "y", [Fact({"campaign": "Tết"}, command="open_deal")]),
    ]
    answers = await import_spend_rows(leads, "google_ads", rows, CTX, dry_run=False)
    assert all(a["status"] == "refused" for a in answers), answers
    errors = {a["row"]: a["errors"][0] for a in answers}
    assert errors[2]["field"] == "facts[0].body.campaign" and "no campaign" in errors[2]["reason"]
    assert errors[3]["field"] == "facts[0].body.campaign" and "2 campaigns" in errors[3]["reason"]
    assert errors[4]["field"] == "facts[0].body.amount" and "VND" in errors[4]["reason"]
    assert "runs" in errors[5]["reason"]
    assert errors[6]["field"] == "facts[0].body.day"
    assert errors[7]["field"].startswith("facts[0].body.amount")
    assert errors[8]["field"] == "facts"
    assert errors[9]["field"] == "facts[0].command"


async def test_the_platforms_campaign_id_finds_our_campaign_by_code_and_a_row_is_one_day() -> None:
    _, leads = setup()
    ours, other = await campaigns(leads, ("Tết", "120210", True), ("Hè", None, True))
    rows = [
        spend(2, "a name the platform changed since", "2026-01-20", "5", platform_id="120210"),
        spend(3, "Hè", "2026-01-20", "7", platform_id="999"),  # an id we do not know: the name then
        spend(4, "Hè", "2026-01-21", "7", until="2026-01-27"),
    ]
    answers = await import_spend_rows(leads, "facebook_ads", rows, CTX, dry_run=False)
    assert [(a["status"], a["id"]) for a in answers[:2]] == [("created", str(ours)), ("created", str(other))]
    assert answers[2]["status"] == "refused"
    assert answers[2]["errors"] == [
        {"field": "facts[0].body.until", "reason": "a row covers 2026-01-21 to 2026-01-27: export one row per day"}
    ]
