"""The directory's read model: users and teams as lists read them, with the queries that read it.

No personal data in plaintext: a user's name and email are kept as their sealed tokens and opened at query time
(the API opens them for the answer), so an erasure leaves them unreadable here too. Organisations and people
are the ``customers`` read model (``customers``: with the blind index search reads).
"""

from services.directory.projections.customer_queries import (
    duplicates,
    list_organisations,
    list_people,
    person_holding,
)
from services.directory.projections.customers import customers
from services.directory.projections.model import DDL, apply_directory, directory
from services.directory.projections.queries import list_teams, list_users

__all__ = [
    "DDL",
    "apply_directory",
    "customers",
    "directory",
    "duplicates",
    "list_organisations",
    "list_people",
    "list_teams",
    "list_users",
    "person_holding",
]
