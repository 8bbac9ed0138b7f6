"""``POST /imports/batches``, the part every service shares (decision 0021, issue 26): the bounded request and its
answer, the ``$import`` references, and the runner of a batch's rows.

A batch is rows of one source; a row is a kind, the source's row key and its facts in order, each with its occurred
time: the first creates the aggregate (its create route's body, without an id), the next are its command routes'
bodies. The row's id is ``import_id(source, kind, key)``; a body names another imported row's id as
``{"$import": {"kind": "organisation", "key": "55"}}``, replaced here by that row's derived id.

Each row answers on its own: ``created``; ``exists`` (its stream has events already: a second run of a file appends
nothing); ``refused`` with ``errors: [{field, reason}]`` (a body the command does not take, a rule of the domain, a
reference to something the service does not know): one row's refusal is never the batch's. A row's events go to its
stream in one append, so a row never half-writes. A database or broker failure fails the batch (503), which the
tool sends again: what was written answers ``exists``. ``dry_run``: every row decided, nothing appended, and the
references to other imported rows not checked (they may not exist yet): listed in the row's ``unchecked``.

A service gives one ``Kind`` per kind it imports, in the order a batch runs them (organisations before the people
that work for them); the rows of one kind run concurrently (``ROW_CONCURRENCY`` at a time), their "exists" reads
and their appends gathered into one store call each (``shared.store.new_streams``)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.core.decider import RefusedError
from shared.core.ids import import_id
from shared.core.limits import MAX_COUNT, AwareMoment, JsonObject, bounded_errors
from shared.store import EventTooLargeError
from shared.store.commands import Created, StepRefusedError
from shared.store.new_streams import NewStreams

MAX_BATCH_ROWS = 500
MAX_ROW_FACTS = 20
MAX_KEY_CHARS = 128
# every row of a kind at once: their "exists" reads and appends are one round trip each (NewStreams); what else a
# row reads (references) queues for the service's pool
ROW_CONCURRENCY = MAX_BATCH_ROWS
SOURCE_PATTERN = r"^[a-z0-9_-]{1,32}$"
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
KEY_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # printable: no control characters
REFERENCE = "$import"
_SCALARS = frozenset({str, int, float, bool, type(None)})


class Fact(BaseModel):
    """One fact of a row: a command's body and when it occurred."""

    model_config = ConfigDict(extra="forbid")
    command: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,59}$", description="the command, as its route names it")]
    occurred_at: AwareMoment = Field(description="when it happened (ISO 8601 with offset): not in the future")
    body: JsonObject = Field(default_factory=dict, description="the command's body; ids of imported rows as $import")


class BatchRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    row: Annotated[int, Field(ge=0, le=MAX_COUNT, description="the file's row number, for the report")]
    kind: Annotated[str, Field(pattern=KIND_PATTERN, description="what the row creates (each service: its kinds)")]
    key: Annotated[
        str, Field(min_length=1, max_length=MAX_KEY_CHARS, pattern=KEY_PATTERN, description="the source's row id")
    ]
    facts: Annotated[list[Fact], Field(min_length=1, max_length=MAX_ROW_FACTS)]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Annotated[str, Field(pattern=SOURCE_PATTERN, description="the source (pipedrive, hubspot, odoo, csv…)")]
    dry_run: bool = Field(False, description="decide every row, append nothing")
    rows: Annotated[list[BatchRow], Field(min_length=1, max_length=MAX_BATCH_ROWS)]


class RowError(BaseModel):
    field: str = Field(description="where in the row: facts[1].body.stage_id, facts[0].occurred_at, kind…")
    reason: str


class RowResult(BaseModel):
    row: int
    status: Literal["created", "exists", "refused"]
    id: str | None = Field(description="the row's id: import_id(source, kind, key) (a spend row: its campaign's)")
    errors: list[RowError] = Field(default_factory=list)
    stream_id: str | None = Field(None, description="created: the stream written (for X-Directory-After)")
    version: int | None = Field(None, description="created: the stream's version after it (stream_id@version)")
    unchecked: list[str] = Field(
        default_factory=list, description="a dry run: the references to other imported rows it did not check"
    )


class BatchAnswer(BaseModel):
    results: list[RowResult]


# ---------------------------------------------------------------------------------------------- a row, prepared
class RowRefusedError(Exception):
    """A row refused before or while it was decided: ``field`` (within the row) and ``reason``, or ``errors``."""

    def __init__(self, field: str, reason: str, errors: list[RowError] | None = None) -> None:
        super().__init__(f"{field}: {reason}")
        self.errors = errors if errors is not None else [RowError(field=field, reason=reason)]


