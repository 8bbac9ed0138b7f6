"""Pipedrive's sample export (tests/fixtures/imports/pipedrive: organisations, people, deals, activities) imported
by the shipped mapping through the services' real ``POST /imports/batches`` (in memory), checked against the oracle
computed by hand from the files; a second run appends nothing; a dry run writes nothing.

The oracle, from the files (row = the file's line, the header being line 1):
- organisations 1–8 created; 9 (no name), 10 (owner "Phạm Quốc Huy" not in [owners]), 11 (``=cmd|…`` formula) and
  12 (date "31/02/2025") bad, never sent;
- people 101–108 created, 101–107 working for their organisation, 108 for none (their deal 1009 opens for her name,
  unlinked: our deals link people through an organisation); 109 refused by the directory (an
  email that is no email), 110 refused (its organisation, 10, was a bad row);
- deals 1001–1009 created: won 1001, 1002, 1009 (VND 250,000,000 + 480,000,000 + 12,000,000 = 742,000,000) and 1005
  (USD 15,000.00); lost 1003 ("Giá cao hơn đối thủ") and 1008 (no reason: the mapping's default); open 1004
  (Contact Made → contacted), 1006 (Negotiations Started → negotiation, USD 22,500.00), 1007 (Qualified →
  target_identified, no move); 1010 bad (value "abc"), 1011 bad (won before its last stage change), 1012 refused by
  the deals service (won with value 0), 1013 bad (stage "Chờ duyệt" not in the mapping);
- activities 5001–5006 created on their deals, 5001/5002/5003/5006 done; 5007 refused (its deal, 1010, was a bad
  row), 5008 bad (type "Fax")."""

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

FILES = Path(__file__).parents[2] / "fixtures" / "imports" / "pipedrive"
SAMPLE = [FILES / f for f in ("activities.csv", "deals.csv", "persons.csv", "organizations.csv")]  # any order
WON = {"1001", "1002", "1005", "1009"}
LOST = {"1003", "1008"}
OPEN = {"1004", "1006", "1007"}


def ids(kind: str, *keys: str) -> list[str]:
    return [str(import_id("pipedrive", kind, k)) for k in keys]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def vn(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    """A time of the sample as the mapping reads it (Asia/Ho_Chi_Minh), in UTC."""
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).astimezone(UTC)


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    monkeypatch.setattr(runner, "REFERENCE_RETRY_SECONDS", 0.0)  # the replica is synced after each batch here
    w = await World().start()
    yield w
    await w.close()


