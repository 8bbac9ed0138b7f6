"""`scripts/stack` chooses each run dir's ports once, and run dirs set up at the same time never share one.

`scripts/stack ports` runs only the choice (nothing installed or started), so several of them race as several
first `up`s would: separate processes, started together, each finding the same defaults free. The claims file is
the test's own (PIPELINES_PORTS_REGISTRY), not the user's.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from shared.ops.stack import STACK_SCRIPT


def ports_of(text: str) -> dict[str, int]:
    return {name: int(port) for name, _, port in (line.partition("=") for line in text.split())}


def test_run_dirs_set_up_at_once_get_distinct_ports_and_a_kept_ports_file_stays(tmp_path: Path) -> None:
    env = os.environ | {"PIPELINES_PORTS_REGISTRY": str(tmp_path / "claims" / "stack-ports")}
    env.pop("PIPELINES_KAFKA_NODES", None)
    kept = tmp_path / "kept"  # a stopped stack's run dir, set up before the claims file existed: the defaults
    kept.mkdir()
    (kept / "nodes").write_text("1\n")
    (kept / "ports").write_text("PG_PORT=15432\nKAFKA_PORT_1=19092\nCONTROLLER_PORT_1=19093\n")
    first = subprocess.run(
        [str(STACK_SCRIPT), "--run-dir", str(kept), "ports"], env=env, capture_output=True, text=True, check=True
    )
    assert ports_of(first.stdout) == {"PG_PORT": 15432, "KAFKA_PORT_1": 19092, "CONTROLLER_PORT_1": 19093}

    options = [[], [], [], [], ["--nodes", "3"], ["--secure"]]
    racing = [
        subprocess.Popen(
            [str(STACK_SCRIPT), "--run-dir", str(tmp_path / f"run{i}"), *extra, "ports"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, extra in enumerate(options)
    ]
    answers = [p.communicate(timeout=60) for p in racing]
    assert [p.returncode for p in racing] == [0] * len(options), [err for _, err in answers]

    chosen = {f"run{i}": ports_of(out) for i, (out, _) in enumerate(answers)}
    assert len(chosen["run4"]) == 1 + 2 * 3  # PostgreSQL, and Kafka's and its controller's port per node
    assert "KAFKA_TLS_PORT_1" in chosen["run5"]
    for i in range(len(options)):  # what each printed is what its run dir keeps
        assert ports_of((tmp_path / f"run{i}" / "ports").read_text()) == chosen[f"run{i}"]
    chosen["kept"] = ports_of((kept / "ports").read_text())
    assert chosen["kept"] == ports_of(first.stdout)  # the kept run dir's file is as it was
    every = [port for ports in chosen.values() for port in ports.values()]
    assert len(every) == len(set(every)), chosen
    assert all(1024 < port < 32768 for port in every)  # below the ephemeral range

    again = subprocess.run(  # a second choice for a run dir keeps what it has
        [str(STACK_SCRIPT), "--run-dir", str(tmp_path / "run0"), "ports"], env=env, capture_output=True, text=True
    )
    assert ports_of(again.stdout) == chosen["run0"]
