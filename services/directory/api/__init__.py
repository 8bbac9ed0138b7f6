"""The directory service's HTTP edge: ``app`` (``create_app``), the routes by concern — ``user_commands`` and
``team_commands`` (admin only), ``users`` and ``teams`` (reads, lists and audit trails) — ``rights`` (who may see
what), ``common`` (the service the routes reach, path parameters, lookups) and ``views`` (the JSON answered)."""

from __future__ import annotations

from services.directory.api.app import create_app
from services.directory.api.common import DirectoryAPI

__all__ = ["DirectoryAPI", "create_app"]
