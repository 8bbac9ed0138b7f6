"""The real messages the AsyncAPI documents show as examples (docs/events/examples.jsonl, committed).

``python -m tools.asyncapi_examples`` reads every events topic and the alerts topic of the running stack
(``KAFKA_BOOTSTRAP_SERVERS``, e.g. after ``make demo``) from the beginning, without a consumer group, and keeps the
first message of each (type, schemaversion): its topic, partition, offset, key, headers and value, as they were on
the wire (personal fields travel sealed). It keeps the examples already in the file (their ids stay stable) and adds
the types and versions it finds that the file lacks; ``--replace`` starts afresh. Then ``make schemas`` puts them in
the documents.

An older schema version no release writes now (``ActivityLogged`` v1) is never on a new topic. Its example is derived
from a real message of the current version, only when that is exact: the message with the older version's fields
alone (its schema's properties), valid against that version's schema, which the code's own upcast turns back into the
real message's data, field for field. It is marked ``derived_from`` (the real message's version and id) and the
document says so; when no real message qualifies, the older version has no example.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from shared.core.events import registry
from shared.messaging.kafka import read_whole_topic
from shared.ops.settings import SERVICES
from tools.asyncapi import EXAMPLES
from tools.contract import DOCS

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
    for record in list(kept.values()):
        for derived in older_versions(record):
            kept.setdefault(_order(derived), derived)
    return [kept[k] for k in sorted(kept)]


def older_versions(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A real message of its type's current version as each older version of it, where that is exact (above)."""
    value = record["value"]
    if "derived_from" in record or value["type"] not in registry:
        return []
    current = registry.get(value["type"]).schema_version
    if value["schemaversion"] != current:
        return []
    _, service, name = value["type"].split(".")
    out = []
    for old in range(1, current):
        path = DOCS / service / f"{name}.v{old}.json"
        if not path.exists():
            continue
        schema = json.loads(path.read_text())
        data = {k: v for k, v in value["data"].items() if k in schema.get("properties", {})}
        if (
            not Draft202012Validator(schema).is_valid(data)
            or registry.upcast(value["type"], old, data) != value["data"]
        ):
            continue
        dataschema = value.get("dataschema")
        older = value | {"schemaversion": old, "data": data}
        if dataschema:
            older["dataschema"] = dataschema.replace(f"/{name}.v{current}.json", f"/{name}.v{old}.json")
        out.append(record | {"value": older, "derived_from": {"schemaversion": current, "id": value["id"]}})
    return out


def main(argv: list[str]) -> int:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    records = asyncio.run(collect(bootstrap, replace="--replace" in argv))
    EXAMPLES.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records))
    print(f"{len(records)} examples in {EXAMPLES}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
