"""Several chunks in flight (``Options.in_flight``, 4 by default): answered in any order, completed in order, so the
checkpoint is still the last row all of whose batches were answered, and a run that fails on one chunk while later
ones were answered resumes with nothing lost or written twice (issue 26, decision 0021 "As built: speed")."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from shared.core.ids import import_id
from shared.imports import runner
from shared.imports.runner import Options, Run, RunError
from tests.unit.imports.test_runner import MAPPING, AppSender, deals, options, streams

__all__ = ["deals"]  # the fixture


class OutOfOrder:
    """Within each group of four batches sent together, the last sent answers first: batch n waits until batch n + 1
    of its group has its answer (or ``alone_s``, when no such batch is sent); batch ``fail_at`` fails (a crash) after
    those sent after it were answered. The order is made by events, not by times a loaded machine could upset."""

    def __init__(self, inner: AppSender, fail_at: int | None = None, alone_s: float = 2.0) -> None:
        self.inner, self.fail_at, self.alone_s = inner, fail_at, alone_s
        self.sent = 0
        self.at_once = self.most_at_once = 0
        self.answered: list[int] = []
        self.settled: dict[int, asyncio.Event] = {}

    def _settled(self, n: int) -> asyncio.Event:
        return self.settled.setdefault(n, asyncio.Event())

    async def send(self, service: str, batch: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        n = self.sent
        self.sent += 1
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            if n % 4 < 3:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._settled(n + 1).wait(), self.alone_s)
            if n == self.fail_at:
                raise RunError("killed")
            answer = await self.inner.send(service, batch, headers)
            self.answered.append(n)
            return answer
        finally:
            self.at_once -= 1
            self._settled(n).set()


def sheet(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "many.csv"
    lines = ["Mã;Tên cơ hội;Khách hàng;Ngày tạo;Phụ trách"]
    lines += [f"K-{i};Deal {i};Customer {i};0{1 + i % 9}/03/2025 09:00;Lan" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_chunks_answered_out_of_order_complete_in_order_and_a_crash_resumes_exactly(
    deals, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, store = deals
    monkeypatch.setattr(runner, "MAX_BATCH_ROWS", 2)
    path = sheet(tmp_path, 12)  # rows 2..13: six chunks of two
    assert Options("x").in_flight == 4
    crashing = OutOfOrder(AppSender(client), fail_at=1)
    with pytest.raises(RunError, match="killed"):
        await asyncio.wait_for(Run(MAPPING, crashing, options(tmp_path)).run([path]), 60)
    assert crashing.most_at_once == 4
    assert crashing.answered[:2] == [3, 2]  # the later chunks were answered before the first ones
    checkpoint = json.loads((tmp_path / "checkpoint.json").read_text())
    assert list(checkpoint["files"].values()) == [3]  # rows 2 and 3: the first chunk, not past the failed one

    again = OutOfOrder(AppSender(client))
    counts = await asyncio.wait_for(Run(MAPPING, again, options(tmp_path)).run([path]), 60)
    written_before = 2 * (len(crashing.answered) - 1)  # the answered chunks after the failed one
    assert (counts.skipped, counts.rows) == (2, 10)
    assert (counts.created, counts.exists) == (10 - written_before, written_before)
    found = await streams(store)
    assert sorted(found) == sorted(f"deal-{import_id('sheet', 'deal', f'K-{i}')}" for i in range(12))
    assert all(len(events) == 1 for events in found.values())
    assert list(json.loads((tmp_path / "checkpoint.json").read_text())["files"].values()) == [-1]


async def test_bad_rows_are_flushed_in_chunks_too(deals, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of bad rows sends nothing but is still reported and checkpointed chunk by chunk (it never piles up a
    whole file's bad rows in memory: the importer's memory stays flat however many rows are bad)."""
    client, _ = deals
    monkeypatch.setattr(runner, "MAX_BATCH_ROWS", 2)
    path = tmp_path / "bad.csv"
    lines = ["Mã;Tên cơ hội;Khách hàng;Ngày tạo;Phụ trách"]
    lines += [f"K-{i};Deal {i};Customer {i};31/02/2025 09:00;Lan" for i in range(7)]  # no 31 February
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    flushed: list[int] = []

    async def on_flush(counts: Any, last: int) -> None:
        flushed.append(last)

    sender = AppSender(client)
    counts = await Run(MAPPING, sender, options(tmp_path), on_flush=on_flush).run([path])
    assert (counts.rows, counts.bad, counts.created) == (7, 7, 0) and sender.sent == []
    assert flushed == [3, 5, 7, 8]  # rows 2–3, 4–5, 6–7, then the last
