"""A lead now and its audit trail: every event, personal fields shown only to those who may see them (``marketing``,
``admin``, the lead's owner)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from services.leads.api.answers import LeadView
from services.leads.api.common import ERRORS, Reader, Service, existing, sees_personal_data
from services.leads.api.views import lead_json
from shared.edge.queries import Cursor, HistoryPage, Limit, decode_cursor, history_page

router = APIRouter(responses=ERRORS)


@router.get(
    "/leads/{lead_id}",
    tags=["leads"],
    summary="the lead now",
    response_model=LeadView,
    response_model_exclude_unset=True,  # no contact: not there
)
async def get_lead(lead_id: uuid.UUID, svc: Service, p: Reader, response: Response) -> dict[str, Any]:
    loaded = await existing(svc, lead_id)
    body = lead_json(loaded.state)
    body["version"] = loaded.version
    if sees_personal_data(p, loaded.state.owner_id):
        contact = await svc.leads.contact(lead_id)
        body["contact"] = contact.model_dump(mode="json") if contact else None
    response.headers["ETag"] = f'"{loaded.version}"'
    return body


@router.get("/leads/{lead_id}/history", tags=["leads"], summary="every event of the lead")
async def history(
    lead_id: uuid.UUID, svc: Service, p: Reader, limit: Limit = 100, cursor: Cursor = None
) -> HistoryPage:
    loaded = await existing(svc, lead_id)
    personal = sees_personal_data(p, loaded.state.owner_id)
    return await history_page(
        loaded.events, svc.leads.personal_data, personal=personal, offset=decode_cursor(cursor), limit=limit
    )
