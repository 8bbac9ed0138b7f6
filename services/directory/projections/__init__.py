"""The directory's read model: users and teams as lists read them, with the queries that read it.

No personal data in plaintext: a user's name and email are kept as their sealed tokens and opened at query time
(the API opens them for the answer), so an erasure leaves them unreadable here too.
"""

from services.directory.projections.model import DDL, apply_directory, directory
from services.directory.projections.queries import list_teams, list_users

__all__ = ["DDL", "apply_directory", "directory", "list_teams", "list_users"]
