"""The agenda's domain, pure: the ``Activity`` aggregate (``activity``), the commands as requests send them
(``commands``) and the refusals (``errors``)."""

from __future__ import annotations

from services.agenda.domain.activity import (
    CANCELLED,
    DONE,
    SCHEDULED,
    Activity,
    Placement,
    activity_decider,
    decide,
)
from services.agenda.domain.commands import (
    ActivityCommand,
    Cancel,
    Complete,
    EraseNotes,
    Reassign,
    Reschedule,
    Schedule,
)
from services.agenda.domain.errors import AgendaRuleError, InvalidFieldError, NotFoundError

__all__ = [
    "CANCELLED",
    "DONE",
    "SCHEDULED",
    "Activity",
    "ActivityCommand",
    "AgendaRuleError",
    "Cancel",
    "Complete",
    "EraseNotes",
    "InvalidFieldError",
    "NotFoundError",
    "Placement",
    "Reassign",
    "Reschedule",
    "Schedule",
    "activity_decider",
    "decide",
]
