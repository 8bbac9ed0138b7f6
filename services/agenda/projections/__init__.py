"""The agenda's read models: ``activities`` (``model``: its table and the function applying the agenda's events)
and the queries that read it (``queries``: the agenda's buckets, lists)."""

from services.agenda.projections.model import DDL, activities
from services.agenda.projections.queries import agenda, day_bounds, list_activities

__all__ = ["DDL", "activities", "agenda", "day_bounds", "list_activities"]
