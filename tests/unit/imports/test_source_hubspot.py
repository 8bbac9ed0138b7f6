"""HubSpot's sample export (tests/fixtures/imports/hubspot: companies, contacts, deals) imported by the shipped
mapping through the services' real ``POST /imports/batches`` (in memory), checked against the oracle computed by
hand from the files; a second run appends nothing.

The oracle, from the files (row = the file's line, the header being line 1):
- companies 3101–3105 created; 3106 (no owner) and 3107 (date "2025-13-01") bad;
- contacts 5201–5204 created, named "<Last Name> <First Name>", each working for its primary company; 5205 bad
  (``@SUM(1+1)``: formula injection), 5206 bad (no last name), 5207 refused by the directory (phone "12");
- deals 7001–7007 created: won 7001 (VND 640,000,000) and 7005 (USD 12,500.00) at their Close Date; lost 7002
  ("Khách chọn nhà cung cấp khác") and 7007 (no reason: the mapping's default) at their Close Date; open 7003
  (Contract sent → negotiation, USD 38,000), 7004 (Qualified to buy → needs_discussed), 7006 (Appointment scheduled
  → contacted, VND 150,000,000 written "150,000,000"); 7008 bad (stage "Đang chờ"), 7009 bad (``=HYPERLINK(…)``),
  7010 bad (closed before it was created), 7011 refused by the deals service (won without an amount)."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.core.ids import import_id
from shared.imports import runner
from testkit.import_world import World, run_import

FILES = Path(__file__).parents[2] / "fixtures" / "imports" / "hubspot"
SAMPLE = [FILES / f for f in ("companies.csv", "contacts.csv", "deals.csv")]


def ident(kind: str, key: str) -> str:
    return str(import_id("hubspot", kind, key))


def vn(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    """A time of the sample as the mapping reads it (Asia/Ho_Chi_Minh), in UTC."""
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
    counts, report = await run_import(world, "hubspot", SAMPLE, tmp_path)
    problems = {(file, row): (column, reason) for file, row, column, reason in report}
    assert (counts.rows, counts.created, counts.refused, counts.bad) == (25, 16, 2, 7), (counts, report)
    assert problems[("companies.csv", 7)] == ("Company owner", "empty: a value is required")
    assert problems[("companies.csv", 8)][0] == "Create Date"
    assert "formula injection" in problems[("contacts.csv", 6)][1]
    assert problems[("contacts.csv", 7)][0] == "Last Name"
    assert (
        problems[("contacts.csv", 8)][0] == "Phone Number" and "not a phone number" in problems[("contacts.csv", 8)][1]
    )
    assert problems[("deals.csv", 9)][0] == "Deal Stage"
    assert problems[("deals.csv", 10)][0] == "Amount" and "formula injection" in problems[("deals.csv", 10)][1]
    assert problems[("deals.csv", 11)][0] == "Close Date"
    assert ("deals.csv", 12) in problems

    keys = [str(k) for k in range(7001, 7008)]
    deals = {k: await world.get("deals", f"/deals/{ident('deal', k)}") for k in keys}
    by_status = {s: {k for k, d in deals.items() if d["status"] == s} for s in ("won", "lost", "open")}
    assert by_status == {"won": {"7001", "7005"}, "lost": {"7002", "7007"}, "open": {"7003", "7004", "7006"}}
    assert [(Decimal(deals[k]["value"]["amount"]), deals[k]["value"]["currency"]) for k in ("7001", "7005")] == [
        (Decimal(640_000_000), "VND"),
        (Decimal(12_500), "USD"),
    ]
    assert {k: deals[k]["stage"]["stage_id"] for k in ("7003", "7004", "7006")} == {
        "7003": "negotiation",
        "7004": "needs_discussed",
        "7006": "contacted",
    }
    assert Decimal(deals["7006"]["value"]["amount"]) == Decimal(150_000_000)
    assert deals["7002"]["lost_reason"] == "Khách chọn nhà cung cấp khác"
    assert deals["7007"]["lost_reason"] == "no reason given in HubSpot"
    assert utc(deals["7001"]["opened_at"]) == vn(2025, 2, 4, 10)
    assert utc(deals["7001"]["closed_at"]) == vn(2025, 3, 12, 16)
    assert utc(deals["7002"]["closed_at"]) == vn(2025, 4, 2, 11)
    assert utc(deals["7006"]["entered_stage_at"]) == vn(2025, 3, 1, 9)
    assert deals["7001"]["organisation_id"] == ident("organisation", "3101")
    assert deals["7001"]["customer"] == "Công ty TNHH Điện máy Hưng Thịnh"

    hung = await world.get("directory", f"/people/{ident('person', '5201')}")
    assert hung["name"] == "Đỗ Văn Hùng" and hung["organisation_id"] == ident("organisation", "3101")
    company = await world.get("directory", f"/organisations/{ident('organisation', '3101')}")
    assert (company["industry"], company["owner_id"], company["team_id"]) == ("Bán lẻ điện máy", "u-lan", "north")

    before = len(await world.store.read_streams(""))
    (tmp_path / "again").mkdir()
    again, _ = await run_import(world, "hubspot", SAMPLE, tmp_path / "again")
    assert (again.created, again.exists) == (0, 16)
    assert len(await world.store.read_streams("")) == before


def as_xlsx(csv_path: Path, out: Path) -> Path:
    """The same export as HubSpot's XLSX: dates as date cells, amounts and ids as numbers, the rest as text."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(csv_path.stem)
    with csv_path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    sheet.append(header)
    for row in rows[1:]:
        cells: list[object] = []
        for name, text in zip(header, row, strict=True):
            if name in ("Create Date", "Close Date") and text and text[:4].isdigit() and text[5:7] <= "12":
                cells.append(datetime.strptime(text, "%Y-%m-%d %H:%M"))  # noqa: DTZ007 — as Excel keeps it: no zone
            elif name in ("Record ID", "Amount") and text.replace(".", "", 1).isdigit():
                cells.append(float(text) if "." in text else int(text))
            else:
                cells.append(text)
        sheet.append(cells)
    path = out / f"{csv_path.stem}.xlsx"
    book.save(path)
    return path


async def test_the_same_export_as_xlsx_lands_the_same(world: World, tmp_path: Path) -> None:
    books = [as_xlsx(f, tmp_path) for f in SAMPLE]
    counts, report = await run_import(world, "hubspot", books, tmp_path)
    assert (counts.rows, counts.created, counts.refused, counts.bad) == (25, 16, 2, 7), (counts, report)
    won = await world.get("deals", f"/deals/{ident('deal', '7005')}")
    assert (won["status"], Decimal(won["value"]["amount"]), won["value"]["currency"]) == ("won", Decimal(12_500), "USD")
    assert utc(won["closed_at"]) == vn(2025, 2, 28, 17)  # a date cell has no zone: read in the mapping's
