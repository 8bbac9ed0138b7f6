"""The real messages the AsyncAPI documents show as examples (docs/events/examples.jsonl, committed).

``python -m tools.asyncapi_examples`` reads every events topic and the alerts topic of the running stack
(``KAFKA_BOOTSTRAP_SERVERS``, e.g. after ``make demo``) from the beginning, without a consumer group, and keeps the
first message of each (type, schemaversion): its topic, partition, offset, key, headers and value, as they were on
the wire (personal fields travel sealed). It keeps the examples already in the file (their ids stay stable) and adds
the types and versions it finds that the file lacks; ``--replace`` starts afresh. Then ``make schemas`` puts them in
the documents.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from shared.messaging.kafka import read_whole_topic
from shared.ops.settings import SERVICES
from tools.asyncapi import EXAMPLES

TOPICS = [*(f"pipelines.{s}.events" for s in SERVICES), "pipelines.alerts"]


def _record(r: Any) -> dict[str, Any]:
    return {
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "key": r.key.decode() if r.key is not None else None,
        "headers": {k: v.decode() for k, v in r.headers},
        "value": json.loads(r.value),
    }


def _order(record: dict[str, Any]) -> tuple[str, str, int]:
    return record["topic"], record["value"]["type"], record["value"]["schemaversion"]


async def collect(bootstrap: str, replace: bool = False) -> list[dict[str, Any]]:
    kept: dict[tuple[str, str, int], dict[str, Any]] = {}
    if EXAMPLES.exists() and not replace:
        kept = {_order(r): r for r in map(json.loads, EXAMPLES.read_text().splitlines())}
    for topic in TOPICS:
        for record in map(_record, await read_whole_topic(bootstrap, topic)):
            kept.setdefault(_order(record), record)
    return [kept[k] for k in sorted(kept)]


def main(argv: list[str]) -> int:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    records = asyncio.run(collect(bootstrap, replace="--replace" in argv))
    EXAMPLES.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records))
    print(f"{len(records)} examples in {EXAMPLES}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
