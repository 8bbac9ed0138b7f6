"""A real Jaeger for the tracing tests (decision 0027): built once from its Go module into the ignored cache.

``go.mod`` and ``go.sum`` beside this file pin ``github.com/jaegertracing/jaeger/cmd/jaeger`` at v1.75.0 as a tool of
a module of ours (``go get -tool``); ``install()`` builds it with the machine's Go into
``<cache>/jaeger-<go.sum hash>/jaeger`` (Go's own module and build caches, shared by every checkout), as ``scripts/stack setup``
does: the module proxy once, offline after that. ``Jaeger(directory).start()`` runs it on free loopback ports, in
memory (the OTLP/HTTP receiver, the query API; no other listener), and returns once the query API answers;
``trace(id)`` is one trace from ``/api/traces/<id>``, ``stop()`` ends it. ``python -m testkit.jaeger install``
builds it and says where it is and how long it took.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared.ops.stack import ROOT, free_port

HERE = Path(__file__).resolve().parent
PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"

CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: warn

extensions:
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000

receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}

processors:
  batch:
    timeout: 100ms

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


def cache() -> Path:
    return Path(os.environ.get("PIPELINES_CACHE_DIR") or ROOT / ".cache")


def binary() -> Path:
    """Where the build goes: named by go.sum's hash, so another pin builds anew."""
    digest = hashlib.sha256((HERE / "go.sum").read_bytes()).hexdigest()[:12]
    return cache() / f"jaeger-{digest}" / "jaeger"


def go_env() -> dict[str, str]:
    """Go's own module and build caches (shared by every checkout on the machine, as Go does): a fresh clone on a
    machine that built Jaeger once links it in seconds; only the binary is this checkout's."""
    return os.environ | {
        "GOTOOLCHAIN": "local",  # the machine's Go: no toolchain download
        "GOFLAGS": "-mod=readonly",
        "CGO_ENABLED": "0",
    }


def go_build(out: Path, package: str, cwd: Path) -> Path:
    """``go build`` of ``package`` (in module ``cwd``) into ``out`` unless it exists (one builder at a time)."""
    if out.exists():
        return out
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise RuntimeError("Go is missing: run scripts/stack setup")
    out.parent.mkdir(parents=True, exist_ok=True)
    with (out.parent.parent / f"{out.parent.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.exists():
            partial = out.with_suffix(".partial")
            build = [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(partial), package]
            subprocess.run(build, cwd=cwd, env=go_env(), check=True)
            partial.rename(out)
    return out


def install() -> Path:
    """Build Jaeger unless already built; the binary's path."""
    return go_build(binary(), PACKAGE, HERE)


@dataclass
class Jaeger:
    """One Jaeger process: OTLP/HTTP in on ``otlp_url``, the query API on ``query_url``, traces in memory."""

    directory: Path
    otlp_port: int = field(default_factory=free_port)
    query_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def otlp_url(self) -> str:
        """What ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set to (the exporter adds ``/v1/traces``)."""
        return f"http://127.0.0.1:{self.otlp_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def start(self, timeout: float = 60) -> Jaeger:
        config = self.directory / "jaeger.yaml"
        config.write_text(CONFIG.format(query=self.query_port, query_grpc=free_port(), otlp=self.otlp_port))
        log = (self.directory / "jaeger.log").open("wb")
        self.process = subprocess.Popen(
            [str(install()), "--config", str(config)],
            env=os.environ | {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "none"},  # no spans of its own
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Jaeger stopped: {(self.directory / 'jaeger.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.query_url}/api/services", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"Jaeger did not answer in {timeout} s: see {self.directory / 'jaeger.log'}")

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One trace as the query API gives it (spans, processes), or None while Jaeger has none of it."""
        answer = httpx.get(f"{self.query_url}/api/traces/{trace_id}", timeout=10)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json().get("data") or []
        return found[0] if found else None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def main(argv: list[str]) -> None:
    if argv[:1] != ["install"]:
        raise SystemExit("usage: python -m testkit.jaeger install")
    started = time.monotonic()
    built = binary().exists()
    path = install()
    took = "already built" if built else f"built in {time.monotonic() - started:.0f} s"
    print(f"{path} ({took})")


if __name__ == "__main__":
    main(sys.argv[1:])
