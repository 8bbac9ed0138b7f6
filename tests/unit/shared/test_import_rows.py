"""An imported row's kernel (issue 26): ``execute_new`` decides a new stream's facts in order, each on the state the
ones before made and with its own occurred time, in one append; a stream with events, or one another writer
creates first, is left as it is; a fact out of order names its index. And the shared runner's parts: ``$import``
references, and a failure that is not a refusal failing the batch (503 at the edge: the tool sends it again)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from shared.core.ids import import_id, is_client_id
from shared.edge.imports import Batch, BatchRequest, ImportRow, Kind, RowRefusedError, substitute
from shared.store.commands import Step, StepRefusedError, execute_new
from shared.store.memory import InMemoryEventStore
from testkit.events import Counted, counter

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


def count(at: datetime) -> Step[int]:
    return Step(at, lambda n: [Counted(n=n + 1)])


async def test_a_new_stream_s_facts_are_one_append_each_at_its_time() -> None:
    store = InMemoryEventStore()
    created = await execute_new(
        store, "c", counter, [count(T0), count(T0 + timedelta(days=2))], metadata={"actor": "u"}
    )
    assert created is not None and created.append is not None
    assert (created.state, created.append.version) == (2, 2)
    events = await store.read_stream("c")
    assert [e.occurred_at for e in events] == [T0, T0 + timedelta(days=2)]
    assert events[0].metadata["actor"] == "u" and events[0].recorded_at == events[1].recorded_at

    assert await execute_new(store, "c", counter, [count(T0)]) is None  # it has events: left as it is
    assert await store.stream_version("c") == 2


async def test_a_dry_run_and_a_refusal_append_nothing() -> None:
    store = InMemoryEventStore()
    dry = await execute_new(store, "c", counter, [count(T0), count(T0)], dry_run=True)
    assert dry is not None and (dry.state, dry.append) == (2, None)
    with pytest.raises(StepRefusedError) as refused:
        await execute_new(store, "c", counter, [count(T0), count(T0 + timedelta(hours=1)), count(T0)])
    assert (refused.value.index, refused.value.cause.rule) == (2, "occurred_out_of_order")
    assert await store.stream_version("c") == 0


async def test_the_checks_run_only_for_a_new_stream_and_a_lost_race_is_exists() -> None:
    store = InMemoryEventStore()
    checked: list[str] = []

    async def checks() -> None:
        checked.append("c")
        await asyncio.sleep(0)

    results = await asyncio.gather(*(execute_new(store, "c", counter, [count(T0)], checks=checks) for _ in range(3)))
    assert sum(r is not None for r in results) == 1  # one writer created it; the others found it made
    assert await store.stream_version("c") == 1
    await execute_new(store, "c", counter, [count(T0)], checks=checks)
    assert len(checked) == 3  # the fourth found it before checking anything


def test_import_references_become_derived_ids_wherever_they_are() -> None:
    ref = {"$import": {"kind": "organisation", "key": "55"}}
    body, paths = substitute("pipedrive", {"organisation_id": ref, "lines": [{"x": ref}], "n": 1})
    org = str(import_id("pipedrive", "organisation", "55"))
    assert body == {"organisation_id": org, "lines": [{"x": org}], "n": 1}
    assert paths == ["organisation_id", "lines.0.x"]
    assert not is_client_id(uuid.UUID(org))
    for bad in ({"$import": {"kind": "organisation"}}, {"$import": ref["$import"], "other": 1}, {"$import": "55"}):
        with pytest.raises(RowRefusedError):
            substitute("pipedrive", {"organisation_id": bad})


class Body(BaseModel):
    n: int = 0


def request(*keys: str) -> BatchRequest:
    fact = {"command": "make", "occurred_at": "2025-03-01T09:00:00+07:00", "body": {}}
    rows = [{"row": i, "kind": "thing", "key": k, "facts": [fact]} for i, k in enumerate(keys)]
    return BatchRequest.model_validate({"source": "csv", "rows": rows})


async def test_a_failure_that_is_no_refusal_fails_the_batch() -> None:
    async def run(row: ImportRow) -> Any:
        if row.key == "down":
            raise OSError("the database went away")
        return None

    batch = Batch({"thing": Kind(first={"make": Body}, then={}, run=run)})
    answer = await batch.run(request("a", "b"), T0 + timedelta(days=1), {})
    assert [r.status for r in answer.results] == ["exists", "exists"]
    with pytest.raises(OSError, match="went away"):
        await batch.run(request("a", "down", "b"), T0 + timedelta(days=1), {})
