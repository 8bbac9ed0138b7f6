"""An import run: files checked up front, then streamed record by record into batches per service, sent in the
services' dependency order, answered row by row; bad and refused rows written to the report; a checkpoint after
each flush so that a run killed (even with -9) and started again resumes after the last row all of whose batches
were answered (what it resends answers ``exists``: nothing is written twice).

``Sender`` is how batches reach the services: ``HttpSender`` (the tool, the directory's job) or anything with its
``send`` (tests: the services' apps in memory).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import httpx

from shared.imports.cells import Context
from shared.imports.mapping import SERVICE_ORDER, FileSpec, Mapping, fold
from shared.imports.reader import FileError, Record, Table, digest, open_table
from shared.imports.rows import Bad, Built, build, column_of

MAX_BATCH_ROWS = 500
MAX_BATCH_BYTES = 512 * 1024  # well under a service's body limit (1 MiB by default)
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_ATTEMPTS = 8
MAX_AFTER = 8  # X-Directory-After names at most this many directory answers
REFERENCE_RETRY_SECONDS = 1.0  # then 2, 4, 8: a row refused on an `$import` field while the replicas catch up
REFERENCE_ATTEMPTS = 5
YIELD_EVERY = 100  # records read between two turns of the event loop (for the batch in flight)


class RunError(RuntimeError):
    """The run cannot go on (a file refused up front, a service refusing a whole batch); the message says why."""


class Sender(Protocol):
    async def send(self, service: str, batch: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """POST the batch to the service's ``/imports/batches``; its answer's JSON (raises ``RunError`` for
        an answer other than 200 that retrying will not change)."""
        ...


@dataclass
class HttpSender:
    """Batches over HTTP with a bearer token; 502/503/504 and connection errors retried with backoff."""

    urls: dict[str, str]  # service -> base URL
    token: str
    timeout: float = 120.0
    backoff: float = 0.5
    client: httpx.AsyncClient | None = None

    async def send(self, service: str, batch: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=self.timeout)
        url = f"{self.urls[service]}/imports/batches"
        auth = {"Authorization": f"Bearer {self.token}", **headers}
        for attempt in range(1, MAX_ATTEMPTS + 1):
            wait = min(self.backoff * 2 ** (attempt - 1), 10.0)
            try:
                answer = await self.client.post(url, json=batch, headers=auth)
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise RunError(f"{service}: {url} unreachable ({exc.__class__.__name__})") from None
            else:
                if answer.status_code == 200:
                    result: dict[str, Any] = answer.json()
                    return result
                if answer.status_code not in RETRY_STATUSES or attempt == MAX_ATTEMPTS:
                    raise RunError(f"{service} answered {answer.status_code}: {answer.text[:500]}")
                after = answer.headers.get("retry-after", "")  # a busy API's (decision 0032): at least that long
                wait = max(wait, min(int(after), 10)) if after.isdigit() else wait
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


@dataclass
class Counts:
    rows: int = 0  # records read (this run)
    created: int = 0
    exists: int = 0
    refused: int = 0
    bad: int = 0
    skipped: int = 0  # records before the checkpoint, not sent again


@dataclass
class Options:
    source: str
    dry_run: bool = False
    report: Path | None = None
    checkpoint: Path | None = None  # None: no checkpoint (a dry run never keeps one)
    default_owner: dict[str, str | None] | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # chunks of batches sent at once (completed in order: the checkpoint never passes an unanswered row); each
    # service answers a batch's rows concurrently too, with one read and one write for all of them
    in_flight: int = 4


Progress = Callable[[Counts, float | None], None]  # counts so far, fraction of the current file done (None: unknown)


@dataclass
class Checkpoint:
    path: Path | None
    files: dict[str, int] = field(default_factory=dict)  # sha256 -> last row answered (-1: done)

    @classmethod
    def load(cls, path: Path | None) -> Checkpoint:
        if path is None or not path.exists():
            return cls(path)
        try:
            return cls(path, {str(k): int(v) for k, v in json.loads(path.read_text())["files"].items()})
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RunError(f"{path}: not a checkpoint of this tool: remove it to start over") from None

    def save(self, sha: str, row: int) -> None:
        self.files[sha] = row
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as f:
            json.dump({"files": self.files, "at": datetime.now(UTC).isoformat()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class Report:
    """The report: one line per bad or refused row's problem (file, row, column, reason). Written from the first
    problem on (no problem, no file: a report left by an earlier run is removed, unless this run resumes it)."""

    def __init__(self, path: Path | None, append: bool) -> None:
        self.path = path
        self.append = append
        self.lines: list[tuple[str, int, str, str]] = []  # kept (bounded) for the job's read and the CLI's summary
        self._file: IO[str] | None = None
        if path is not None and not append:
            path.unlink(missing_ok=True)

    def add(self, file: str, row: int, column: str, reason: str) -> None:
        if len(self.lines) < 1000:
            self.lines.append((file, row, column, reason))
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            self._file = self.path.open("a", newline="", encoding="utf-8")
            self._csv = csv.writer(self._file)
            if fresh:
                self._csv.writerow(["file", "row", "column", "reason"])
        self._csv.writerow([file, row, column, reason])

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@dataclass
class Plan:
    """A file checked up front: opened, its spec found, its required columns present."""

    path: Path
    spec: FileSpec
    sha: str
    read_as: str = ""  # how it was read: "CSV, cp1252, ';'" or "XLSX"

    def describe(self) -> str:
        return f"{self.path.name}: {self.spec.name}, read as {self.read_as}"


def check_files(mapping: Mapping, paths: Sequence[Path]) -> list[Plan]:
    """Each file matched to its spec with every required column present, in dependency order; else
    ``RunError`` listing every problem (nothing is sent)."""
    plans, problems = [], []
    for path in paths:
        try:
            spec, header, how = _match(mapping, path)
        except FileError as exc:
            problems.append(str(exc))
            continue
        if spec is None:
            spec = _nearest(mapping, header)
        if spec is None:
            known = "; ".join(f"{f.name}: {', '.join(f.match)}" for f in mapping.files)
            problems.append(
                f"{path}: no file of {mapping.title} has this header (known files and their columns: {known})"
            )
            continue
        present = {fold(h) for h in header}
        missing = [c for c in dict.fromkeys([*spec.match, *spec.required()]) if fold(c) not in present]
        if missing:
            problems.append(f"{path} ({spec.name}): missing required columns: {', '.join(missing)}")
            continue
        plans.append(Plan(path, spec, digest(path), how))
    if problems:
        raise RunError("\n".join(problems))
    return sorted(plans, key=lambda p: p.spec.rank())


def read_as(table: Table) -> str:
    """How a file was read, as the tool says it: its kind, and a CSV's sniffed encoding and delimiter."""
    if table.encoding is None:
        return "XLSX"
    return f"CSV, {table.encoding}, delimiter {'tab' if table.delimiter == chr(9) else repr(table.delimiter)}"


