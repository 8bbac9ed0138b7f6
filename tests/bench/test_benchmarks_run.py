"""The benchmarks still run: each, at its tiny size, measures both its path and its baseline and writes its result.

Nothing here is timed or compares speeds (the machines are shared and noisy): `make bench` measures.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import BENCHMARKS, main
from bench.common import RESULTS
from shared.ops.stack import ROOT, Endpoints

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.timeout(900)
async def test_every_benchmark_runs_at_its_quick_size(endpoints: Endpoints, tmp_path: Path) -> None:
    assert await main(list(BENCHMARKS), quick=True, out=tmp_path, endpoints=endpoints) == 0
    summary = (tmp_path / "README.md").read_text()
    assert "cores" in summary and "PostgreSQL" in summary and "Apache Kafka" in summary
    for name in BENCHMARKS:
        result = json.loads((tmp_path / f"{name}.json").read_text())
        assert result["rows"], f"{name} measured nothing"
        assert result["machine"]["cores"] >= 1
        assert all(isinstance(t["met"], bool) for t in result["targets"])
    floor = json.loads((tmp_path / "rebuild.json").read_text())["data"]["small"]["floor_events_per_s"]
    assert len(floor) == 6 and all(v > 0 for v in floor.values()), floor  # 4 steps, and 2 with the fast envelope
    rebuilt = json.loads((tmp_path / "rebuild.json").read_text())["data"]["small"]
    assert rebuilt["events_per_s"]["workers_1"] > 0 and rebuilt["events_per_s"]["workers_2"] > 0, rebuilt
    assert rebuilt["boards_equal_workers"] is True  # the 2 worker processes built the in-process rebuild's tables


def run_bench(endpoints: Endpoints, *args: str) -> Path:
    """``python -m bench append --quick ARGS`` on ``endpoints``; the directory it says its results went to."""
    env = {
        **os.environ,
        "DATABASE_URL": endpoints.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench", "append", "--quick", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    said = re.findall(r"^results in (.+)$", done.stdout, re.MULTILINE)
    assert len(said) == 1, done.stdout
    out = Path(said[0])
    assert json.loads((out / "append.json").read_text())["rows"]
    return out


@pytest.mark.timeout(600)
def test_a_quick_run_never_writes_over_the_kept_results(endpoints: Endpoints, tmp_path: Path) -> None:
    kept = (RESULTS / "append.json").read_bytes()
    out = run_bench(endpoints)
    try:
        assert out.resolve() != RESULTS.resolve() and RESULTS.resolve() not in out.resolve().parents
        assert (RESULTS / "append.json").read_bytes() == kept
    finally:
        shutil.rmtree(out)
    assert run_bench(endpoints, "--out", str(tmp_path / "chosen")) == tmp_path / "chosen"
    assert (RESULTS / "append.json").read_bytes() == kept
