"""Several API worker processes behind one port: ``PIPELINES_API_WORKERS`` (decision 0032, "More commands per core").

``python -m services.<svc> api`` with ``PIPELINES_API_WORKERS=N`` (N > 1) becomes a supervisor: it starts N
processes of ``python -m services.<svc> api``, each a whole API process (its own pools, state cache, revocations
and JWKS, startup and shutdown as a single API process), each listening on the service's port with
``SO_REUSEPORT`` so the kernel spreads new connections over them. The supervisor serves nothing itself. It passes
SIGTERM and SIGINT on to every worker and waits for all of them; when a worker exits on its own, it stops the
others and exits with that worker's status, so the orchestrator restarts the whole (no half-sized API lingers).

Metrics: each worker writes its samples to files in a directory the supervisor makes
(``PROMETHEUS_MULTIPROC_DIR``, prometheus_client's multi-process mode) and any worker's ``/metrics`` answers the sum
of all of them (gauges per worker, labelled ``pid``), so one scrape of the port sees the whole API;
``pipelines_http_worker_requests_total{worker}`` counts each worker's requests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import FrameType

WORKER_ENV = "PIPELINES_API_WORKER"  # set by the supervisor in each worker it starts: the worker's index
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multi-process mode
POLL_S = 0.2


def worker() -> str | None:
    """This process's worker index when a supervisor started it, else None."""
    return os.environ.get(WORKER_ENV)


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT``: every worker binds its own, the kernel spreads
    new connections over them (only processes of the same user may share the port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def supervise(service: str, workers: int, argv: list[str] | None = None) -> int:
    """Run ``workers`` API processes of ``service`` until a signal (or one of them exits); their exit status."""
    metrics = tempfile.mkdtemp(prefix=f"pipelines-{service}-api-metrics-")
    command = argv or [sys.executable, "-m", f"services.{service}", "api"]
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for i in range(workers):
            if stopping:
                break
            env = {**os.environ, WORKER_ENV: str(i), METRICS_DIR_ENV: metrics}
            procs.append(subprocess.Popen(command, env=env))
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(POLL_S)
        if not stopping:  # one exited on its own: stop the rest
            forward(signal.SIGTERM, None)
        codes = [p.wait() for p in procs]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for p in procs:  # an exception above: none is left behind
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(metrics, ignore_errors=True)
    failed = [c for c in codes if c not in (0, -signal.SIGTERM, -signal.SIGINT)]
    return (128 - failed[0] if failed[0] < 0 else failed[0]) if failed else 0  # killed by signal N: 128 + N