@dataclass(frozen=True)
class ImportedFact:
    index: int
    command: BaseModel  # the service's command, parsed from the body
    occurred_at: datetime
    references: frozenset[str]  # the body's fields (dotted) that were $import references


@dataclass(frozen=True)
class ImportRow:
    source: str
    row: int
    kind: str
    key: str
    id: uuid.UUID
    facts: list[ImportedFact]
    dry_run: bool
    metadata: dict[str, Any] = field(default_factory=dict)  # the events': actor, correlation, imported_from

    def unchecked(self, index: int, name: str) -> bool:
        """Whether a dry run leaves the body field ``name`` of fact ``index`` unchecked: an imported row's id."""
        return self.dry_run and name in self.facts[index].references


RowRunner = Callable[[ImportRow], Awaitable[Created[Any] | None]]  # None: it exists (nothing appended)


@dataclass(frozen=True)
class Kind:
    """A kind a service imports: the commands its first fact may be (creating it) and the next ones, and how a
    row of it runs (``run``: the service's handler, raising refusals or ``RowRefusedError``)."""

    first: Mapping[str, type[BaseModel]]
    then: Mapping[str, type[BaseModel]]
    run: RowRunner


BatchRunner = Callable[[str, Sequence[BatchRow], bool], Awaitable[list[dict[str, Any]]]]


def substitute(source: str, value: Any, path: str = "") -> tuple[Any, list[str]]:
    """``value`` with each ``{"$import": {"kind", "key"}}`` replaced by that row's id, and the dotted paths replaced."""
    if isinstance(value, dict):
        if REFERENCE in value:
            ref = value[REFERENCE]
            if (
                len(value) != 1
                or not isinstance(ref, dict)
                or set(ref) != {"kind", "key"}
                or not all(isinstance(ref[k], str) and 0 < len(ref[k]) <= MAX_KEY_CHARS for k in ("kind", "key"))
            ):
                raise RowRefusedError(path or REFERENCE, 'a reference is {"$import": {"kind": "…", "key": "…"}} alone')
            return str(import_id(source, ref["kind"], ref["key"])), [path]
        out, found = {}, []
        for k, v in value.items():
            if v.__class__ in _SCALARS:  # nothing in it to replace
                out[k] = v
                continue
            out[k], inner = substitute(source, v, f"{path}.{k}" if path else str(k))
            found.extend(inner)
        return out, found
    if isinstance(value, list):
        items, found = [], []
        for i, v in enumerate(value):
            item, inner = substitute(source, v, f"{path}.{i}" if path else str(i))
            items.append(item)
            found.extend(inner)
        return items, found
    return value, []


def _parse(source: str, kind: Kind, index: int, fact: Fact) -> ImportedFact:
    commands = kind.first if index == 0 else kind.then
    where = f"facts[{index}]"
    cls = commands.get(fact.command)
    if cls is None:
        allowed = ", ".join(sorted(commands)) or "none"
        raise RowRefusedError(
            f"{where}.command", f"{'the first' if index == 0 else 'a next'} fact is one of: {allowed}"
        )
    try:
        body, refs = substitute(source, fact.body)
    except RowRefusedError as bad:
        raise RowRefusedError(f"{where}.body.{bad.errors[0].field}", bad.errors[0].reason) from None
    try:
        command = cls.model_validate(body)
    except ValidationError as invalid:
        errors = [
            RowError(field=".".join([f"{where}.body", *(str(p) for p in e["loc"])]), reason=e["msg"])
            for e in bounded_errors(invalid.errors())
        ]
        raise RowRefusedError(where, "invalid", errors) from None
    return ImportedFact(index, command, fact.occurred_at, frozenset(refs))


def prepare(source: str, row: BatchRow, kind: Kind, now: datetime, dry_run: bool, meta: dict[str, Any]) -> ImportRow:
    """The row's facts parsed as the service's commands (refused: ``RowRefusedError``)."""
    facts = []
    for i, fact in enumerate(row.facts):
        if fact.occurred_at > now:
            raise RowRefusedError(f"facts[{i}].occurred_at", "a fact cannot occur in the future")
        facts.append(_parse(source, kind, i, fact))
    imported = {**meta, "imported_from": f"{source}/{row.kind}/{row.key}"}
    return ImportRow(source, row.row, row.kind, row.key, import_id(source, row.kind, row.key), facts, dry_run, imported)


