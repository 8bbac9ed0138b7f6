"""The benchmarks still run: each, at its tiny size, measures both its path and its baseline and writes its result.

Nothing here is timed or compares speeds (the machines are shared and noisy): `make bench` measures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import BENCHMARKS, main
from shared.ops.stack import Endpoints

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
