"""A TCP proxy between Kafka clients and a real broker that fails chosen requests on the wire.

A fault test needs Kafka itself to misbehave the way a network or a broker does, not a patched client: the proxy
reads Kafka's frames (a 4-byte big-endian size, then a request header: api_key int16, api_version int16,
correlation_id int32, client_id string) and forwards them untouched, except the requests a test names:

- ``close``: the connection is closed before the request is forwarded (the broker never sees it);
- ``lose_ack``: the request is forwarded, the broker's answer is dropped and the connection closed (the write
  happened; the client cannot know it);
- ``fail``: the request is answered with a non-retriable error (``TOPIC_AUTHORIZATION_FAILED``, as after an ACL
  change) without being forwarded (Produce only);
- ``fail_after_write``: forwarded, and the broker's answer replaced by that error (written, reported failed);
- ``hold``: neither forwarded nor answered, and the connection stalled until ``release()`` (then closed).

Clients learn the brokers' addresses from Metadata and FindCoordinator answers, so the proxy rewrites them: every
broker gets a listening port of the proxy (aiokafka speaks the non-flexible versions of both, Metadata v0–v5 and
FindCoordinator v0–v2, which is what is parsed here). Every request is expected to be answered (no Produce with
``acks=0``: the answers are matched to the requests in order)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

PRODUCE, METADATA, OFFSET_COMMIT, FIND_COORDINATOR = 0, 3, 8, 10
ACTIONS = ("close", "lose_ack", "fail", "fail_after_write", "hold")
FAIL_ERROR = 29  # TOPIC_AUTHORIZATION_FAILED: not retriable, so the producer reports it instead of retrying


@dataclass(frozen=True)
class Fault:
    api_key: int
    nth: int  # the nth request of this api key (from 1, across connections) among those of matching clients
    action: str
    client_id: str = ""  # only requests of clients whose id starts with this count


@dataclass(frozen=True)
class Hit:
    """A fault that fired: on which request, and for Produce the partitions it carried."""

    fault: Fault
    client_id: str
    partitions: tuple[tuple[str, int], ...] = ()


@dataclass
class _Pending:
    correlation_id: int
    api_key: int
    api_version: int
    action: str | None = None
    answer: bytes | None = None  # an answer of the proxy's own, sent in this request's turn


@dataclass
class KafkaProxy:
    """``await start(bootstrap)`` returns the proxy's bootstrap address; ``faults`` may change at any time."""

    faults: list[Fault] = field(default_factory=list)
    seen: Counter[tuple[int, str]] = field(default_factory=Counter)  # (api key, client prefix of a fault) → count
    hits: list[Hit] = field(default_factory=list)
    requests: Counter[int] = field(default_factory=Counter)  # api key → requests forwarded or failed
    on_hit: Callable[[Hit], None] | None = None  # called as a fault fires, before the request is dealt with
    _ports: dict[tuple[str, int], int] = field(default_factory=dict)  # a broker's address → the proxy's port
    _servers: list[asyncio.Server] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, bootstrap: str) -> str:
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        return f"127.0.0.1:{await self._port_for(host, int(port))}"

    def release(self) -> None:
        """Held requests are let go (dropped, their connections closed); no request is held from now on."""
        self.faults = [f for f in self.faults if f.action != "hold"]
        self._released.set()

    async def close(self) -> None:
        for s in self._servers:
            s.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for s in self._servers:
            with contextlib.suppress(Exception):
                await s.wait_closed()

    async def _port_for(self, host: str, port: int) -> int:
        if (host, port) not in self._ports:

            async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                task = asyncio.current_task()
                assert task is not None
                self._tasks.add(task)
                try:
                    await self._connection(r, w, host, port)
                except asyncio.CancelledError:
                    w.close()  # the proxy closes
                finally:
                    self._tasks.discard(task)

            server = await asyncio.start_server(accept, "127.0.0.1", 0)
            self._servers.append(server)
            self._ports[host, port] = server.sockets[0].getsockname()[1]
        return self._ports[host, port]

    def _fault_for(self, api_key: int, client_id: str) -> Fault | None:
        counted: set[str] = set()
        hit = None
        for f in self.faults:
            if f.api_key != api_key or not client_id.startswith(f.client_id):
                continue
            if f.client_id not in counted:
                counted.add(f.client_id)
                self.seen[api_key, f.client_id] += 1
            if f.action == "hold" or self.seen[api_key, f.client_id] == f.nth:
                hit = hit or f
        return hit

    async def _connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, host: str, port: int
    ) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        pending: deque[_Pending] = deque()
        lock = asyncio.Lock()
        down = asyncio.create_task(self._answers(broker_r, client_w, pending, lock))
        try:
            while True:
                frame = await _read_frame(client_r)
                api_key, api_version, correlation_id = struct.unpack(">hhi", frame[:8])
                client_id = _client_id(frame)
                fault = self._fault_for(api_key, client_id)
                self.requests[api_key] += 1
                p = _Pending(correlation_id, api_key, api_version, fault.action if fault else None)
                if fault is not None:
                    parts = _produce_partitions(frame, api_version) if api_key == PRODUCE else ()
                    self.hits.append(Hit(fault, client_id, tuple((t, i) for t, i, _ in parts)))
                    if self.on_hit is not None:
                        self.on_hit(self.hits[-1])
                    if fault.action == "close":
                        return
                    if fault.action == "hold":
                        await self._released.wait()
                        return
                    if fault.action in ("fail", "fail_after_write"):
                        assert api_key == PRODUCE, f"{fault.action} answers Produce requests only"
                        p.answer = _produce_error(correlation_id, api_version, parts)
                async with lock:
                    if p.action == "fail" and not pending:
                        client_w.write(_frame(p.answer or b""))
                        continue
                    pending.append(p)
                    if p.action != "fail":
                        broker_w.write(_frame(frame))
                        await broker_w.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            down.cancel()
            await asyncio.gather(down, return_exceptions=True)
            for w in (client_w, broker_w):
                w.close()

    async def _answers(
        self,
        broker_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        pending: deque[_Pending],
        lock: asyncio.Lock,
    ) -> None:
        """The broker's answers, in order, each after the proxy's own answers that come before it."""
        try:
            while True:
                frame = await _read_frame(broker_r)
                async with lock:
                    p = pending.popleft()
                    assert struct.unpack(">i", frame[:4])[0] == p.correlation_id, "answers out of order"
                    if p.action == "lose_ack":
                        client_w.close()
                        return
                    if p.action == "fail_after_write":
                        frame = p.answer or b""
                    elif p.api_key in (METADATA, FIND_COORDINATOR):
                        frame = await self._rewrite(frame, p)
                    client_w.write(_frame(frame))
                    while pending and pending[0].action == "fail":
                        client_w.write(_frame(pending.popleft().answer or b""))
                await client_w.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            client_w.close()

    async def _rewrite(self, frame: bytes, p: _Pending) -> bytes:
        """The answer with every broker's address replaced by the proxy's port for it."""
        r = _Reader(frame, 4)
        if p.api_key == METADATA:
            if p.api_version >= 3:
                r.take(4)  # throttle_time_ms
            out = bytearray(frame[: r.at])
            count = r.int32()
            out += struct.pack(">i", count)
            for _ in range(count):
                node, host, port = r.int32(), r.string(), r.int32()
                out += (
                    struct.pack(">i", node) + _string("127.0.0.1") + struct.pack(">i", await self._port_for(host, port))
                )
                if p.api_version >= 1:
                    start = r.at
                    r.string()  # rack
                    out += frame[start : r.at]
            return bytes(out + frame[r.at :])
        assert p.api_version <= 2, f"FindCoordinator v{p.api_version} is not parsed here"
        if p.api_version >= 1:
            r.take(4)
        r.take(2)  # error_code
        if p.api_version >= 1:
            r.string()  # error_message
        r.int32()  # node_id
        head, host, port = frame[: r.at], r.string(), r.int32()
        if not host:  # an error answer: no coordinator
            return frame
        return head + _string("127.0.0.1") + struct.pack(">i", await self._port_for(host, port)) + frame[r.at :]


