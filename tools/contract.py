"""The event contract subscribers rely on, kept under docs/events/:

- ``<service>/<Type>.v<N>.json``: the JSON Schema (2020-12) of each event type's version N (older versions stay), with
  a URI ``$id`` (``shared.core.events.schema_uri``; every event's ``dataschema`` ends with the same path, and every API
  serves the file there: ``shared.edge.schemas``). Published is the consumer view (``consumer_view``): it accepts
  fields it does not know, so a consumer validating with today's copy accepts tomorrow's additive change; the
  producer's schema (``DomainEvent.json_schema``) stays strict and is what the events are checked against;
- ``<service>/asyncapi.json``, ``alerts/``, ``dlq/``, ``auth/``: the topics' AsyncAPI 3 documents (tools/asyncapi.py);
- ``envelope.v1.json``: the CloudEvents envelope;

``python -m tools.contract write`` writes what is new or changed compatibly; ``check`` fails when the code
and the files disagree. The compatibility rules (``changes``): within one schema version a field may be added
when it is optional (not required), and a description may change; removing a field, changing its type,
making a field required, or renaming the type needs a new ``schema_version`` (with an ``upcast``) and a new file.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from shared.core.events import JSON_SCHEMA_DIALECT, registry, schema_uri
from shared.messaging.envelope import cloudevent_json_schema
from shared.ops.settings import SERVICES
from tools import asyncapi

# importing a contract module registers its event types
EVENT_MODULES = (
    "services.leads.events",
    "services.deals.events",
    "services.production.events",
    "services.directory.events",
    "services.agenda.events",
    "services.alerts.events",
)
for _module in EVENT_MODULES:
    importlib.import_module(_module)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "events"


def event_schemas() -> dict[Path, dict[str, Any]]:
    out = {}
    for cls in registry.types("pipelines."):
        _, service, name = cls.event_type.split(".")
        if service in (*SERVICES, "alerts"):  # not the kernel tests' own types
            out[DOCS / service / f"{name}.v{cls.schema_version}.json"] = consumer_view(cls.json_schema())
    for path in sorted(DOCS.glob("*/*.v*.json")):  # the older versions: kept, in today's form (consumer view, URI)
        if path not in out:
            out[path] = older_version(json.loads(path.read_text()))
    return out


def older_version(published: dict[str, Any]) -> dict[str, Any]:
    """A version the code no longer produces (it upcasts it) as published now: its ``$schema`` and URI ``$id``, open."""
    uri = schema_uri(published["x-event-type"], published["x-schema-version"])
    return {**consumer_view(published), "$schema": JSON_SCHEMA_DIALECT, "$id": uri}


def consumer_view(schema: Any) -> Any:
    """``schema`` without ``additionalProperties: false`` at any depth: what a consumer validates with accepts the
    fields a later compatible change adds (a schema-valued ``additionalProperties``, a map's values, stays)."""
    if isinstance(schema, dict):
        return {k: consumer_view(v) for k, v in schema.items() if not (k == "additionalProperties" and v is False)}
    if isinstance(schema, list):
        return [consumer_view(v) for v in schema]
    return schema


def schemas() -> dict[Path, dict[str, Any]]:
    events = event_schemas()
    out = {DOCS / "envelope.v1.json": cloudevent_json_schema(), **events}
    out.update(asyncapi.documents(out))  # the topics' AsyncAPI documents, from the same schemas
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _type(prop: dict[str, Any]) -> Any:
    """What a property accepts, without its words (title, description, examples, defaults)."""
    ignored = {"title", "description", "examples", "default", "x-plaintext"}
    return {k: v for k, v in prop.items() if k not in ignored}


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why ``new`` would break a consumer of ``old`` (empty: compatible). Both are compared as consumer views."""
    old, new = consumer_view(old), consumer_view(new)
    problems = []
    if old.get("x-event-type") != new.get("x-event-type"):
        problems.append(f"the type was renamed from {old.get('x-event-type')} to {new.get('x-event-type')}")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, prop in old_props.items():
        if name not in new_props:
            problems.append(f"field {name!r} was removed")
        elif _type(prop) != _type(new_props[name]):
            problems.append(f"field {name!r} changed type")
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(newly_required):
        problems.append(f"field {name!r} became required" if name in old_props else f"new field {name!r} is required")
    if old.get("$defs") and new.get("$defs") != old.get("$defs"):
        for d, body in old["$defs"].items():
            if d in new.get("$defs", {}) and body != new["$defs"][d]:
                problems += [f"{d}: {p}" for p in changes(body, new["$defs"][d])]
    return problems


def differences() -> list[str]:
    problems = []
    for path, schema in schemas().items():
        name = path.relative_to(DOCS)
        if not path.exists():
            problems.append(f"{name}: missing (run `make schemas`)")
            continue
        published = json.loads(path.read_text())
        if published == schema:
            continue
        broken = changes(published, schema) if "x-event-type" in published else []
        if broken:
            problems.append(
                f"{name}: incompatible with the published version ({'; '.join(broken)}): "
                "bump schema_version and add an upcast"
            )
        else:
            problems.append(f"{name}: changed compatibly: run `make schemas` to publish it")
    return problems


def write() -> list[str]:
    """Write new and compatibly changed files; refuse incompatible changes to a published version."""
    written, refused = [], []
    for path, schema in schemas().items():
        if path.exists():
            published = json.loads(path.read_text())
            if published == schema:
                continue
            broken = changes(published, schema) if "x-event-type" in published else []
            if broken:
                refused.append(f"{path.relative_to(DOCS)}: {'; '.join(broken)}")
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema))
        written.append(str(path.relative_to(DOCS.parent.parent)))
    for r in refused:
        print(f"refused (needs a new schema_version): {r}", file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["write"]:
        for w in write():
            print(f"wrote {w}")
        return 1 if differences() else 0
    problems = differences()
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
