"""The board's processes, shared by every Chromium test of it (tests/e2e/web_world.py): started once per run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.ops.stack import Endpoints
from tests.e2e.web_world import Board, board_world


@pytest.fixture(scope="session")
async def board(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Board]:
    async with board_world(endpoints, tmp_path_factory.mktemp("web-logs")) as world:
        yield world
