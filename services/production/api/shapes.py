"""An order's state as the API answers it: JSON, decimals as strings, dates ISO."""

from __future__ import annotations

from typing import Any

from services.production.domain import Order


def state_as_json(o: Order) -> dict[str, Any]:
    return {
        "order_id": str(o.order_id) if o.order_id else None,
        "deal_id": str(o.deal_id) if o.deal_id else None,
        "stage": o.stage,
        "held_from": o.held_from,
        "lines": [line.model_dump(mode="json") for line in o.lines],
        "quantity": format(o.quantity, "f"),
        "due_date": o.due_date.isoformat() if o.due_date else None,
        "produced": format(o.produced, "f"),
        "scrapped": format(o.scrapped, "f"),
        "inspections": o.inspections,
        "packed": format(o.packed, "f"),
        "shipped": format(o.shipped, "f"),
        "delivered": format(o.delivered, "f"),
        "shipments": [
            {"shipment_id": str(k), "quantity": format(v, "f"), "delivered": k in o.deliveries}
            for k, v in o.shipments.items()
        ],
        "contact_erased": o.contact_erased,
    }