async def test_the_sample_lands_as_the_oracle_says_and_a_second_run_appends_nothing(
    world: World, tmp_path: Path
) -> None:
    counts, report = await run_import(world, "pipedrive", SAMPLE, tmp_path)
    problems = {(file, row): (column, reason) for file, row, column, reason in report}
    assert (counts.rows, counts.created, counts.exists) == (43, 31, 0), (counts, report)
    assert (counts.bad, counts.refused) == (8, 4), report

    # bad rows: never sent, each named with its column and reason
    assert problems[("organizations.csv", 10)] == ("Organization - Name", "empty: a value is required")
    assert problems[("organizations.csv", 11)][0] == "Organization - Owner"
    assert "formula injection" in problems[("organizations.csv", 12)][1]
    assert problems[("organizations.csv", 13)][0] == "Organization - Organization created"
    assert problems[("deals.csv", 11)][0] == "Deal - Value"
    assert problems[("deals.csv", 12)][0] == "Deal - Won time"
    assert problems[("deals.csv", 14)][0] == "Deal - Stage"
    assert problems[("activities.csv", 9)][0] == "Activity - Type"
    # refused by the services, the row named with the file's column where it came from
    assert {k for k in problems if k[1] in (10, 11) and k[0] == "persons.csv"} == {
        ("persons.csv", 10),
        ("persons.csv", 11),
    }
    assert problems[("deals.csv", 13)][0] == "Deal - Won time" and "value above zero" in problems[("deals.csv", 13)][1]
    assert ("activities.csv", 8) in problems

    deals = {
        key: await world.get("deals", f"/deals/{i}")
        for key, i in zip(map(str, range(1001, 1010)), ids("deal", *map(str, range(1001, 1010))), strict=True)
    }
    assert {k for k, d in deals.items() if d["status"] == "won"} == WON
    assert {k for k, d in deals.items() if d["status"] == "lost"} == LOST
    assert {k for k, d in deals.items() if d["status"] == "open"} == OPEN
    won_total: dict[str, Decimal] = {}
    for k in WON:
        value = deals[k]["value"]
        won_total[value["currency"]] = won_total.get(value["currency"], Decimal(0)) + Decimal(value["amount"])
    assert won_total == {"VND": Decimal(742_000_000), "USD": Decimal("15000.00")}
    assert {k: deals[k]["stage"]["stage_id"] for k in OPEN} == {
        "1004": "contacted",
        "1006": "negotiation",
        "1007": "target_identified",
    }
    assert Decimal(deals["1006"]["value"]["amount"]) == Decimal(22500) and deals["1006"]["value"]["currency"] == "USD"
    assert deals["1003"]["lost_reason"] == "Giá cao hơn đối thủ"
    assert deals["1008"]["lost_reason"] == "no reason given in Pipedrive"
    # the business times are the file's: opened at "Deal created", in its stage since "Last stage change", closed at
    # "Won time" / "Lost time" (Asia/Ho_Chi_Minh)
    assert utc(deals["1001"]["opened_at"]) == vn(2025, 1, 7, 9)
    assert utc(deals["1001"]["closed_at"]) == vn(2025, 2, 20, 15, 30)
    assert utc(deals["1003"]["closed_at"]) == vn(2025, 3, 3, 17)
    assert utc(deals["1004"]["entered_stage_at"]) == vn(2025, 1, 18, 9)
    assert utc(deals["1007"]["entered_stage_at"]) == vn(2025, 2, 20, 8)
    # linked to the organisations and people imported from the other files (ids derived, never sent)
    assert deals["1001"]["organisation_id"] == ids("organisation", "1")[0]
    assert deals["1001"]["person_ids"] == ids("person", "101")
    assert deals["1007"]["organisation_id"] == ids("organisation", "7")[0] and deals["1007"]["person_ids"] == []
    # a deal naming a person and no organisation: opened for the person's name, the person not linked (our deals
    # link people through their organisation)
    assert deals["1009"]["customer"] == "Lý Thanh Mai" and deals["1009"]["organisation_id"] is None
    assert deals["1009"]["person_ids"] == []
    assert deals["1002"]["lines"][0]["product"] == "Nội thất văn phòng tầng 5"

    an = await world.get("directory", f"/people/{ids('person', '101')[0]}")
    assert an["organisation_id"] == ids("organisation", "1")[0]
    org = await world.get("directory", f"/organisations/{ids('organisation', '5')[0]}")
    assert org["name"] == "Công ty CP Dược phẩm Mekong Care" and org["owner_id"] == "u-tuan"

    activities = {
        k: await world.get("agenda", f"/activities/{ids('activity', k)[0]}") for k in ("5001", "5004", "5006")
    }
    assert activities["5001"]["subject_id"] == ids("deal", "1001")[0]
    assert activities["5001"]["status"] == "done" and utc(activities["5001"]["completed_at"]) == vn(2025, 1, 8, 10, 35)
    assert activities["5004"]["subject_id"] == ids("deal", "1004")[0] and activities["5004"]["status"] != "done"
    assert utc(activities["5006"]["due_at"]) == vn(2025, 1, 20, 9)  # no due time: the mapping's 09:00

    before = len(await world.store.read_streams(""))
    (tmp_path / "again").mkdir()
    again, _ = await run_import(world, "pipedrive", SAMPLE, tmp_path / "again")
    assert (again.created, again.exists) == (0, 31)
    assert len(await world.store.read_streams("")) == before


async def test_a_dry_run_writes_nothing_and_reports_every_bad_row(world: World, tmp_path: Path) -> None:
    before = len(await world.store.read_streams(""))
    counts, report = await run_import(world, "pipedrive", SAMPLE, tmp_path, dry_run=True)
    assert counts.bad == 8
    assert {(f, r) for f, r, _, _ in report} >= {("organizations.csv", 12), ("deals.csv", 14), ("activities.csv", 9)}
    assert len(await world.store.read_streams("")) == before
