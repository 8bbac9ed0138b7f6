"""Queries over HTTP: pages and their cursors, waiting for a position, an aggregate's audit trail.

A page's cursor is one this API gave (a whole offset up to ``MAX_OFFSET``) or 422."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from shared.core.limits import MAX_OFFSET, MAX_POSITION
from shared.privacy.pii import PersonalData, without_personal_data
from shared.store import EventStore, RecordedEvent

T = TypeVar("T")


def _text(value: Any) -> str | None:
    """A reason or an actor as text; a sealed (personal) one is not shown here."""
    return value if isinstance(value, str) else None


async def history_page(
    events: Sequence[RecordedEvent], personal_data: PersonalData, *, personal: bool, offset: int, limit: int
) -> HistoryPage:
    """An aggregate's events for its audit trail: what, when (happened and recorded), who, why, the chain.
    Personal fields are opened only for callers allowed to see them."""
    chunk = list(events[offset : offset + limit + 1])
    opened = (
        await personal_data.open([e.data for e in chunk])
        if personal
        else [without_personal_data(e.data) for e in chunk]
    )
    items = [
        HistoryEntry(
            version=e.version,
            position=e.position,
            event_id=str(e.event_id),
            type=e.event_type,
            schema_version=e.schema_version,
            occurred_at=e.occurred_at.isoformat(),
            recorded_at=e.recorded_at.isoformat(),
            actor=_text(e.metadata.get("actor")),
            reason=_text(e.metadata.get("reason") or data.get("reason")),
            correlation_id=e.correlation_id,
            causation_id=e.causation_id,
            data=data,
        )
        for e, data in zip(chunk, opened, strict=True)
    ]
    return page(items, offset, limit)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; absent on the last")


class HistoryEntry(BaseModel):
    """One event of an aggregate's audit trail: what, when (happened and recorded), who, why, the chain."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": 2,
                    "position": 1042,
                    "event_id": "0b9c4f1e-5d0e-4c8e-9a51-6f0d2c7a9e11",
                    "type": "deals.DealStageChanged",
                    "schema_version": 1,
                    "occurred_at": "2026-11-24T09:30:00+07:00",
                    "recorded_at": "2026-11-24T02:30:00.120000+00:00",
                    "actor": "u-lan",
                    "reason": "demo done, quote next",
                    "correlation_id": "3f2a9d7c-1b4e-4f6a-8c2d-9e0f1a2b3c4d",
                    "causation_id": None,
                    "data": {"from_stage": "qualified", "to_stage": "proposal"},
                }
            ]
        }
    )

    version: int = Field(description="the aggregate's version after this event (1: the first)")
    position: int = Field(description="the event's position in the service's store")
    event_id: str = Field(json_schema_extra={"format": "uuid"})
    type: str = Field(description="the event's type, `<service>.<Name>`")
    schema_version: int
    occurred_at: str = Field(description="when it happened (ISO 8601, with offset)")
    recorded_at: str = Field(description="when it was stored (ISO 8601, UTC)")
    actor: str | None = Field(None, description="who did it: a user id, or a process (`system:…`)")
    reason: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    data: dict[str, Any] = Field(description="the event's fields; personal ones only for callers who may see them")


HistoryPage = Page[HistoryEntry]


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = data["o"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="cursor is not one this API gave") from None
    # an offset this API gave: a whole number (not 1e400, Infinity or true), at most MAX_OFFSET
    if type(offset) is not int or not 0 <= offset <= MAX_OFFSET:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="cursor is not one this API gave")
    return offset


WaitFor = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_POSITION,
        description="wait (5 s at most) until the read model has applied the event at this position",
    ),
]


async def wait_target(store: EventStore, position: int | None) -> tuple[str, int] | None:
    """What a query's ``position`` asks a read model to have applied: the (stream, version) of that event."""
    if position is None:
        return None
    located = await store.locate(position)
    if located is None:
        raise HTTPException(422, detail=f"no event at position {position}")
    return located


Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
MAX_CURSOR_CHARS = 64  # a cursor this API gave is about 24 characters
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS, description="from the previous page's next_cursor")]


def page(items: Sequence[T], offset: int, limit: int) -> Page[T]:
    """``items`` fetched with LIMIT limit + 1 from ``offset``."""
    more = len(items) > limit
    return Page(items=list(items[:limit]), next_cursor=encode_cursor(offset + limit) if more else None)
