"""``pipelines import`` killed with -9 mid-import and started again (issue 26, decision 0021): the tool, a real
subprocess, sends a generated sheet of deals to the deals service (its app served over HTTP in this process, on
PostgreSQL); it is killed once its checkpoint shows a batch answered; the same command run again resumes after the
checkpoint. Counted from the store: every row's deal exactly once, each with its two facts — nothing lost, nothing
written twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from services.deals import main as deals_main
from shared.core.ids import import_id
from shared.edge.auth import issue_token
from shared.edge.service import serve
from shared.ops.stack import Endpoints, free_port
from testkit.services import TEST_KEYS, drop_schemas, isolated_settings
from testkit.waiting import wait_until

pytestmark = pytest.mark.pg

MAPPING = Path(__file__).parents[1] / "unit" / "imports" / "samples" / "generic-deals.toml"
ROWS = 1100  # three batches of 500 (the last smaller): killed after the first is answered
ROOT = Path(__file__).parents[2]
SCRIPT = """
import sys
from pathlib import Path
from rich.console import Console
from shared.ops.settings import Settings
from tools.importer import run_import
sys.exit(run_import(Settings(), Console(), source="sheet", files=[Path(sys.argv[1])], mapping=Path(sys.argv[2]),
                    dry_run=False, report=Path(sys.argv[3]), owner=None, run_dir=Path(sys.argv[4])))
"""


def sheet(path: Path) -> None:
    lines = ["Mã;Tên cơ hội;Khách hàng;Ngày tạo;Giai đoạn;Đổi giai đoạn;Phụ trách"]
    for n in range(ROWS):
        day = 1 + n % 28
        lines.append(f"K-{n};Cơ hội {n};Khách {n};{day:02d}/03/2025 09:00;Đã liên hệ;{day:02d}/04/2025 10:00;Lan")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class HeldAfterFirstBatch:
    """The deals app, each import batch after the first one answered only after ``hold_s``: the kill lands while
    the import is under way on any machine (a fast one sent every batch in the moment between the first checkpoint
    and the kill)."""

    def __init__(self, app: ASGIApp, hold_s: float = 2.0) -> None:
        self.app, self.hold_s, self.batches = app, hold_s, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/imports/batches":
            self.batches += 1
            if self.batches > 1 and self.hold_s:
                await asyncio.sleep(self.hold_s)
        await self.app(scope, receive, send)


async def test_an_import_killed_with_sigkill_resumes_and_writes_each_row_once(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    settings = isolated_settings(endpoints)
    service = await deals_main.build(settings)
    await service.deals.ensure_default_pipeline()
    port, stop = free_port(), asyncio.Event()
    app = HeldAfterFirstBatch(service.app())
    server = asyncio.create_task(serve(app, "127.0.0.1", port, stop))
    data, report, run_dir = tmp_path / "deals.csv", tmp_path / "report.csv", tmp_path / "run"
    sheet(data)
    token = issue_token(TEST_KEYS, user_id="u-import", roles=["importer"])
    env = os.environ | {
        "PIPELINES_DEALS_API_URL": f"http://127.0.0.1:{port}",
        "PIPELINES_TOKEN": token,
        "PIPELINES_LOG_JSON": "true",
        "COLUMNS": "120",
    }
    command = [sys.executable, "-c", SCRIPT, str(data), str(MAPPING), str(report), str(run_dir)]
    checkpoints = run_dir / "imports"

    def answered() -> int:  # the last row the checkpoint says was answered (-1: the file done)
        for path in checkpoints.glob("*.json") if checkpoints.exists() else []:
            return int(max(json.loads(path.read_text())["files"].values()))
        return 0

    async def some_answered() -> bool:
        return answered() > 0

    store = service.storage.store
    try:
        first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            await wait_until(some_answered, timeout=120, interval=0.05)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
        assert first.returncode == -signal.SIGKILL
        app.hold_s = 0.0
        killed_at = answered()
        landed = {r.stream_id for r in await store.read_streams("deal-")}
        assert 0 < killed_at - 1 <= len(landed) < ROWS  # what the checkpoint says, at least, and not all

        second = await asyncio.to_thread(
            subprocess.run, command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert second.returncode == 0, second.stdout + second.stderr
        assert "resumed past" in second.stdout and "rows/s" in second.stdout  # its summary
        assert "deals.csv: deals, read as CSV, utf-8, delimiter ';'" in second.stdout

        events = await store.read_streams("deal-")
        per_stream = Counter(e.stream_id for e in events)
        expected = {f"deal-{import_id('sheet', 'deal', f'K-{n}')}" for n in range(ROWS)}
        assert set(per_stream) == expected  # nothing lost
        assert set(per_stream.values()) == {2}  # nothing twice: each deal opened once and moved once
        assert len({e.event_id for e in events}) == len(events)
        assert answered() == -1
        assert not report.exists() or report.read_text(encoding="utf-8").count("\n") <= 1  # no bad row
    finally:
        stop.set()
        await server
        await service.close()
        await drop_schemas(settings)
