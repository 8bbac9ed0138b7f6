"""Odoo CRM's sample export of crm.lead (tests/fixtures/imports/odoo/crm_lead.csv, labels as headers) imported by
the shipped mapping through the services' real ``POST /imports/batches`` (in memory), checked against the oracle
computed by hand from the file; a second run appends nothing.

The oracle, from the file (row = the file's line, the header being line 1); each line makes its company (an
organisation keyed by its name), its contact (a person) and a deal (Type Opportunity) or a lead (Type Lead):
- lines 2–9 and 13: 8 organisations (line 7 has no company), 9 people (line 7's without organisation);
- deals: crm_lead_11 won (VND 320,000,000 at its Closed Date 2025-02-25 10:00), crm_lead_15 won (USD 9,800.00);
  crm_lead_12 open in Proposition → quote_sent since 2025-02-10 14:00; crm_lead_13 open in Qualified →
  needs_discussed; crm_lead_14 lost (archived, "Too expensive", no Closed Date: at Last Updated on 2025-03-05
  16:00); crm_lead_18 lost ("Chọn đối thủ rẻ hơn", at its Closed Date 2025-03-10 09:00); crm_lead_22 refused by
  the deals service (won with revenue 0);
- leads crm_lead_16 and crm_lead_17 captured in the leads service (source odoo) at their Created on;
- lines 10 (stage "Đàm phán"), 11 (salesperson "Administrator") and 12 (Created on "hôm qua") bad."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.core.ids import import_id
from shared.imports import runner
from testkit.import_world import World, run_import

SAMPLE = [Path(__file__).parents[2] / "fixtures" / "imports" / "odoo" / "crm_lead.csv"]
XID = {
    11: "__export__.crm_lead_11_8f3a2c1b",
    12: "__export__.crm_lead_12_41d07e9a",
    13: "__export__.crm_lead_13_c2b9e610",
    14: "__export__.crm_lead_14_77aa3e02",
    15: "__export__.crm_lead_15_0b5c9d44",
    16: "__export__.crm_lead_16_5e1f2a88",
    17: "__export__.crm_lead_17_9c3d4b71",
    18: "__export__.crm_lead_18_a4e6f013",
}


def ident(kind: str, key: str) -> str:
    return str(import_id("odoo", kind, key))


def vn(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    """A time of the sample as the mapping reads it (Asia/Ho_Chi_Minh, the exporting user's zone), in UTC."""
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).astimezone(UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    monkeypatch.setattr(runner, "REFERENCE_RETRY_SECONDS", 0.0)
    w = await World().start()
    yield w
    await w.close()


async def test_the_sample_lands_as_the_oracle_says_and_a_second_run_appends_nothing(
    world: World, tmp_path: Path
) -> None:
    counts, report = await run_import(world, "odoo", SAMPLE, tmp_path)
    problems = {(row, column): reason for _, row, column, reason in report}
    # 8 organisations + 9 people + 6 deals + 2 leads; the deal of line 13 refused; lines 10-12 bad
    assert (counts.rows, counts.created, counts.refused, counts.bad) == (12, 25, 1, 3), (counts, report)
    assert {r for r, _ in problems} == {10, 11, 12, 13}
    assert "Đàm phán" in problems[(10, "Stage")] and "Administrator" in problems[(11, "Salesperson")]
    assert (12, "Created on") in problems

    deals = {n: await world.get("deals", f"/deals/{ident('deal', XID[n])}") for n in (11, 12, 13, 14, 15, 18)}
    assert {n for n, d in deals.items() if d["status"] == "won"} == {11, 15}
    assert {n for n, d in deals.items() if d["status"] == "lost"} == {14, 18}
    assert {n: d["stage"]["stage_id"] for n, d in deals.items() if d["status"] == "open"} == {
        12: "quote_sent",
        13: "needs_discussed",
    }
    assert (Decimal(deals[11]["value"]["amount"]), deals[11]["value"]["currency"]) == (Decimal(320_000_000), "VND")
    assert (Decimal(deals[15]["value"]["amount"]), deals[15]["value"]["currency"]) == (Decimal(9_800), "USD")
    assert utc(deals[11]["opened_at"]) == vn(2025, 1, 13, 8, 20)
    assert utc(deals[11]["closed_at"]) == vn(2025, 2, 25, 10)
    assert utc(deals[12]["entered_stage_at"]) == vn(2025, 2, 10, 14)
    assert (deals[14]["lost_reason"], utc(deals[14]["closed_at"])) == ("Too expensive", vn(2025, 3, 5, 16))
    assert (deals[18]["lost_reason"], utc(deals[18]["closed_at"])) == ("Chọn đối thủ rẻ hơn", vn(2025, 3, 10, 9))
    tan_binh = ident("organisation", "Công ty TNHH In Tân Bình")
    assert deals[11]["organisation_id"] == tan_binh and deals[11]["customer"] == "Công ty TNHH In Tân Bình"

    bao = await world.get("directory", f"/people/{ident('person', XID[11])}")
    assert (bao["name"], bao["organisation_id"]) == ("Lâm Quốc Bảo", tan_binh)
    long_ = await world.get("directory", f"/people/{ident('person', XID[16])}")
    assert (long_["name"], long_["organisation_id"]) == ("Phạm Văn Long", None)

    for n, at in ((16, vn(2025, 3, 1, 7, 45)), (17, vn(2025, 3, 2, 10, 15))):
        lead = await world.get("leads", f"/leads/{ident('lead', XID[n])}")
        assert lead["source"] == "odoo" and utc(lead["captured_at"]) == at

    before = len(await world.store.read_streams(""))
    (tmp_path / "again").mkdir()
    again, _ = await run_import(world, "odoo", SAMPLE, tmp_path / "again")
    assert (again.created, again.exists) == (0, 25)
    assert len(await world.store.read_streams("")) == before
