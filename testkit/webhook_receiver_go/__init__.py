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

import hashlib
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testkit import jaeger, webhook_receiver
from testkit.webhook_receiver import HOST

HERE = Path(__file__).resolve().parent
SOURCES = ("go.mod", "go.sum", "main.go")  # what the build is named by: another pin or another source builds anew


def binary() -> Path:
    """Where the build goes: named by the hash of go.mod, go.sum and main.go (scripts/stack names the same file)."""
    digest = hashlib.sha256(b"".join((HERE / f).read_bytes() for f in SOURCES)).hexdigest()[:12]
    return jaeger.cache() / f"webhook-receiver-{digest}" / "webhook-receiver"


def install() -> Path:
    """Build the receiver unless already built (one builder at a time); the binary's path."""
    return jaeger.go_build(binary(), ".", HERE)


@contextmanager
def running(host: str = HOST) -> Iterator[str]:
    """A receiver process on ``host`` and a free port; yields its base URL."""
    with webhook_receiver.running(host, (str(install()),)) as base:
        yield base


def main(argv: list[str]) -> None:
    if argv[:1] != ["install"]:
        raise SystemExit("usage: python -m testkit.webhook_receiver_go install")
    started = time.monotonic()
    built = binary().exists()
    path = install()
    print(f"{path} ({'already built' if built else f'built in {time.monotonic() - started:.1f} s'})")


if __name__ == "__main__":
    main(sys.argv[1:])
