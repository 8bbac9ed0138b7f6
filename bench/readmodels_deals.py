"""The deals service for ``python -m bench readmodels``: the sales simulation's commands (testkit/sales_sim.py: deals
opened, moved through the stages forward, skipping and back, activities logged, lines, close dates, probability
and owners changed, won or lost, some reopened) through the service's real handlers, its clock moved to each
command's time. The plan's times and dates are moved by whole days so that its last day is today: the deals still
open are as stuck as a live deployment's, so the alert scanner of the process raises what a deployment would.

Half the deals open with a contact (a data subject of their own, ``contact_id``; their details sealed under the
subject's key) and an organisation; a won one of those gives its delivery address (sealed too). Every UUID of the
template, the subjects' included, is fresh in each clone: a clone's sealed fields name a subject that has no key,
as an erased subject's do. The board and the analytics never open them (the runner types events with personal
fields as None, a sealed field or not), so clones decode in the projector as real deals do.

Read models timed (those of the deals' own topic): ``board``, ``analytics``. The deployment checks references (as
deployed, ``check_references`` on): its ``handovers`` reaction reads the deals' own events (who owns which open
deal) and is timed in its own row. On other topics, empty here: the board's and the analytics' next steps (the
agenda's), ``reactions`` (leads', production's, directory's), the ``directory`` replica, ``alerts``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.readmodels import Clock, Template, stored_rows
from services.deals import domain
from services.deals.events import Address, Contact
from services.deals.main import DealsService
from shared.store.commands import Context
from testkit import sales_sim

SERVICE = "deals"
READ_MODELS: tuple[str, ...] = ("board", "analytics")
REACTIONS: tuple[str, ...] = ("handovers",)
DEALS = 40  # in the one template, cloned whole

CLOCK = Clock(sales_sim.START)


def build_options() -> dict[str, Any]:
    return {"clock": CLOCK}


def settings_options() -> dict[str, Any]:
    return {"check_references": True}  # as deployed: the handovers reaction runs on the deals' own topic


def _shifted(a: sales_sim.Action, days: timedelta) -> sales_sim.Action:
    params = {k: v + days if k == "close" else v for k, v in a.params.items()}
    return dataclasses.replace(a, at=a.at + days, params=params)


def _command(a: sales_sim.Action, with_contact: bool) -> domain.Command:
    """The simulation's command, with a contact and an organisation for the deals that have one."""
    cmd = sales_sim.commands(a)
    if not with_contact:
        return cmd
    if isinstance(cmd, domain.OpenDeal):
        contact = Contact(
            name=f"Anh Minh {a.deal.hex[:4]}", email=f"minh.{a.deal.hex[:8]}@example.vn", phone="+84901234567"
        )
        update = {"contact_id": str(uuid.uuid5(a.deal, "contact")), "contact": contact}
        return cmd.model_copy(update=update | {"organisation_id": uuid.uuid5(a.deal, "organisation")})
    if isinstance(cmd, domain.WinDeal):
        address = Address(line1="12 Nguyễn Huệ", city="Hồ Chí Minh", region="Quận 1")
        return cmd.model_copy(update={"delivery_address": address})
    return cmd


async def templates(core: DealsService) -> list[Template]:
    """``DEALS`` deals through their lives: one template, cloned whole (every UUID fresh)."""
    deals = core.deals
    ctx = Context(actor="bench")
    days = timedelta(days=(datetime.now(UTC) - sales_sim.START).days - sales_sim.DAYS)
    for a in sales_sim.generate(DEALS, seed=3):
        a = _shifted(a, days)
        CLOCK.now = a.at
        with contextlib.suppress(Exception):  # a command the deal refuses: fewer events
            await deals.handle(a.deal, _command(a, with_contact=a.deal.int % 2 == 0), ctx)
    return [Template(await stored_rows(core))]
