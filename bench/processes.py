"""Service processes for the benchmarks that measure whole processes (e2e, memory): spawning ``python -m
services.<svc> api|relay|projector`` on isolated settings, waiting until they answer, their memory, and a small
keep-alive HTTP/1.1 client cheap enough to offer 1,000 requests/s from one Python process."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.ops.settings import Settings
from shared.ops.stack import ROOT, free_port
from testkit.services import process_env

MODES = ("api", "relay", "projector")
IDLE_S = 2.0  # a keep-alive connection idle longer is not reused


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
        self.ports = {mode: free_port() for mode in self.modes}
        for mode in self.modes:
            port = str(self.ports[mode])
            env = process_env(
                self.settings,
                PIPELINES_ALERT_SCAN_SECONDS="30",
                PIPELINES_LOG_LEVEL="WARNING",
                **{f"PIPELINES_{self.service.upper()}_PORT": port, "PIPELINES_OPS_PORT": port},
                **self.extra_env,
            )
            log = (self.logs / f"{self.service}-{mode}.log").open("wb")
            self.procs[mode] = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.service}", mode],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
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
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if all(p.returncode in (0, -signal.SIGTERM) for p in self.procs.values()):
            shutil.rmtree(self.logs, ignore_errors=True)  # kept only when a process failed, to be read


# ---------------------------------------------------------------------------------------------- HTTP client
async def request(host: str, port: int, method: str, path: str) -> tuple[int, bytes]:
    """One request on a new connection (readiness checks)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        return await _read_response(reader)
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


class HttpClient:
    """Keep-alive HTTP/1.1 connections to one server, opened as needed (up to ``limit``) and reused.

    httpx costs about a millisecond of CPU a request; this costs a tenth of that, so the client is not what
    limits a benchmark offering a thousand requests a second on a two-core machine."""

    def __init__(self, url: str, headers: dict[str, str], limit: int = 256) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(limit)

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return await self.send("POST", path, body)

    async def send(
        self, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One request (a JSON body, or none) on a kept-alive connection: its status and its JSON answer
        (``headers``: this request's besides the client's, e.g. another user's token)."""
        data = json.dumps(body).encode() if body is not None else b""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}{extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode()
        async with self.slots:
            while self.idle and self.idle[-1][2] < time.monotonic() - IDLE_S:
                self.idle.pop()[1].close()  # before the server closes it (uvicorn: after 5 s)
            reader, writer, _ = (
                self.idle.pop() if self.idle else (*await asyncio.open_connection(self.host, self.port), 0)
            )
            try:
                writer.write(head + data)
                status, raw = await _read_response(reader)
            except BaseException:
                writer.close()
                raise
            self.idle.append((reader, writer, time.monotonic()))
        return status, json.loads(raw) if raw else {}

    async def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()
