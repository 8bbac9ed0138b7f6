"""The agenda service's HTTP edge: ``app`` (``create_app``), the routes by concern — ``activities`` (the commands,
one activity and its history) and ``queries`` (lists and the agenda) — ``rights`` (who may do what), ``common``
(the service the routes reach, lookups) and ``views`` (the JSON answered)."""

from __future__ import annotations

from services.agenda.api.app import create_app
from services.agenda.api.common import AgendaAPI

__all__ = ["AgendaAPI", "create_app"]