class _Reader:
    def __init__(self, data: bytes, at: int = 0) -> None:
        self.data, self.at = data, at

    def take(self, n: int) -> bytes:
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def int16(self) -> int:
        return int(struct.unpack(">h", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def string(self) -> str:
        n = self.int16()
        return "" if n < 0 else self.take(n).decode()


async def _read_frame(r: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await r.readexactly(4))
    return await r.readexactly(size)


def _frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _client_id(frame: bytes) -> str:
    return _Reader(frame, 8).string()


def _produce_partitions(frame: bytes, version: int) -> list[tuple[str, int, int]]:
    """(topic, partition, bytes of records) of a Produce request (v0–v8, the non-flexible versions)."""
    r = _Reader(frame, 8)
    r.string()  # client_id
    if version >= 3:
        r.string()  # transactional_id
    r.take(6)  # acks, timeout
    out = []
    for _ in range(r.int32()):
        topic = r.string()
        for _ in range(r.int32()):
            partition, size = r.int32(), r.int32()
            r.take(max(size, 0))
            out.append((topic, partition, size))
    return out


def _produce_error(correlation_id: int, version: int, parts: list[tuple[str, int, int]]) -> bytes:
    """A Produce answer (v0–v8) failing every partition of the request with ``FAIL_ERROR``."""
    topics: dict[str, list[int]] = {}
    for topic, partition, _ in parts:
        topics.setdefault(topic, []).append(partition)
    out = bytearray(struct.pack(">ii", correlation_id, len(topics)))
    for topic, partitions in topics.items():
        out += _string(topic) + struct.pack(">i", len(partitions))
        for partition in partitions:
            out += struct.pack(">ihq", partition, FAIL_ERROR, -1)
            if version >= 2:
                out += struct.pack(">q", -1)  # log_append_time_ms
            if version >= 5:
                out += struct.pack(">q", -1)  # log_start_offset
            if version >= 8:
                out += struct.pack(">ih", 0, -1)  # record_errors, error_message
    if version >= 1:
        out += struct.pack(">i", 0)  # throttle_time_ms
    return bytes(out)
