"""An order's audit trail: its events, a page at a time, personal fields for those who may see them."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.production.api.common import ERRORS, Service, existing
from services.production.api.rights import Reader, sees_personal_data
from shared.edge.queries import Cursor, HistoryPage, Limit, decode_cursor, history_page

router = APIRouter(responses=ERRORS)


@router.get("/orders/{order_id}/history", tags=["orders"])
async def history(
    order_id: uuid.UUID, svc: Service, p: Reader, limit: Limit = 100, cursor: Cursor = None
) -> HistoryPage:
    loaded = await existing(svc, order_id)
    return await history_page(
        loaded.events, svc.personal_data, personal=sees_personal_data(p), offset=decode_cursor(cursor), limit=limit
    )