def _match(mapping: Mapping, path: Path) -> tuple[FileSpec | None, list[str], str]:
    """The spec this file's header matches (an XLSX: its first sheet's, else the sheet a spec names), the header,
    how it was read."""
    with open_table(path) as table:
        header, workbook, how = table.header, table.encoding is None, read_as(table)
    spec = mapping.spec_for(header)
    if spec is None and workbook:
        for candidate in (f for f in mapping.files if f.sheet):
            try:
                with open_table(path, candidate.sheet) as table:
                    if {fold(m) for m in candidate.match} <= {fold(h) for h in table.header}:
                        return candidate, table.header, f"XLSX, sheet {candidate.sheet!r}"
            except FileError:
                continue
    return spec, header, how


def _nearest(mapping: Mapping, header: list[str]) -> FileSpec | None:
    """The spec most of whose identifying and required columns this header has (at least half): the file it was
    meant to be, its missing columns to be listed."""
    present = {fold(h) for h in header}

    def share(spec: FileSpec) -> float:
        wanted = {fold(c) for c in (*spec.match, *spec.required())}
        return len(wanted & present) / len(wanted)

    best = max(mapping.files, key=share)
    return best if share(best) >= 0.5 else None


class Run:
    """One import of a source's files (``run``), counting as it goes."""

    def __init__(
        self,
        mapping: Mapping,
        sender: Sender,
        options: Options,
        progress: Progress | None = None,
        on_flush: Callable[[Counts, int], Awaitable[None]] | None = None,
    ) -> None:
        self.mapping = mapping
        self.sender = sender
        self.options = options
        self.progress = progress
        self.on_flush = on_flush  # after each checkpoint: the counts so far and the last row answered
        self.counts = Counts()
        self.checkpoint = Checkpoint.load(None if options.dry_run else options.checkpoint)
        self.report = Report(options.report, append=bool(self.checkpoint.files))
        self.ctx = Context(mapping.timezone, mapping.owners, options.default_owner)
        self.plans: list[Plan] = []  # the files, checked and in the order they run
        self.directory_created: list[str] = []  # "<stream id>@<version>" of the directory's rows created in this run

    async def run(self, paths: Sequence[Path]) -> Counts:
        try:
            self.plans = check_files(self.mapping, paths)
            for plan in self.plans:
                await self._file(plan)
        finally:
            self.report.close()
        return self.counts

    async def _file(self, plan: Plan) -> None:
        """The file's records built into chunks of batches, up to ``Options.in_flight`` chunks sent at once while
        the next is read; each chunk completes in order (its counts added, the checkpoint moved past it), so a
        checkpoint never passes a row whose batch is unanswered."""
        done = self.checkpoint.files.get(plan.sha, 0)
        if done == -1:
            return
        sending: deque[tuple[int, asyncio.Task[Counts]]] = deque()
        try:
            with open_table(plan.path, plan.spec.sheet) as table:
                chunk = Chunk(last=done)
                for record in table.records():
                    if record.number <= done:
                        self.counts.skipped += 1
                        continue
                    chunk.add(record, self._build(plan, record, chunk))
                    if chunk.records % YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # the chunks in flight get their turn
                    if chunk.full():
                        while len(sending) >= max(1, self.options.in_flight):
                            await self._complete(plan, *sending.popleft(), table)
                        sending.append((chunk.last, asyncio.create_task(self._flush(plan, chunk))))
                        chunk = Chunk(last=chunk.last)
                while sending:
                    await self._complete(plan, *sending.popleft(), table)
                await self._complete(plan, chunk.last, asyncio.create_task(self._flush(plan, chunk)), table)
        finally:
            for _, task in sending:
                task.cancel()
        if not self.options.dry_run:
            self.checkpoint.save(plan.sha, -1)

    def _build(self, plan: Plan, record: Record, chunk: Chunk) -> int:
        """The record's rows added to the chunk's batches (or its problems to its bad rows); the bytes added."""
        if record.problem is not None:
            chunk.bad.append(Bad(record.number, "", record.problem))
            return 0
        made, wrong = build(plan.spec, record.number, record.cells, self.ctx, self.options.now())
        chunk.bad.extend(wrong)
        size = 0
        for built in made:
            chunk.pending.setdefault(built.spec.service, []).append(built)
            size += len(json.dumps(built.row, ensure_ascii=False, default=str))
        return size

    async def _flush(self, plan: Plan, chunk: Chunk) -> Counts:
        """The chunk's bad rows reported and its batches sent, service by service in dependency order; its counts."""
        counts = Counts(rows=chunk.records, bad=len({b.row for b in chunk.bad}))
        for b in chunk.bad:
            self.report.add(plan.path.name, b.row, b.column, b.reason)
        for service in SERVICE_ORDER:
            if chunk.pending.get(service):
                await self._send(plan, service, chunk.pending[service], counts)
        return counts

    async def _complete(self, plan: Plan, last: int, task: asyncio.Task[Counts], table: Table) -> None:
        """A chunk answered (the oldest): its counts added, the checkpoint past its last row."""
        counts = await task
        for name in ("rows", "created", "exists", "refused", "bad"):
            setattr(self.counts, name, getattr(self.counts, name) + getattr(counts, name))
        self.report.flush()
        if not self.options.dry_run:
            self.checkpoint.save(plan.sha, last)
        if self.on_flush is not None:
            await self.on_flush(self.counts, last)
        if self.progress is not None:
            self.progress(self.counts, table.fraction())

    async def _send(self, plan: Plan, service: str, rows: list[Built], counts: Counts, attempt: int = 1) -> None:
        headers = {}
        if service != "directory" and self.directory_created:
            headers["X-Directory-After"] = ", ".join(self.directory_created[-MAX_AFTER:])
        batch = {"source": self.options.source, "dry_run": self.options.dry_run, "rows": [b.row for b in rows]}
        answer = await self.sender.send(service, batch, headers)
        results = answer.get("results", [])
        if len(results) != len(rows):
            raise RunError(f"{service} answered {len(results)} results for {len(rows)} rows")
        again = []
        for built, result in zip(rows, results, strict=True):
            status = result.get("status")
            late = attempt < REFERENCE_ATTEMPTS and self.directory_created and not self.options.dry_run
            if status == "refused" and late and _names_reference(built, result):
                again.append(built)
                continue
            self._count(plan, service, built, result, counts)
        if again:  # the service's replica of the directory may not have the rows just created yet: again, later
            await asyncio.sleep(REFERENCE_RETRY_SECONDS * 2 ** (attempt - 1))
            await self._send(plan, service, again, counts, attempt + 1)

    def _count(self, plan: Plan, service: str, built: Built, result: dict[str, Any], counts: Counts) -> None:
        status = result.get("status")
        if status == "created":
            counts.created += 1
            if service == "directory" and result.get("stream_id") and result.get("version"):
                self.directory_created.append(f"{result['stream_id']}@{result['version']}")
                del self.directory_created[:-MAX_AFTER]
        elif status == "exists":
            counts.exists += 1
        else:
            counts.refused += 1
            for error in result.get("errors") or [{"field": "", "reason": "refused"}]:
                where = str(error.get("field", ""))
                column = column_of(built, where, plan.spec.columns)
                reason = str(error.get("reason", ""))
                self.report.add(
                    plan.path.name, built.row["row"], column, reason if column == where else f"{where}: {reason}"
                )


