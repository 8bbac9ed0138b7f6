"""The directory's import jobs (issue 26, decision 0021): an upload of a source's export streamed to the spool
directory (``PIPELINES_IMPORT_MAX_BYTES``: past it, 413 and nothing kept), checked up front (a file its source's
mapping does not know, or missing required columns: 422 with the list), then run in the background by the import
core (``shared.imports``) against every service's ``POST /imports/batches``, exactly as ``pipelines import`` runs
it. Each job is a stream, ``directory-import-<id>``: ``ImportStarted``, an ``ImportProgressed`` after each flush
of batches, ``ImportFinished``. A directory that restarts resumes every job with no ``ImportFinished`` from its
checkpoint (the spool directory must outlive the process: a volume of its own in a deployment); what it resends
answers ``exists``. The batches go with the bearer token the job was started with (no API can sign one, decision
0022): it is kept beside the upload in the spool (``<id>.token``, owner-only, removed with the upload when the job
ends), so a resumed job goes on with it; a job outliving its token fails, said so (start it again: rows already
imported answer ``exists``).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from services.directory.events import ImportEvent, ImportFinished, ImportProgressed, ImportStarted
from shared.core.decider import InvalidError
from shared.imports.mapping import SERVICE_ORDER, MappingError, builtin, load
from shared.imports.reader import FileError
from shared.imports.runner import Counts, HttpSender, Options, Run, RunError, Sender, check_files
from shared.privacy.pii import parse_stored
from shared.store import ConcurrencyError, EventStore, NewEvent

log = logging.getLogger(__name__)
STREAM = "directory-import-"
REPORT_LINES = 200  # bad rows a job's read answers (the whole report: the spool directory)


class TooLargeError(Exception):
    """The upload passed ``PIPELINES_IMPORT_MAX_BYTES`` (413)."""


@dataclass
class JobConfig:
    spool: Path
    max_bytes: int
    urls: dict[str, str]  # service -> base URL of its API
    sender: Callable[[str], Sender] | None = None  # tests: batches elsewhere than over HTTP

    @classmethod
    def of(cls, spool_dir: str | None, max_bytes: int, urls: dict[str, str]) -> JobConfig:
        spool = Path(spool_dir) if spool_dir else Path(tempfile.gettempdir()) / "pipelines-imports"
        return cls(spool, max_bytes, urls)


@dataclass
class ImportJobs:
    store: EventStore
    clock: Callable[[], datetime]
    config: JobConfig
    tasks: dict[uuid.UUID, asyncio.Task[None]] = field(default_factory=dict)

    def _path(self, job: uuid.UUID, suffix: str) -> Path:
        return self.config.spool / f"{job}.{suffix}"

    async def start(
        self,
        source: str,
        file_name: str,
        chunks: AsyncIterator[bytes],
        *,
        dry_run: bool,
        owner: tuple[str, str | None] | None,
        actor: str,
        meta: dict[str, Any],
        token: str = "",
    ) -> uuid.UUID:
        """The upload spooled and checked, its job recorded and started (its batches sent with ``token``, the
        starter's bearer token); its id."""
        try:
            mapping = load(builtin(source))
        except MappingError as exc:
            raise InvalidError("unknown_source", str(exc)) from None
        job = uuid.uuid4()
        self.config.spool.mkdir(parents=True, exist_ok=True)
        upload = self._path(job, "upload")
        sha, size = await self._spool(upload, chunks)
        try:
            await asyncio.to_thread(check_files, mapping, [upload])  # reads it whole (its hash): off the loop
        except (RunError, FileError) as exc:
            upload.unlink(missing_ok=True)
            raise InvalidError("import_refused", str(exc).replace(str(upload), file_name)) from None
        started = ImportStarted(
            import_id=job,
            source=source,
            file_name=file_name,
            sha256=sha,
            size=size,
            dry_run=dry_run,
            owner=owner[0] if owner else None,
            owner_team=owner[1] if owner else None,
            started_at=self.clock(),
        )
        token_file = self._path(job, "token")
        token_file.touch(mode=0o600)
        token_file.write_text(token, encoding="ascii")
        await self.store.append(STREAM + str(job), [NewEvent(started, metadata=meta)], expected_version=0)
        self._spawn(started, actor, meta, 1, Counts())
        return job

    async def _spool(self, path: Path, chunks: AsyncIterator[bytes]) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        try:
            with path.open("wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.config.max_bytes:
                        raise TooLargeError(f"the upload is larger than {self.config.max_bytes} bytes")
                    digest.update(chunk)
                    f.write(chunk)
        except BaseException:
            _discard(path)
            raise
        return digest.hexdigest(), size

    def _spawn(self, started: ImportStarted, actor: str, meta: dict[str, Any], version: int, prior: Counts) -> None:
        job = started.import_id
        task = asyncio.create_task(self._run(started, actor, meta, version, prior), name=f"import-{job}")
        self.tasks[job] = task
        task.add_done_callback(lambda _: self.tasks.pop(job, None))

    async def _run(self, started: ImportStarted, actor: str, meta: dict[str, Any], version: int, prior: Counts) -> None:
        job, source = started.import_id, started.source
        stream, at = STREAM + str(job), [version]

        async def record(event: ImportEvent) -> None:
            await self.store.append(stream, [NewEvent(event, metadata=meta)], expected_version=at[0])
            at[0] += 1

        async def flushed(counts: Counts, row: int) -> None:
            await record(ImportProgressed(import_id=job, row=row, **_total(prior, counts)))

        sender = self.config.sender(actor) if self.config.sender else HttpSender(self.config.urls, self._token(job))
        owner = {"user": started.owner, "team": started.owner_team} if started.owner else None
        options = Options(
            source,
            dry_run=started.dry_run,
            default_owner=owner,
            report=self._path(job, "report.csv"),
            checkpoint=self._path(job, "checkpoint.json"),
        )
        state, reason, counts = "done", None, Counts()
        try:
            run = Run(load(builtin(source)), sender, options, on_flush=flushed)
            counts = run.counts
            await run.run([self._path(job, "upload")])
        except (RunError, FileError, MappingError) as exc:
            state, reason = "failed", str(exc)[:2000]
        except ConcurrencyError:  # another process of the directory runs this job (both resumed it): it goes on
            log.warning("import %s: run by another process", job)
            return
        except Exception as exc:  # a fault of this process: the job fails, said so, never left "running"
            log.exception("import %s failed", job)
            state, reason = "failed", f"internal error: {exc.__class__.__name__}"
        finally:
            if isinstance(sender, HttpSender):
                await sender.close()
        finished = ImportFinished(
            import_id=job, state=state, reason=reason, finished_at=self.clock(), **_total(prior, counts)
        )
        with contextlib.suppress(ConcurrencyError):
            await record(finished)
        for suffix in ("upload", "checkpoint.json", "token"):
            self._path(job, suffix).unlink(missing_ok=True)

    def _token(self, job: uuid.UUID) -> str:
        try:
            return self._path(job, "token").read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            return ""  # the services answer 401: the job fails, said so

    async def resume(self) -> int:
        """Start again every job of this directory that has not finished (after a restart); how many."""
        jobs: dict[str, list[Any]] = {}
        for r in await self.store.read_streams(STREAM):
            jobs.setdefault(r.stream_id, []).append(r)
        resumed = 0
        for events in jobs.values():
            parsed = [parse_stored(r.event_type, r.schema_version, r.data) for r in events]
            first, last = parsed[0], parsed[-1]
            if (
                isinstance(last, ImportFinished)
                or not isinstance(first, ImportStarted)
                or first.import_id in self.tasks
            ):
                continue
            # a dry run keeps no checkpoint: it starts again from its first row, its counts with it
            prior = _counts(last) if isinstance(last, ImportProgressed) and not first.dry_run else Counts()
            if not self._path(first.import_id, "upload").exists():  # another spool (a new volume): it cannot go on
                reason = f"its upload is no longer in {self.config.spool}: import the file again"
                lost = ImportFinished(
                    import_id=first.import_id,
                    state="failed",
                    reason=reason,
                    finished_at=self.clock(),
                    **_total(prior, Counts()),
                )
                with contextlib.suppress(ConcurrencyError):
                    await self.store.append(events[0].stream_id, [NewEvent(lost)], expected_version=len(events))
                continue
            meta = dict(events[0].metadata)
            self._spawn(first, str(meta.get("actor", "")), meta, len(events), prior)
            resumed += 1
        return resumed

    async def status(self, job: uuid.UUID) -> dict[str, Any] | None:
        """The job as ``GET /imports/{id}`` answers it (None: no such job)."""
        events = [
            parse_stored(r.event_type, r.schema_version, r.data)
            for r in await self.store.read_stream(STREAM + str(job))
        ]
        if not events or not isinstance(events[0], ImportStarted):
            return None
        first, last = events[0], events[-1]
        counts = _counts(last) if isinstance(last, ImportProgressed | ImportFinished) else Counts()
        answer: dict[str, Any] = {
            "id": str(job),
            "source": first.source,
            "file_name": first.file_name,
            "size": first.size,
            "dry_run": first.dry_run,
            "owner": first.owner,
            "owner_team": first.owner_team,
            "started_at": first.started_at.isoformat(),
            "state": last.state if isinstance(last, ImportFinished) else "running",
            "row": last.row if isinstance(last, ImportProgressed) else None,
            "counts": {k: getattr(counts, k) for k in ("rows", "created", "exists", "refused", "bad")},
            "reason": last.reason if isinstance(last, ImportFinished) else None,
            "finished_at": last.finished_at.isoformat() if isinstance(last, ImportFinished) else None,
            "bad_rows": self._report(job),
        }
        return answer

    def _report(self, job: uuid.UUID) -> list[dict[str, Any]]:
        path = self._path(job, "report.csv")
        if not path.exists():
            return []
        with path.open(encoding="utf-8", newline="") as f:
            rows = csv.DictReader(f)
            return [
                {"row": int(r["row"]), "column": r["column"], "reason": r["reason"]}
                for _, r in zip(range(REPORT_LINES), rows, strict=False)
            ]

    async def close(self) -> None:
        """Stop the running jobs (a shutdown): they resume at the next start."""
        for task in list(self.tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _counts(event: ImportProgressed | ImportFinished) -> Counts:
    return Counts(rows=event.rows, created=event.created, exists=event.exists, refused=event.refused, bad=event.bad)


def _total(prior: Counts, now: Counts) -> dict[str, int]:
    return {k: getattr(prior, k) + getattr(now, k) for k in ("rows", "created", "exists", "refused", "bad")}


def service_urls(api_url: Callable[[str], str]) -> dict[str, str]:
    return {service: api_url(service) for service in SERVICE_ORDER}
