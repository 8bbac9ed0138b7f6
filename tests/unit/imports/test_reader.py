"""Malformed and awkward files give a clear report, never a traceback (issue 26): encodings and delimiters sniffed,
a file missing required columns refused up front with the list, bad dates, numbers, enums and owners reported by
row and column, formula injection refused and never sent, over-long cells, a record wider than its header, a broken
encoding further on, a binary file; XLSX read in read-only mode (native dates, formula cells refused)."""

from __future__ import annotations

import codecs
import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from shared.imports.cells import Context, is_formula
from shared.imports.mapping import MappingError, parse
from shared.imports.reader import FileError, open_table
from shared.imports.rows import build, render
from shared.imports.runner import Options, Run, RunError, check_files

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
MAPPING = parse(
    {
        "title": "test",
        "sources": ["none found: a test mapping"],
        "owners": {"Lan": {"user": "u-lan", "team": "north"}},
        "defaults": {"datetime": {"formats": ["%d/%m/%Y %H:%M", "%d/%m/%Y"]}},
        "files": {
            "deals": {
                "columns": {
                    "ID": {"field": "id", "required": True},
                    "Name": {"field": "name", "required": True, "max": 20},
                    "Created": {"field": "created", "type": "datetime", "required": True},
                    "Amount": {"field": "amount", "type": "money", "default_currency": "VND"},
                    "Status": {"field": "status", "type": "enum", "map": {"Open": "open", "Won": "won"}},
                    "Owner": {"field": "owner", "type": "owner"},
                },
                "rows": [
                    {
                        "kind": "deal",
                        "key": "{id}",
                        "facts": [{"command": "open_deal", "at": "created", "body": {"title": "{name}"}}],
                    }
                ],
            }
        },
    }
)
CTX = Context("Asia/Ho_Chi_Minh", MAPPING.owners)


