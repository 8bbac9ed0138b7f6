"""The benchmark's webhook receiver (decision 0026): ``main.go`` beside this file, the same HTTP interface as
``testkit/webhook_receiver.py`` (hooks, control, count, raw), verifying every delivery with the Standard Webhooks
reference Go library (``github.com/standard-webhooks/standard-webhooks/libraries``, pinned by ``go.mod`` and
``go.sum``) — compiled, so a benchmark measures the sender, not a single Python process verifying each request.

Built once, as testkit/jaeger is, with the machine's Go (Go's own module and build caches) into
``<cache>/webhook-receiver-<hash of go.mod, go.sum and main.go>/webhook-receiver`` by ``scripts/stack setup`` (or ``install()``: the same
file, the same lock); ``python -m testkit.webhook_receiver_go install`` builds it and says where it is.
``running(host)`` starts one on a free port and yields its base URL.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shared.ops.stack import free_port
from testkit import jaeger
from testkit.webhook_receiver import HOST

HERE = Path(__file__).resolve().parent
SOURCES = ("go.mod", "go.sum", "main.go")  # what the build is named by: another pin or another source builds anew


def binary() -> Path:
    """Where the build goes: named by the hash of go.mod, go.sum and main.go (scripts/stack names the same file)."""
    digest = hashlib.sha256(b"".join((HERE / f).read_bytes() for f in SOURCES)).hexdigest()[:12]
    return jaeger.cache() / f"webhook-receiver-{digest}" / "webhook-receiver"


def install() -> Path:
    """Build the receiver unless already built (one builder at a time); the binary's path."""
    out = binary()
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
            build = [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(partial), "."]
            subprocess.run(build, cwd=HERE, env=jaeger.go_env(), check=True)
            partial.rename(out)
    return out


@contextmanager
def running(host: str = HOST) -> Iterator[str]:
    """A receiver process on ``host`` and a free port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([str(install()), host, str(port)])
    base = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/control/ping", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the Go webhook receiver did not start") from None
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: list[str]) -> None:
    if argv[:1] != ["install"]:
        raise SystemExit("usage: python -m testkit.webhook_receiver_go install")
    started = time.monotonic()
    built = binary().exists()
    path = install()
    print(f"{path} ({'already built' if built else f'built in {time.monotonic() - started:.1f} s'})")


if __name__ == "__main__":
    main(sys.argv[1:])
