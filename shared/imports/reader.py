"""A file streamed one record at a time, in constant memory: CSV (encoding and delimiter sniffed) or XLSX (openpyxl
in read-only mode). Row numbers are the spreadsheet's: the header is row 1, the first record row 2.

Encodings, tried in this order on the first 64 KiB: a byte-order mark (UTF-8 → ``utf-8-sig``, UTF-16 → ``utf-16``),
else ``utf-8`` if it decodes, else ``cp1252`` (what Excel on Windows writes) if it decodes, else ``latin-1`` (which
decodes anything). A UTF-8 file broken further on is refused there with the byte it broke at (``FileError``).
Delimiters: the one of ``,`` ``;`` tab ``|`` most frequent in the header line (outside quotes).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shared.imports.mapping import fold

SAMPLE_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
MAX_COLUMNS = 500
MAX_FIELD_CHARS = 1_000_000  # the csv module's own limit: a cell over MAX_CELL_CHARS is refused by its row
XLSX_MAGIC = b"PK\x03\x04"


class FileError(ValueError):
    """The file cannot be read (not CSV/XLSX, undecodable, no header…); the message says why and where."""


@dataclass(frozen=True)
class Record:
    number: int  # the spreadsheet's row number
    cells: dict[str, Any]  # header (folded: shared.imports.mapping.fold) -> cell (None: the record is shorter)
    problem: str | None = None  # the record cannot be read as the header's columns


@dataclass
class Table:
    """An opened file: its header, how it was read, and its records (``records``: once, streamed)."""

    path: Path
    header: list[str]
    encoding: str | None  # None for XLSX
    delimiter: str | None
    _rows: Iterator[list[Any]]
    _close: Any = None
    _size: int | None = None  # bytes (CSV) or rows (XLSX) in all
    _position: Callable[[], int] | None = None  # bytes or rows read so far

    def records(self) -> Iterator[Record]:
        """Each non-empty record, the header's row being 1."""
        number = 1
        width = len(self.header)
        keys = [fold(h) for h in self.header]
        for cells in self._rows:
            number += 1
            if not any(c not in (None, "") for c in cells):
                continue
            if len(cells) > width and any(c not in (None, "") for c in cells[width:]):
                yield Record(number, {}, f"{len(cells)} cells where the header has {width} (a wrong delimiter?)")
                continue
            yield Record(number, {h: (cells[i] if i < len(cells) else None) for i, h in enumerate(keys) if h})

    def fraction(self) -> float | None:
        """How much of the file is read (0..1), when that can be told: a CSV's bytes, a sheet's rows."""
        if self._size is not None and self._position is not None:
            return min(1.0, self._position() / self._size) if self._size else 1.0
        return None

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def digest(path: Path) -> str:
    """The file's SHA-256 (a checkpoint is kept for one file's content only)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            h.update(block)
    return h.hexdigest()


def open_table(path: Path, sheet: str | None = None) -> Table:
    """The file opened: XLSX by its content (a zip), anything else as CSV."""
    try:
        with path.open("rb") as f:
            sample = f.read(SAMPLE_BYTES)
    except OSError as exc:
        raise FileError(f"{path}: cannot be read ({exc.strerror})") from None
    if sample.startswith(XLSX_MAGIC):
        return _xlsx(path, sheet)
    return _csv(path, sample)


def sniff_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ("utf-8", "cp1252"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        return encoding
    return "latin-1"


def sniff_delimiter(line: str) -> str:
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _lines(path: Path, text: io.TextIOWrapper, raw: IO[bytes]) -> Iterator[str]:
    """The text's lines; a decoding error is a ``FileError`` naming the byte it was read near."""
    while True:
        try:
            line = text.readline()
        except UnicodeDecodeError as exc:
            raise FileError(f"{path}: not {text.encoding} near byte {raw.tell()}: {exc.reason}") from None
        if not line:
            return
        yield line


def _csv(path: Path, sample: bytes) -> Table:
    if b"\x00" in sample and not sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileError(f"{path}: a binary file, neither CSV nor XLSX")
    encoding = sniff_encoding(sample)
    raw = path.open("rb")
    text = io.TextIOWrapper(raw, encoding=encoding, newline="")
    lines = _lines(path, text, raw)
    try:
        first = next(lines, "")
    except FileError:
        text.close()
        raise
    if not first.strip():
        text.close()
        raise FileError(f"{path}: empty, or no header on its first line")
    delimiter = sniff_delimiter(first)
    csv.field_size_limit(MAX_FIELD_CHARS)
    header = next(csv.reader([first], delimiter=delimiter))
    rows = csv.reader(lines, delimiter=delimiter)
    size = path.stat().st_size
    return Table(path, _header(path, header), encoding, delimiter, _guarded(path, rows), text.close, size, raw.tell)


def _guarded(path: Path, rows: Iterator[list[str]]) -> Iterator[list[Any]]:
    try:
        yield from rows
    except csv.Error as exc:
        raise FileError(f"{path}: malformed CSV near record {getattr(rows, 'line_num', '?')}: {exc}") from None


def _header(path: Path, cells: list[Any]) -> list[str]:
    header = [("" if c is None else str(c)).strip().lstrip("\ufeff") for c in cells]
    while header and not header[-1]:
        header.pop()
    if not header:
        raise FileError(f"{path}: no header on its first row")
    if len(header) > MAX_COLUMNS:
        raise FileError(f"{path}: {len(header)} columns (at most {MAX_COLUMNS})")
    folded = [fold(h) for h in header]
    seen = [h for h in header if h and folded.count(fold(h)) > 1]
    if seen:
        raise FileError(f"{path}: columns named twice: {', '.join(sorted(set(seen)))}")
    return header


def _xlsx(path: Path, sheet: str | None) -> Table:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileError(f"{path}: not a readable XLSX workbook ({exc})") from None
    if sheet is not None and sheet not in book.sheetnames:
        book.close()
        raise FileError(f"{path}: no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)})")
    ws = book[sheet] if sheet is not None else book.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    first = next(rows, None)
    if first is None:
        book.close()
        raise FileError(f"{path}: the sheet {ws.title!r} is empty")
    counted = [1]

    def records() -> Iterator[list[Any]]:
        for r in rows:
            counted[0] += 1
            yield list(r)

    total = ws.max_row if isinstance(ws.max_row, int) and ws.max_row > 0 else None
    return Table(path, _header(path, list(first)), None, None, records(), book.close, total, lambda: counted[0])