class Recorder:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    async def send(self, service: str, batch: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        self.rows += batch["rows"]
        return {"results": [{"row": r["row"], "status": "created", "id": "x"} for r in batch["rows"]]}


async def run(tmp_path: Path, path: Path) -> tuple[Recorder, list[list[str]]]:
    sender = Recorder()
    await Run(MAPPING, sender, Options("t", report=tmp_path / "r.csv", now=lambda: NOW)).run([path])
    with (tmp_path / "r.csv").open(encoding="utf-8") as f:
        return sender, list(csv.reader(f))[1:]


@pytest.mark.parametrize(
    ("encoding", "delimiter", "bom"),
    [("utf-8", ",", b""), ("utf-8-sig", ";", b""), ("cp1252", "\t", b""), ("utf-16", "\t", b""), ("latin-1", "|", b"")],
)
def test_encodings_and_delimiters_are_sniffed(tmp_path: Path, encoding: str, delimiter: str, bom: bytes) -> None:
    name = "Café Noël" if encoding != "latin-1" else "Café \x81"  # \x81: undefined in cp1252, so latin-1
    text = delimiter.join(["ID", "Name", "Created"]) + "\r\n" + delimiter.join(["1", f'"{name}"', "01/03/2025"])
    path = tmp_path / "f.csv"
    path.write_bytes(bom + text.encode(encoding))
    with open_table(path) as table:
        records = list(table.records())
        expected = {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "cp1252": "cp1252"}.get(encoding, encoding)
        assert (table.encoding, table.delimiter, table.header) == (expected, delimiter, ["ID", "Name", "Created"])
    assert [(r.number, r.cells["name"]) for r in records] == [(2, name)]  # keyed by the folded header


def test_a_file_missing_required_columns_is_refused_up_front_with_the_list(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("ID,Name,Amount\n1,a,2\n")
    unknown = tmp_path / "other.csv"
    unknown.write_text("Foo,Bar\n1,2\n")
    with pytest.raises(RunError) as refused:
        check_files(MAPPING, [path, unknown])
    assert "f.csv (deals): missing required columns: Created" in str(refused.value)
    assert "other.csv: no file of test has this header" in str(refused.value)


async def test_bad_cells_are_reported_by_row_column_and_reason_and_never_sent(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text(
        "ID,Name,Created,Amount,Status,Owner\n"
        '1,Good,01/03/2025 09:00,"1,500",Open,Lan\n'
        "2,Bad date,2025-13-45,,Open,Lan\n"
        "3,Bad number,01/03/2025,12abc,Open,Lan\n"
        "4,Bad enum,01/03/2025,,Pending,Lan\n"
        "5,=cmd|' /C calc'!A0,01/03/2025,,Open,Lan\n"
        "6,@SUM(A1:A2),01/03/2025,-2+3,Open,Lan\n"
        "7,A name far longer than twenty,01/03/2025,,Open,Lan\n"
        "8,Unknown owner,01/03/2025,,Open,Bob\n"
        "9,,01/03/2025,,Open,Lan\n"
        "10,Future,01/03/2099,,Open,Lan\n"
        "11,Too wide,01/03/2025,,Open,Lan,extra\n"
    )
    sender, bad = await run(tmp_path, path)
    assert [r["key"] for r in sender.rows] == ["1"]
    assert sender.rows[0]["facts"][0]["occurred_at"] == "2025-03-01T09:00:00+07:00"
    by_row = {int(r): (c, reason) for _, r, c, reason in bad}
    assert by_row[3] == ("Created", "not a date/time in the format %d/%m/%Y %H:%M, %d/%m/%Y: '2025-13-45'")
    assert by_row[4][0] == "Amount" and "not a number" in by_row[4][1]
    assert by_row[5][0] == "Status" and "unknown value 'Pending'" in by_row[5][1]
    assert by_row[6][0] == "Name" and "formula injection" in by_row[6][1]
    assert {c for _, r, c, _ in bad if r == "7"} == {"Name", "Amount"}  # @SUM and -2+3: both formulas
    assert by_row[8] == ("Name", "longer than 20 characters")
    assert by_row[9][0] == "Owner" and "unknown owner 'Bob'" in by_row[9][1]
    assert by_row[10] == ("Name", "empty: a value is required")
    assert by_row[11][0] == "Created" and "in the future" in by_row[11][1]
    assert by_row[12] == ("", "7 cells where the header has 6 (a wrong delimiter?)")
    assert "cmd" not in str(sender.rows) and "SUM" not in str(sender.rows)


def test_a_wrong_delimiter_reads_as_one_column_and_is_refused_with_the_missing_list(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("ID:Name:Created\n1:a:01/03/2025\n")  # a delimiter none of , ; tab | : one column
    with pytest.raises(RunError, match=r"no file of test has this header"):
        check_files(MAPPING, [path])


def test_broken_encoding_binary_and_empty_files_are_clear_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"ID,Name,Created\n" + b"1,ok,01/03/2025\n" * 5000 + b"2,\xff\xfe bad,01/03/2025\n")
    with open_table(broken) as table, pytest.raises(FileError, match=r"not utf-8 near byte \d+"):
        list(table.records())
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x00\x01\x02garbage")
    with pytest.raises(FileError, match="a binary file"):
        open_table(binary)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(FileError, match="empty"):
        open_table(empty)
    twice = tmp_path / "twice.csv"
    twice.write_text("ID,ID\n1,2\n")
    with pytest.raises(FileError, match="columns named twice: ID"):
        open_table(twice)


def test_xlsx_is_streamed_with_native_dates_and_formula_cells_refused(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["ID", "Name", "Created", "Amount"])
    sheet.append([1, "Tủ lạnh", datetime(2025, 3, 1, 9, 0), 1500000])  # noqa: DTZ001 — a sheet's times are naive
    sheet.append([2, "=1+1", datetime(2025, 3, 2), 2.5])  # noqa: DTZ001
    sheet.append([3, "Quạt", "02/03/2025 10:30", "=A3*2"])
    path = tmp_path / "deals.xlsx"
    book.save(path)
    with open_table(path) as table:
        assert (table.encoding, table.header) == (None, ["ID", "Name", "Created", "Amount"])
        records = list(table.records())
    spec = MAPPING.files[0]
    made, bad = build(spec, records[0].number, records[0].cells, CTX, NOW)
    assert bad == [] and made[0].row["key"] == "1"
    assert made[0].row["facts"][0]["occurred_at"] == "2025-03-01T09:00:00+07:00"
    _, bad2 = build(spec, records[1].number, records[1].cells, CTX, NOW)
    _, bad3 = build(spec, records[2].number, records[2].cells, CTX, NOW)
    assert [(b.row, b.column) for b in bad2 + bad3] == [(3, "Name"), (4, "Amount")]


@pytest.mark.parametrize(
    ("text", "formula"),
    [
        ("=cmd|' /C calc'!A0", True),
        ("+1+cmd|x", True),
        ("-2+3", True),
        ("@SUM(A1)", True),
        (" =1", True),
        ("\t=1", True),
        ("- called back", True),
        ("-5", False),
        ("+84 90 123 45 67", False),
        ("-1.234,50", False),
        ("-", False),
        ("a=b", False),
        ("email@example.com", False),
    ],
)
def test_formula_injection(text: str, formula: bool) -> None:
    assert is_formula(text) is formula


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"files": {}}, "`sources` must list"),
        ({"sources": ["x"], "files": {}}, "nothing to import"),
        ({"sources": ["x"], "timezone": "Mars/Base", "files": {}}, "unknown time zone"),
        ({"sources": ["x"], "files": {"a": {"columns": {"A": {"field": "a", "type": "blob"}}}}}, "type 'blob'"),
        (
            {"sources": ["x"], "files": {"a": {"match": ["A"], "columns": {"A": "a"}, "rows": [{"kind": "ship"}]}}},
            "kind 'ship'",
        ),
    ],
)
def test_a_malformed_mapping_names_its_place(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse(raw)


def test_bom_utf16_is_detected() -> None:
    from shared.imports.reader import sniff_encoding

    assert sniff_encoding(codecs.BOM_UTF16_LE + "a".encode("utf-16-le")) == "utf-16"


def test_headers_match_whatever_their_case_and_blanks(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("id ,NAME,  created\n1,Quạt,01/03/2025\n")
    (plan,) = check_files(MAPPING, [path])
    assert plan.describe() == "f.csv: deals, read as CSV, utf-8, delimiter ','"
    with open_table(path) as table:
        (record,) = list(table.records())
    made, bad = build(plan.spec, record.number, record.cells, CTX, NOW)
    assert bad == [] and made[0].row["facts"][0]["body"] == {"title": "Quạt"}


def test_templates_leave_out_what_is_empty_and_a_reference_to_no_row() -> None:
    values = {"a": None, "b": "x", "m": {"amount": "1", "currency": "VND"}, "org": None}
    template = {
        "whole": "{m}",
        "gone": "{a}",
        "first": "{a|b}",
        "text": "n {b} {{x}}",
        "broken": "n {a}",
        "sub": "{m.currency}",
        "ref": {"$import": {"kind": "organisation", "key": "{org}"}},
        "list": ["{a}", "{b}"],
        "literal": 3,
    }
    assert render(template, values) == {
        "whole": {"amount": "1", "currency": "VND"},
        "first": "x",
        "text": "n x {x}",
        "sub": "VND",
        "list": ["x"],
        "literal": 3,
    }


def test_the_common_formats_read_as_strptime_reads_them() -> None:
    """The zero-padded shapes of the common formats are read by ``fromisoformat`` (decision 0021, "As built:
    speed"): the same moment as ``strptime``'s, or a bad cell for the same impossible times; other text (single
    digits, other digits) still goes to ``strptime``."""
    from itertools import product

    from shared.imports.cells import CellError, _parse_time

    def both(text: str, fmt: str) -> tuple[Any, Any]:
        try:
            expected: Any = datetime.strptime(text, fmt)  # noqa: DTZ007 — compared naive, as read
        except ValueError:
            expected = "bad"
        try:
            got: Any = _parse_time({"formats": [fmt]}, text)
        except CellError:
            got = "bad"
        return expected, got

    for y, mo, d, h, mi, s in product(
        ["0000", "1900", "2024", "2025"], ["00", "02", "12", "13"], ["00", "29", "30", "31", "32"],
        ["00", "23", "24"], ["00", "59", "60"], ["00", "59", "60", "61"],
    ):  # fmt: skip
        full = f"{y}-{mo}-{d} {h}:{mi}:{s}"
        for text, fmt in ((full, "%Y-%m-%d %H:%M:%S"), (full[:16], "%Y-%m-%d %H:%M"), (full[:10], "%Y-%m-%d")):
            expected, got = both(text, fmt)
            assert got == expected, (text, fmt)
    wanted = datetime(2025, 1, 6, 9, 7, tzinfo=UTC).replace(tzinfo=None)
    for text in ("2025-1-6 9:07", "２０２５-01-06 09:07", " 2025-01-06 09:07 "):  # the cell is trimmed first
        assert _parse_time({"formats": ["%Y-%m-%d %H:%M"]}, text) == wanted
