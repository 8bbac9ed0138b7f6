"""The production service's event contract (what other services and subscribers rely on).

Only the events other services react to so far are declared; the production service's issue adds the rest.
Every order event carries ``deal_id`` when the order came from a deal, so the deals service can react.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import ClassVar

from pydantic import AwareDatetime

from shared.events import DomainEvent


class OrderEvent(DomainEvent):
    order_id: uuid.UUID
    deal_id: uuid.UUID | None = None


class OrderShipped(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.OrderShipped"
    shipment_id: uuid.UUID
    carrier: str
    tracking_no: str | None = None
    quantity: Decimal
    shipped_at: AwareDatetime
    promised_date: date | None = None


class OrderDelivered(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.OrderDelivered"
    shipment_id: uuid.UUID
    delivered_at: AwareDatetime
    quantity: Decimal
    on_time: bool


class PromisedDateChanged(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.PromisedDateChanged"
    old: date | None
    new: date
    reason: str


class ProductionOrderPutOnHold(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.ProductionOrderPutOnHold"
    reason: str
    held_at: AwareDatetime


class MaterialShortageReported(OrderEvent):
    event_type: ClassVar[str] = "pipelines.production.MaterialShortageReported"
    component: str
    quantity_short: Decimal
    expected_date: date | None = None
