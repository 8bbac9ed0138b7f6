"""``pipelines import hubspot …`` end to end on PostgreSQL: the directory and deals served over HTTP on ports (as
the stack runs them), the tool's own path (``tools.importer.run_import``: the mapping, its HTTP sender with the
importer's token, the checkpoint, the report, the progress bar) over HubSpot's sample export. The rows land as the
oracle of tests/unit/imports/test_source_hubspot.py says (counts, statuses, a deal's times and organisation); the
report names the bad and refused rows; the same command again appends nothing."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from rich.console import Console

from services.deals import main as deals_main
from services.directory import main as directory_main
from shared.core.ids import import_id
from shared.imports.mapping import builtin
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints, free_port
from testkit.import_world import OWNERS, TEAMS, USERS
from testkit.services import bearer, drop_schemas, isolated_settings
from tools.importer import run_import

pytestmark = pytest.mark.pg

FILES = Path(__file__).parents[1] / "fixtures" / "imports" / "hubspot"
SAMPLE = [FILES / f for f in ("deals.csv", "contacts.csv", "companies.csv")]  # any order
ADMIN = bearer("u-admin", "admin", team=None)
IMPORTER = bearer("u-import", "importer", team=None)


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def stack(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Settings, dict[str, str], deals_main.DealsService]]:
    settings = isolated_settings(endpoints)
    directory = await directory_main.build(settings)
    deals = await deals_main.build(settings)
    try:
        async with served(directory.app()) as dir_url, served(deals.app()) as deals_url:
            async with httpx.AsyncClient(base_url=dir_url) as http:
                for team, name in TEAMS.items():
                    assert (await http.post("/teams", json={"team_id": team, "name": name}, headers=ADMIN)).is_success
                for user, team, name in USERS:
                    body = {"user_id": user, "name": name, "email": f"{user[2:]}@example.vn", "team_id": team,
                            "roles": ["sales"], "reason": "the import test's salespeople"}  # fmt: skip
                    assert (await http.post("/users", json=body, headers=ADMIN)).is_success
            monkeypatch.setenv("PIPELINES_TOKEN", IMPORTER["Authorization"].removeprefix("Bearer "))
            urls = {"directory": dir_url, "deals": deals_url}
            yield settings.model_copy(update={"directory_api_url": dir_url, "deals_api_url": deals_url}), urls, deals
    finally:
        await deals.close()
        await directory.close()
        await drop_schemas(settings)


async def test_the_cli_imports_hubspots_sample_once(
    stack: tuple[Settings, dict[str, str], deals_main.DealsService], tmp_path: Path
) -> None:
    settings, urls, deals = stack
    mapping = tmp_path / "hubspot.toml"
    mapping.write_text(builtin("hubspot").read_text(encoding="utf-8") + OWNERS, encoding="utf-8")
    report = tmp_path / "report.csv"
    out = io.StringIO()

    def cli() -> int:
        return run_import(
            settings,
            Console(file=out, width=200),
            source="hubspot",
            files=SAMPLE,
            mapping=mapping,
            dry_run=False,
            report=report,
            owner=None,
            run_dir=tmp_path / "run",
        )

    assert await asyncio.to_thread(cli) == 1  # some rows bad or refused
    lines = list(csv.DictReader(report.open(encoding="utf-8")))
    assert {(r["file"], r["row"]) for r in lines} == {
        ("companies.csv", "7"),
        ("companies.csv", "8"),
        ("contacts.csv", "6"),
        ("contacts.csv", "7"),
        ("contacts.csv", "8"),
        ("deals.csv", "9"),
        ("deals.csv", "10"),
        ("deals.csv", "11"),
        ("deals.csv", "12"),
    }
    summary = out.getvalue()
    assert "HubSpot" in summary and "16" in summary, summary

    async with httpx.AsyncClient(base_url=urls["deals"], headers=ADMIN) as http:
        statuses = {}
        for key in map(str, range(7001, 7008)):
            r = await http.get(f"/deals/{import_id('hubspot', 'deal', key)}")
            assert r.status_code == 200, r.text
            statuses[key] = r.json()["status"]
        won = (await http.get(f"/deals/{import_id('hubspot', 'deal', '7001')}")).json()
    assert statuses == {"7001": "won", "7002": "lost", "7003": "open", "7004": "open", "7005": "won", "7006": "open",
                        "7007": "lost"}  # fmt: skip
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    assert datetime.fromisoformat(won["opened_at"]) == datetime(2025, 2, 4, 10, tzinfo=tz).astimezone(UTC)
    assert datetime.fromisoformat(won["closed_at"]) == datetime(2025, 3, 12, 16, tzinfo=tz).astimezone(UTC)
    assert won["organisation_id"] == str(import_id("hubspot", "organisation", "3101"))

    # the same command again, its checkpoint gone (every row sent again): the good rows answer "already there",
    # nothing is appended
    stored = len(await deals.storage.store.read_streams(""))
    (tmp_path / "run").rename(tmp_path / "run-1")
    assert await asyncio.to_thread(cli) == 1
    assert len(await deals.storage.store.read_streams("")) == stored
