"""The leads service for ``python -m bench readmodels``: the marketing simulation's commands (testkit/marketing_sim.py:
campaigns launched and spending, leads captured from five sources, contacted, scored, segmented, nurtured, qualified,
converted, won or lost) through the service's real handlers, its clock moved to each command's time.

Read model timed (the one of the leads' own topic): ``marketing``. The deployment checks references (as deployed,
``check_references`` on): its ``handovers`` reaction reads the leads' own events (who owns which open lead) and is
timed in its own row. On other topics, empty here: ``reactions`` (the deals' won and lost), the ``directory``
replica, ``alerts``."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from bench.readmodels import Clock, Template, stored_rows
from services.leads.main import LeadsService
from shared.store.commands import Context
from testkit import marketing_sim

SERVICE = "leads"
READ_MODELS: tuple[str, ...] = ("marketing",)
REACTIONS: tuple[str, ...] = ("handovers",)


CLOCK = Clock(marketing_sim.START)


def build_options() -> dict[str, Any]:
    return {"clock": CLOCK}


def settings_options() -> dict[str, Any]:
    return {"check_references": True}  # as deployed: the handovers reaction runs on the leads' own topic


async def templates(core: LeadsService) -> list[Template]:
    """Twenty leads and five campaigns with a week of spend: one template, cloned whole (every UUID fresh)."""
    leads = core.leads
    ctx = Context(actor="bench")
    week = marketing_sim.START + timedelta(days=7)
    for a in marketing_sim.generate(20, seed=3):
        if a.kind == "spend" and a.at > week:
            continue
        CLOCK.now = a.at
        kind, cmd, day = marketing_sim.command(a)
        with contextlib.suppress(Exception):  # a command the aggregate refuses: fewer events
            if kind == "campaign":
                await leads.campaign_command(a.target, cmd, ctx, day)
            elif a.kind == "capture":
                await leads.capture(cmd, ctx, lead_id=a.target)
            else:
                await leads.handle(a.target, cmd, ctx)
    return [Template(await stored_rows(core))]
