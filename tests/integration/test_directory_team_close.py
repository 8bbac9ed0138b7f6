"""Closing a team counts its active users over every committed event of the directory's users, even while an
older transaction is still open somewhere in the cluster (a projector's batch, another service's command): the
tailing reader's ``read_all`` hides what committed after it, so a user moved out a moment before read as still in
the team and the close was refused 409 ``team_not_empty`` (seen in CI: test_directory_users_and_teams)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from services.directory import domain
from services.directory.handlers import Directory
from shared.edge.auth import ROLES
from shared.store.commands import Context
from shared.store.postgres import PostgresEventStore

pytestmark = [pytest.mark.pg]
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
ADMIN = Context(actor="u-admin")


async def test_a_team_emptied_a_moment_ago_closes_while_an_older_transaction_is_open(
    pg_store: PostgresEventStore, pg_pool: asyncpg.Pool
) -> None:
    directory = Directory(pg_store, lambda: NOW, ROLES)
    for team in ("north", "south"):
        await directory.handle_team(team, domain.CreateTeam(team_id=team, name=team.title()), ADMIN)
    user = domain.RegisterUser(user_id="u-hoa", name="Hoa", email="hoa@example.vn", team_id="south", roles=("sales",))
    await directory.handle_user("u-hoa", user, ADMIN)
    async with pg_pool.acquire() as older, older.transaction():
        await older.fetchval("SELECT pg_current_xact_id()")  # an id older than the move's, held open
        await directory.handle_user("u-hoa", domain.MoveToTeam(team_id="north", reason="south merged"), ADMIN)
        assert await directory.active_members("south") == 0
        closed = await directory.handle_team("south", domain.CloseTeam(reason="merged into north"), ADMIN)
        assert closed.version == 2
    assert await directory.active_members("north") == 1
