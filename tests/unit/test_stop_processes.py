"""testkit.services.stop_processes, the one "SIGTERM, wait, kill" of the tests and the benchmarks: a process that
stops on SIGTERM is left to stop; one that ignores it is killed when the wait is over, and reaped (no zombie)."""

from __future__ import annotations

import signal
import subprocess
import sys

from testkit.services import stop_processes

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
)
STOPS_ON_SIGTERM = "import time; print('ready', flush=True); time.sleep(60)"


def started(code: str) -> subprocess.Popen[bytes]:
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline() == b"ready\n"  # its signal handling is set
    return p


def test_a_process_ignoring_sigterm_is_killed_and_reaped_the_others_stop_on_their_own() -> None:
    stubborn, polite = started(IGNORES_SIGTERM), started(STOPS_ON_SIGTERM)
    try:
        stop_processes((p for p in (stubborn, polite)), wait_s=0.5)  # any iterable
        assert polite.returncode == -signal.SIGTERM
        assert stubborn.returncode == -signal.SIGKILL  # waited for after the kill: reaped
    finally:
        for p in (stubborn, polite):
            if p.poll() is None:
                p.kill()
                p.wait()
            assert p.stdout is not None
            p.stdout.close()
