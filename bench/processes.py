"""Service processes for the benchmarks that measure whole processes (e2e, memory): spawning ``python -m
services.<svc> api|relay|projector`` on isolated settings, waiting until they answer, their memory, and a small
keep-alive HTTP/1.1 client (bench/httpclient.py)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.httpclient import HttpClient as HttpClient  # where the benchmarks import it from
from bench.httpclient import request
from shared.ops.settings import Settings
from shared.ops.stack import free_ports
from testkit.services import process_env, spawn, stop_processes

MODES = ("api", "relay", "projector")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


@dataclass
class ServiceProcesses:
    """One service's processes (each of ``modes``) on these settings; ``ports[mode]`` answers /readyz."""

    settings: Settings
    service: str = "deals"
    modes: tuple[str, ...] = MODES
    extra_env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-logs-")))

    @property
    def api_url(self) -> str:
        mode = "api" if "api" in self.modes else "all"
        return f"http://127.0.0.1:{self.ports[mode]}"

    def pids(self) -> dict[str, int]:
        return {mode: p.pid for mode, p in self.procs.items()}

    async def start(self, within: float = 120.0) -> None:
        self.ports = dict(zip(self.modes, free_ports(len(self.modes)), strict=True))
        for mode in self.modes:
            port = str(self.ports[mode])
            env = process_env(
                self.settings,
                PIPELINES_ALERT_SCAN_SECONDS="30",
                PIPELINES_LOG_LEVEL="WARNING",
                **{f"PIPELINES_{self.service.upper()}_PORT": port, "PIPELINES_OPS_PORT": port},
                **self.extra_env,
            )
            self.procs[mode] = spawn(
                ("-m", f"services.{self.service}", mode), env, self.logs / f"{self.service}-{mode}.log"
            )
        deadline = time.monotonic() + within
        waiting = set(self.modes)
        while waiting:
            for mode in list(waiting):
                if self.procs[mode].poll() is not None:
                    raise RuntimeError(f"{self.service} {mode} exited; see {self.logs}/{self.service}-{mode}.log")
                try:
                    status, _ = await request("127.0.0.1", self.ports[mode], "GET", "/readyz")
                except OSError:
                    continue
                if status == 200:
                    waiting.discard(mode)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.service} {sorted(waiting)} not ready in {within:.0f} s; see {self.logs}")
            await asyncio.sleep(0.3)

    def stop(self) -> None:
        stop_processes(self.procs.values())
        if all(p.returncode in (0, -signal.SIGTERM) for p in self.procs.values()):
            shutil.rmtree(self.logs, ignore_errors=True)  # kept only when a process failed, to be read
