"""``/events``: the live notices (``live.py``) to an open page as server-sent events, until the page closes or the
process stops (its ``stop``: an open page must not hold the shutdown; the page reconnects to another process)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse

from services.web.live import Hub
from services.web.session import signed_in
from services.web.state import board_of

KEEP_ALIVE_S = 15  # a comment line after this many quiet seconds: proxies close quiet connections


async def notices(hub: Hub, stop: asyncio.Event) -> AsyncIterator[str]:
    """The event stream's lines: the reconnection delay, then one ``data:`` line per notice."""
    async with hub.subscribe() as queue:
        yield "retry: 2000\n\n"
        quiet = 0.0
        while not stop.is_set():
            try:
                notice = await asyncio.wait_for(queue.get(), 1)
            except TimeoutError:
                quiet += 1
                if quiet >= KEEP_ALIVE_S:
                    yield ": keep-alive\n\n"
                    quiet = 0
                continue
            quiet = 0
            yield f"data: {json.dumps(notice)}\n\n"


async def events(request: Request) -> StreamingResponse:
    """GET /events: the live notices as server-sent events (signed in only)."""
    if await signed_in(request) is None:
        raise HTTPException(401, detail="sign in again")
    board = board_of(request)
    return StreamingResponse(
        notices(board.hub, board.stop),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
