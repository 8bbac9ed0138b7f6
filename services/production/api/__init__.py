"""The production service's HTTP edge: ``app`` (``create_app``, the app factory), the routes by concern —
``order_commands`` (create an order, a route per command), ``orders`` (an order's state and the floor's read
models), ``plans`` (demand plans and demand), ``history`` (an order's audit trail) — ``rights`` (who may do what),
``common`` (the service the routes reach through ``request.app.state``, shared parameters and lookups) and
``shapes`` (the JSON an order's state answers as)."""

from __future__ import annotations

from services.production.api.app import create_app
from services.production.api.common import ProductionAPI

__all__ = ["ProductionAPI", "create_app"]