@dataclass
class Chunk:
    """Records read since the last flush: their rows per service, their bad cells, the last row's number."""

    last: int
    records: int = 0
    size: int = 0  # bytes of JSON of the rows
    pending: dict[str, list[Built]] = field(default_factory=dict)
    bad: list[Bad] = field(default_factory=list)

    def add(self, record: Record, size: int) -> None:
        self.records += 1
        self.last = record.number
        self.size += size

    def full(self) -> bool:
        """A batch's worth of rows or bytes for a service, or of bad records (reported and checkpointed too: a file
        of bad rows is read in constant memory as well)."""
        return (
            self.size >= MAX_BATCH_BYTES
            or len(self.bad) >= MAX_BATCH_ROWS
            or any(len(v) >= MAX_BATCH_ROWS for v in self.pending.values())
        )


def _names_reference(built: Built, result: dict[str, Any]) -> bool:
    """Whether a refusal names a body field the tool filled with a ``$import`` reference."""
    for error in result.get("errors") or []:
        parts = str(error.get("field", "")).replace("]", "").replace("[", ".").split(".")
        if len(parts) < 4 or parts[0] != "facts" or parts[2] != "body" or not parts[1].isdigit():
            continue
        facts = built.row["facts"]
        value: Any = facts[int(parts[1])]["body"] if int(parts[1]) < len(facts) else None
        for part in parts[3:]:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, dict) and "$import" in value:
            return True
    return False


def summary(counts: Counts) -> dict[str, int]:
    return asdict(counts)