def refusal(error: Exception, fact: int | None = None) -> list[RowError]:
    """A refusal as the row's errors: the field it names (within the fact it concerns), and why."""
    if isinstance(error, RowRefusedError):
        return error.errors
    if isinstance(error, StepRefusedError):
        fact, error = error.index, error.cause
    where = f"facts[{fact}]" if fact is not None else "facts"
    if isinstance(error, RefusedError):
        name = getattr(error, "field", None)
        target = where + ".occurred_at" if error.rule.startswith("occurred_") else where
        return [RowError(field=f"{where}.body.{name}" if name else target, reason=f"{error.rule}: {error.message}")]
    if isinstance(error, HTTPException):
        return [RowError(field=f"{where}.body", reason=str(error.detail))]
    return [RowError(field=where, reason=str(error))]


@dataclass(frozen=True)
class Batch:
    """One service's batch route: the kinds it imports, in the order their rows run, and whole-batch kinds (a
    runner given all of a batch's rows of its kind: the leads' daily spend)."""

    kinds: Mapping[str, Kind]
    batch_kinds: Mapping[str, BatchRunner] = field(default_factory=dict)

    async def run(self, request: BatchRequest, now: datetime, meta: dict[str, Any]) -> BatchAnswer:
        results: dict[int, RowResult] = {}
        order = [*self.kinds, *self.batch_kinds]
        for i, row in enumerate(request.rows):
            if row.kind not in order:
                results[i] = _refused(request.source, row, [RowError(field="kind", reason=_kinds(order))])
        gate = asyncio.Semaphore(ROW_CONCURRENCY)
        for name in order:
            mine = [(i, row) for i, row in enumerate(request.rows) if row.kind == name]
            if not mine:
                continue
            if name in self.batch_kinds:
                answered = await self.batch_kinds[name](request.source, [r for _, r in mine], request.dry_run)
                results.update({i: RowResult.model_validate(a) for (i, _), a in zip(mine, answered, strict=True)})
                continue
            try:
                # the rows' "exists" reads and appends go to the store together (shared.store.new_streams)
                with NewStreams.rows(len(mine)) as shared:
                    async with asyncio.TaskGroup() as group:
                        tasks = {
                            i: group.create_task(self._row(gate, shared, request, row, self.kinds[name], now, meta))
                            for i, row in mine
                        }
            except BaseExceptionGroup as failed:  # a database or broker failure: the batch's (503), sent again
                raise failed.exceptions[0] from None
            results.update({i: t.result() for i, t in tasks.items()})
        return BatchAnswer(results=[results[i] for i in range(len(request.rows))])

    async def _row(
        self,
        gate: asyncio.Semaphore,
        shared: NewStreams,
        request: BatchRequest,
        row: BatchRow,
        kind: Kind,
        now: datetime,
        meta: dict[str, Any],
    ) -> RowResult:
        async with gate:
            try:
                prepared = prepare(request.source, row, kind, now, request.dry_run, meta)
                created = await kind.run(prepared)
            except (RowRefusedError, StepRefusedError, RefusedError, HTTPException, EventTooLargeError) as error:
                if isinstance(error, HTTPException) and error.status_code >= 500:
                    raise  # not there now (a replica behind): the batch's, sent again
                return _refused(request.source, row, refusal(error))
            finally:
                shared.left()
        unchecked = [f"facts[{f.index}].body.{r}" for f in prepared.facts for r in sorted(f.references)]
        appended = created.append if created is not None else None
        return RowResult(
            row=row.row,
            status="created" if created is not None else "exists",
            id=str(prepared.id),
            stream_id=appended.stream_id if appended else None,
            version=appended.version if appended else None,
            unchecked=unchecked if request.dry_run else [],
        )


def _kinds(order: Sequence[str]) -> str:
    return f"this service imports: {', '.join(order)}"


def _refused(source: str, row: BatchRow, errors: list[RowError]) -> RowResult:
    return RowResult(row=row.row, status="refused", id=str(import_id(source, row.kind, row.key)), errors=errors)


class Memo:
    """What a batch's rows check of the same thing (the owner and team many rows name) checked once: the first
    row's check, its answer or refusal given to every row that asks the same (``await memo(key, check)``)."""

    def __init__(self) -> None:
        self._checks: dict[Hashable, asyncio.Future[Any]] = {}

    async def __call__(self, key: Hashable, check: Callable[[], Awaitable[Any]]) -> Any:
        if key not in self._checks:
            self._checks[key] = asyncio.ensure_future(check())
        return await self._checks[key]


@contextlib.contextmanager
def checking(index: int) -> Iterator[None]:
    """A service's checks of fact ``index`` (what it names): a refusal names the field within that fact."""
    try:
        yield
    except (RefusedError, HTTPException) as error:
        if isinstance(error, HTTPException) and error.status_code >= 500:
            raise
        raise RowRefusedError("", "", refusal(error, index)) from None
