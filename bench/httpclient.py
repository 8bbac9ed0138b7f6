"""A small keep-alive HTTP/1.1 client cheap enough to offer 1,000 requests/s from one Python process, and the
one-shot request of the readiness checks. Standard library only: the load generator's process (bench/loadgen.py)
imports it and starts in a fraction of a second, not the seconds the service's modules take."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

IDLE_S = 2.0  # a keep-alive connection idle longer is not reused
RETRY_AFTER_MAX_S = 10.0  # the longest a retrying client waits as told (decision 0032's busy answer says 1 or 2 s)


async def request(host: str, port: int, method: str, path: str) -> tuple[int, bytes]:
    """One request on a new connection (readiness checks)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status, body, _ = await _read_response(reader)
        return status, body
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, float | None]:
    """Status, body and ``Retry-After`` (seconds; None when absent)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, retry_after = 0, None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "retry-after" and value.strip().isdigit():
            retry_after = float(value)
    body = await reader.readexactly(length) if length else b""
    return status, body, retry_after


class HttpClient:
    """Keep-alive HTTP/1.1 connections to one server, opened as needed (up to ``limit``) and reused.

    httpx costs about a millisecond of CPU a request; this costs a tenth of that, so the client is not what
    limits a benchmark offering a thousand requests a second on a two-core machine.

    ``retries``: a 503 with ``Retry-After`` (the API's busy answer, decision 0032) is sent again after the seconds it
    says, up to that many times, as a client of the system is told to; ``retried`` counts those answers. 0 (the
    default): every answer is returned as it came (the overload benchmark counts the 503s themselves)."""

    def __init__(self, url: str, headers: dict[str, str], limit: int = 256, retries: int = 0) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(limit)
        self.retries, self.retried = retries, 0

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return await self.send("POST", path, body)

    async def send(
        self, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One request (a JSON body, or none) on a kept-alive connection: its status and its JSON answer
        (``headers``: this request's besides the client's, e.g. another user's token); a 503 with ``Retry-After``
        sent again as told, up to ``retries`` times."""
        data = json.dumps(body).encode() if body is not None else b""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}{extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode()
        for attempt in range(self.retries + 1):
            status, raw, retry_after = await self._exchange(head + data)
            if status != 503 or retry_after is None or attempt == self.retries:
                break
            self.retried += 1
            await asyncio.sleep(min(retry_after, RETRY_AFTER_MAX_S))
        return status, json.loads(raw) if raw else {}

    async def _exchange(self, request: bytes) -> tuple[int, bytes, float | None]:
        async with self.slots:
            while self.idle and self.idle[-1][2] < time.monotonic() - IDLE_S:
                self.idle.pop()[1].close()  # before the server closes it (uvicorn: after 5 s)
            reader, writer, _ = (
                self.idle.pop() if self.idle else (*await asyncio.open_connection(self.host, self.port), 0)
            )
            try:
                writer.write(request)
                answer = await _read_response(reader)
            except BaseException:
                writer.close()
                raise
            self.idle.append((reader, writer, time.monotonic()))
        return answer

    async def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()
