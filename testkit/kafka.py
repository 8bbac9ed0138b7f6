"""Reading a whole topic back, for comparing it with the store."""

from __future__ import annotations

from shared.messaging.envelope import CloudEvent
from shared.messaging.kafka import read_whole_topic


async def read_topic(bootstrap: str, topic: str, *, timeout: float = 60.0) -> list[tuple[int, CloudEvent]]:
    """Every message now in the topic, as (partition, envelope), each partition in its order."""
    return [(p, CloudEvent.from_kafka(value)) for p, value in await _records(bootstrap, topic, timeout)]


async def raw_messages(bootstrap: str, topic: str, *, timeout: float = 60.0) -> list[bytes]:
    """Every message's key, headers and value, as bytes (for scanning a topic for traces of data)."""
    return [value for _, value in await _records(bootstrap, topic, timeout, whole=True)]


async def _records(bootstrap: str, topic: str, timeout: float, *, whole: bool = False) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    for r in await read_whole_topic(bootstrap, topic, timeout_s=timeout):
        value = r.value or b""
        if whole:
            value = b"|".join([r.key or b"", *(v for _, v in r.headers), value])
        out.append((r.partition, value))
    return out


def by_stream(messages: list[tuple[int, CloudEvent]]) -> dict[str, list[int]]:
    """Each stream's versions in the order the topic holds them."""
    streams: dict[str, list[int]] = {}
    for _, e in messages:
        streams.setdefault(e.streamid, []).append(e.streamversion)
    return streams
