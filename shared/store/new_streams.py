"""Many new streams' reads and appends, from rows running at once, as one store call each (issue 26's import batches;
decision 0021 "As built: speed"). Used by ``shared.store.commands.execute_new``; a batch runner wraps its rows'
tasks in ``NewStreams.rows(count)``."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from shared.store import AppendResult, EventStore, NewStream

_NEW_STREAMS: contextvars.ContextVar[NewStreams | None] = contextvars.ContextVar("new_streams", default=None)


class NewStreams:
    """The "exists" reads and the appends of many ``execute_new`` running at once (an import batch's rows, decision
    0021 "As built: speed"), each gathered into one store call: ``stream_versions`` for the reads,
    ``create_streams`` for the appends. Each row still reads, decides and writes on its own (a refused or existing
    row is its own); only the round trips are shared.

    What is pending goes to the store as soon as every row still running waits on it (a row done, refused or
    gone leaves: ``left``), else ``wait_s`` after the first request (a row held by something slower: progress
    never depends on a row that cannot come). Bound to the first store a row uses; others are served directly."""

    def __init__(self, rows: int, *, wait_s: float = 0.05) -> None:
        self.live = rows
        self.wait_s = wait_s
        self.store: EventStore | None = None
        self._reads: list[tuple[str, asyncio.Future[int]]] = []
        self._creates: list[tuple[NewStream, asyncio.Future[AppendResult | None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._checking = False
        self._flushes: set[asyncio.Task[None]] = set()

    @classmethod
    @contextlib.contextmanager
    def rows(cls, count: int) -> Iterator[NewStreams]:
        """Tasks created inside share one ``NewStreams`` for ``count`` rows; each calls ``left()`` when done."""
        shared = cls(count)
        token = _NEW_STREAMS.set(shared)
        try:
            yield shared
        finally:
            _NEW_STREAMS.reset(token)

    @staticmethod
    def serving(store: EventStore) -> NewStreams | None:
        """The ``NewStreams`` of the rows this task is one of, for this store (None: the row runs on its own)."""
        shared = _NEW_STREAMS.get()
        if shared is None:
            return None
        if shared.store is None:
            shared.store = store
        return shared if shared.store is store else None

    def left(self) -> None:
        """A row is done (created, exists, refused, failed): the others no longer wait for it."""
        self.live -= 1
        self._check_soon()

    async def version(self, stream_id: str) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reads.append((stream_id, future))
        self._requested()
        return await future

    async def create(self, stream: NewStream) -> AppendResult | None:
        future: asyncio.Future[AppendResult | None] = asyncio.get_running_loop().create_future()
        self._creates.append((stream, future))
        self._requested()
        return await future

    def _requested(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.wait_s, self._flush)
        self._check_soon()

    def _check_soon(self) -> None:
        # after the rows ready to run now have run (they may be about to ask too)
        if not self._checking:
            self._checking = True
            asyncio.get_running_loop().call_soon(self._check)

    def _check(self) -> None:
        self._checking = False
        pending = len(self._reads) + len(self._creates)
        if pending and pending >= self.live:
            self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        reads, self._reads = self._reads, []
        creates, self._creates = self._creates, []
        if reads or creates:
            task = asyncio.ensure_future(self._send(reads, creates))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _send(
        self,
        reads: list[tuple[str, asyncio.Future[int]]],
        creates: list[tuple[NewStream, asyncio.Future[AppendResult | None]]],
    ) -> None:
        assert self.store is not None
        waiting: list[asyncio.Future[Any]] = [f for _, f in reads] + [f for _, f in creates]
        try:
            if reads:
                versions = await self.store.stream_versions([s for s, _ in reads])
                for stream_id, future in reads:
                    if not future.done():
                        future.set_result(versions[stream_id])
            if creates:
                results = await self.store.create_streams([s for s, _ in creates])
                for (_, made), result in zip(creates, results, strict=True):
                    if not made.done():
                        made.set_result(result)
        except Exception as failed:  # the store's failure is each waiting row's (the batch's: 503)
            for future in waiting:
                if not future.done():
                    future.set_exception(failed)
