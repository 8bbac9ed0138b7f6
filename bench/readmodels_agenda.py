"""The agenda's events for ``python -m bench readmodels`` (bench/readmodels.py): template activities driven through
the agenda's real handlers — scheduled on a deal, rescheduled, reassigned, completed (one cancelled instead) — and
cloned in bulk by the harness.

Read models timed (those of the agenda's own topic): ``activities``. The reactions that read the agenda's own
events — ``handovers`` (who owns which open activity) and ``erasures`` (which activity is sealed under which
subject) — are measured in their own row. The ``subjects``, ``directory`` replica and ``alerts`` read models read
other topics (the deals', leads', directory's, alerts'): empty here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from bench.readmodels import Template, stored_rows
from services.agenda import domain
from services.agenda.events import activity_stream
from services.agenda.main import AgendaService
from shared.edge.service import ServiceCore
from shared.store.commands import Context

SERVICE = "agenda"
READ_MODELS: tuple[str, ...] = ("activities",)
REACTIONS: tuple[str, ...] = ("handovers", "erasures")
TEMPLATES = 4


async def _template(core: ServiceCore, n: int) -> Template:
    activity, deal = uuid.uuid4(), uuid.uuid4()
    assert isinstance(core, AgendaService)
    agenda = core.agenda
    ctx = Context(actor="u-an")
    due = datetime.now(UTC) + timedelta(days=3 + n)
    place = domain.Placement(owner_id="u-an", team_id="north", data_subject=f"deal:{deal}")
    schedule = domain.Schedule(
        kind="phone", subject_type="deal", subject_id=deal, title=f"Gọi lại khách hàng {n}", notes="hỏi báo giá",
        due_at=due,
    )  # fmt: skip
    await agenda.handle(activity, schedule, ctx, place=place)
    await agenda.handle(activity, domain.Reschedule(due_at=due + timedelta(days=1), reason="khách bận"), ctx)
    reassign = domain.Reassign(owner_id="u-binh", reason="nghỉ phép")
    await agenda.handle(activity, reassign, ctx, place=domain.Placement("u-binh", "north", f"deal:{deal}"))
    end = domain.Cancel(reason="khách huỷ") if n % 4 == 3 else domain.Complete(outcome="đã gọi, hẹn gặp")
    await agenda.handle(activity, end, ctx)
    return Template(rows=await stored_rows(core, [activity_stream(activity)]), ids=(str(activity), str(deal)))


async def templates(core: ServiceCore) -> list[Template]:
    return [await _template(core, n) for n in range(TEMPLATES)]
