"""The API workers' supervisor (shared.edge.workers) on stand-in worker processes: each started with its index and
the shared metrics directory; one exiting on its own stops the others and its status is the supervisor's; the
directory is removed. (Real API workers sharing a port: tests/integration/test_api_workers.py.)"""

from __future__ import annotations

import sys
from pathlib import Path

from shared.edge.workers import METRICS_DIR_ENV, WORKER_ENV, supervise

WORKER = f"""
import os, signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
index = os.environ["{WORKER_ENV}"]
def stopped(*_):
    (out / "stopped").mkdir(exist_ok=True)
    (out / "stopped" / index).touch()
    sys.exit(0)
signal.signal(signal.SIGTERM, stopped)
(out / index).write_text(os.environ["{METRICS_DIR_ENV}"])
if index == "0":  # once the others are up and listening for SIGTERM
    while not ((out / "1").exists() and (out / "2").exists()):
        time.sleep(0.05)
    sys.exit(3)
time.sleep(60)
"""


def test_a_worker_exiting_stops_the_others_with_its_status(tmp_path: Path) -> None:
    assert supervise("deals", 3, [sys.executable, "-c", WORKER, str(tmp_path)]) == 3
    assert {p.name for p in (tmp_path / "stopped").iterdir()} == {"1", "2"}  # SIGTERM to the others, not waited for
    seen = {p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file()}
    assert set(seen) == {"0", "1", "2"}
    assert len(set(seen.values())) == 1  # one metrics directory for all of them
    assert not Path(next(iter(seen.values()))).exists()  # removed once they stopped
