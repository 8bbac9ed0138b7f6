"""Issue 20, item 6: request heads are bounded in every HTTP server (shared.edge.httpserver), tested on a real one.

On 0eb7972 twenty 50 MB headers to ``/healthz`` were all read and the API's memory grew from 115 to 485 MB and
stayed. Here the web board's own process (``python -m services.web``: the APIs and ops ports run the same
``shared.edge.service.serve``) runs with ``PIPELINES_MAX_HEADER_BYTES`` and ``PIPELINES_MAX_HEADERS`` lowered, and raw
sockets send it heads over each bound: each is answered 431 (or, while the client is still sending, the connection
is closed on it), the process's memory stays where it was, and requests within the bounds are served as before,
several on one connection.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.ops.stack import free_port
from testkit.services import TEST_JWKS

MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 50
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kb) / 1024

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    port = free_port()
    env = os.environ | {
        "PIPELINES_WEB_PORT": str(port),
        "PIPELINES_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "PIPELINES_MAX_HEADERS": str(MAX_HEADERS),
        "PIPELINES_JWT_PUBLIC_KEYS": TEST_JWKS,
        "PIPELINES_LOG_LEVEL": "ERROR",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # no live feed here: the board serves without it
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.web"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    s = Server(port, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = request(s, b"GET /healthz HTTP/1.1\r\nHost: board\r\nConnection: close\r\n\r\n")
                if status == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the board did not start"
            time.sleep(0.2)
        yield s
    finally:
        process.kill()  # not its shutdown under test (which waits on the live feed's Kafka, not there)
        process.wait(timeout=10)


def request(server: Server, head: bytes) -> tuple[int, bytes]:
    """Send a whole request; its status and body (the connection closed after)."""
    with server.connect() as sock:
        sock.sendall(head)
        return read_response(sock)


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split()[1]), body


def headers(count: int, size: int) -> bytes:
    return b"".join(b"X-Field-%d: %s\r\n" % (i, b"v" * size) for i in range(count))


def get(extra: bytes) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: board\r\n" + extra + b"\r\n"


def flood(server: Server, megabytes: int = 50) -> str:
    """One header of ``megabytes`` MB, sent until the server stops taking it: what it answered."""
    chunk = b"a" * (1024 * 1024)
    with server.connect() as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: board\r\nX-Flood: ")
            for _ in range(megabytes):
                sock.sendall(chunk)
            return "all sent"
        except OSError:  # closed on us: what did it say first?
            pass
        try:
            status, _ = read_response(sock)
        except OSError:
            return "closed"
        return str(status)


def test_a_head_over_the_bounds_answers_431_naming_the_bound(server: Server) -> None:
    status, body = request(server, get(headers(MAX_HEADERS + 1, 10)))
    assert status == 431
    assert json.loads(body) == {
        "type": "urn:pipelines:problem:headers_too_large",
        "title": "Headers too large",
        "status": 431,
        "detail": f"a request may have at most {MAX_HEADERS} header fields",
        "rule": "headers_too_large",
    }
    for head in (get(headers(1, MAX_HEADER_BYTES)), get(headers(40, MAX_HEADER_BYTES // 30))):
        try:
            status, body = request(server, head)
        except ConnectionResetError:
            continue  # closed while the rest of the head was arriving: also refused
        assert status == 431
        assert json.loads(body)["detail"] == f"the request line and headers may be at most {MAX_HEADER_BYTES} bytes"
    long_url = b"GET /healthz?" + b"q" * MAX_HEADER_BYTES + b" HTTP/1.1\r\nHost: board\r\n\r\n"
    with contextlib.suppress(ConnectionResetError):  # closed while the rest was arriving: also refused
        assert request(server, long_url)[0] == 431


def test_heads_within_the_bounds_are_served_several_on_one_connection(server: Server) -> None:
    assert request(server, get(headers(MAX_HEADERS - 5, 100)))[0] == 200
    assert request(server, get(headers(1, MAX_HEADER_BYTES - 200)))[0] == 200
    with server.connect() as sock:  # each request's head counts alone
        for _ in range(4):
            sock.sendall(get(headers(MAX_HEADERS - 5, (MAX_HEADER_BYTES - 500) // MAX_HEADERS)))
            assert read_response(sock)[0] == 200


def test_twenty_50_mb_headers_are_refused_and_leave_no_memory_behind(server: Server) -> None:
    for _ in range(3):  # warm: what a few requests allocate once
        assert request(server, get(b""))[0] == 200
    before = server.rss_mb()
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: flood(server), range(20)))
    assert set(answers) <= {"431", "closed"}, answers
    grew = server.rss_mb() - before
    assert grew < 40, f"the process grew {grew:.0f} MB"
    assert request(server, get(b""))[0] == 200, "and it still serves"


def test_an_idle_keep_alive_connection_outlives_a_clients_own_idle_limit(server: Server) -> None:
    """The server keeps an idle connection longer than httpx (5 s) does, so the client drops it first: a request
    sent on a connection idle 6 s is answered, not reset (shared.edge.service.KEEP_ALIVE_S)."""
    with server.connect() as sock:
        sock.sendall(get(b""))
        assert read_response(sock)[0] == 200
        time.sleep(6)
        sock.sendall(get(b""))
        assert read_response(sock)[0] == 200
