"""What the production routes share: the service they reach (put on ``app.state`` by ``create_app``, read by the
``Service`` dependency), the path and query parameters, and the lookups every route makes."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Path, Query, Request

from services.production.domain import Order
from services.production.handlers import Production
from shared.core.decider import AbsentError
from shared.core.limits import DAY_RANGE, Day
from shared.edge.problems import ERRORS as COMMON_ERRORS
from shared.edge.problems import not_found
from shared.messaging.projections import ReadModels
from shared.privacy.pii import PersonalData
from shared.store.commands import Loaded

ERRORS = COMMON_ERRORS | not_found("no such order")


@dataclass
class ProductionAPI:
    production: Production
    read_models: ReadModels | None
    personal_data: PersonalData
    timezone: str
    readiness: Callable[[], Awaitable[dict[str, str]]]


def service(request: Request) -> ProductionAPI:
    """The service a route reaches: the one ``create_app`` was given."""
    svc: ProductionAPI = request.app.state.production
    return svc


Service = Annotated[ProductionAPI, Depends(service)]
Period = Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-12"])]
From = Annotated[Day, Query(alias="from", description=DAY_RANGE)]
To = Annotated[Day, Query(alias="to", description=DAY_RANGE)]


async def existing(svc: ProductionAPI, order_id: uuid.UUID) -> Loaded[Order]:
    loaded = await svc.production.order(order_id)
    if loaded.version == 0:
        raise AbsentError("not_found", f"no order {order_id}")
    return loaded


def read_models(svc: ProductionAPI) -> ReadModels:
    if svc.read_models is None:
        raise HTTPException(503, detail="this process serves no read models")
    return svc.read_models


def window(svc: ProductionAPI, start: date, end: date) -> tuple[datetime, datetime]:
    """``from``/``to`` as the business time zone's midnights."""
    if end <= start:
        raise HTTPException(422, detail="`to` must be after `from`")
    tz = ZoneInfo(svc.timezone)
    return datetime.combine(start, time(), tz), datetime.combine(end, time(), tz)
