"""The production service for ``python -m bench readmodels``: the factory simulation's commands
(testkit/production_sim.py: orders planned, designed, short of materials, built, failing inspection and reworked,
held, re-dated, shipped in parts, delivered, some cancelled) through the service's real handlers, its clock moved
to each command's time."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from bench.readmodels import Clock, Template, stored_rows
from services.production.main import ProductionService
from shared.store.commands import Context
from testkit import production_sim

SERVICE = "production"
READ_MODELS: tuple[str, ...] = ("floor",)  # its demand model reads the deals' topic: no events here
REACTIONS: tuple[str, ...] = ()  # its reactions read the deals' topic


CLOCK = Clock(production_sim.START)


def build_options() -> dict[str, Any]:
    return {"clock": CLOCK}


async def templates(core: ProductionService) -> list[Template]:
    """Twenty orders through their lives: one template, cloned whole (every UUID fresh)."""
    production = core.production
    ctx = Context(actor="bench")
    products: dict[uuid.UUID, str] = {}
    for a in production_sim.generate(20, seed=3):
        CLOCK.now = a.at
        with contextlib.suppress(Exception):  # a command the order refuses: fewer events
            await production.handle(a.order, production_sim.command(a, products), ctx)
    return [Template(await stored_rows(core))]
