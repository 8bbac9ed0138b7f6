"""The event contract subscribers rely on, kept under docs/events/:

- ``<service>/<Type>.v<N>.json``: the JSON Schema of each event type's version N (older versions stay);
- ``<service>/asyncapi.json``: the service's AsyncAPI 3 document (generated with FastStream);
- ``envelope.v1.json``: the CloudEvents envelope;
- ``auth/asyncapi.json``: the revocation topic's AsyncAPI 3 document (what the sign-in service and the board publish).

``python -m tools.contract write`` writes what is new or changed compatibly; ``check`` fails when the code
and the files disagree. The compatibility rules (``changes``): within one schema version a field may be added
when it is optional (not required), and a description may change; removing a field, changing its type,
making a field required, or renaming the type needs a new ``schema_version`` (with an ``upcast``) and a new file.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel, ConfigDict, Field

from shared.core.events import registry
from shared.messaging.envelope import cloudevent_json_schema
from shared.ops.settings import SERVICES

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
DESCRIPTION = (
    "Each Kafka message is one CloudEvents 1.0 event in structured JSON mode (docs/events/envelope.v1.json); the "
    "payload below is its `data`. Key: the stream id. Fields listed in `x-personal-fields` travel sealed "
    "(`pii:v1:` tokens) and read as null once the person is erased. See docs/SUBSCRIBING.md."
)


def event_schemas() -> dict[Path, dict[str, Any]]:
    out = {}
    for cls in registry.types("pipelines."):
        _, service, name = cls.event_type.split(".")
        if service in (*SERVICES, "alerts"):  # not the kernel tests' own types
            out[DOCS / service / f"{name}.v{cls.schema_version}.json"] = cls.json_schema()
    return out


def asyncapi(service: str) -> dict[str, Any]:
    broker = KafkaBroker("kafka:9092", description="the service's Kafka cluster")
    topic = f"pipelines.{service}.events"
    for cls in registry.types(f"pipelines.{service}."):
        name = cls.event_type.rsplit(".", 1)[1]
        doc = (cls.__doc__ or "").strip()
        broker.publisher(topic, title=name, schema=cls, description=f"{doc}\n\n{DESCRIPTION}".strip())
    spec = AsyncAPI(
        broker, title=f"Pipelines — {service} events", version="1", schema_version="3.0.0", description=DESCRIPTION
    )
    result: dict[str, Any] = spec.to_specification().to_jsonable()
    return result


REVOCATIONS = (
    "The signed-out tokens and sessions (shared/edge/revocation.py, decisions 0014 and 0022): one partition, kept as "
    "long as a token may live (PIPELINES_JWT_MAX_LIFETIME_S) plus an hour. The value is plain JSON (not a CloudEvent). "
    "A subscriber that checks tokens reads the topic from its beginning without a consumer group (it needs every "
    "message, and those published before it started), is not ready until it has read up to the end offset it found "
    "at start, keeps each entry until its `exp` (plus the verifier's leeway), and refuses a token whose `jti`, or "
    "whose `sid` claim, is listed. A message it cannot read is skipped. Written by the sign-in service (the sessions "
    "it ends) and by the web board."
)


class TokenRevoked(BaseModel):
    """One token signed out: refuse the token whose ``jti`` claim is this until ``exp``. Key: the jti."""

    model_config = ConfigDict(extra="forbid")
    jti: str = Field(min_length=1, max_length=128, description="the token's jti claim")
    exp: float = Field(description="the token's expiry, seconds since the epoch: forget the entry after it")


class SessionRevoked(BaseModel):
    """A sign-in session ended (signed out, everywhere, by an admin, by a password reset, the user deactivated):
    refuse every token whose ``sid`` claim is this until ``exp``. Key: ``sid:<sid>``."""

    model_config = ConfigDict(extra="forbid")
    sid: str = Field(min_length=1, max_length=128, description="the session id: the tokens' sid claim")
    exp: float = Field(description="the latest expiry of any token minted for the session, seconds since the epoch")


def revocations_asyncapi() -> dict[str, Any]:
    broker = KafkaBroker("kafka:9092", description="the deployment's Kafka cluster")
    for message in (SessionRevoked, TokenRevoked):
        doc = inspect.cleandoc(message.__doc__ or "")
        broker.publisher("pipelines.auth.revocations", title=message.__name__, schema=message, description=doc)
    spec = AsyncAPI(
        broker,
        title="Pipelines — revoked tokens and sessions",
        version="1",
        schema_version="3.0.0",
        description=REVOCATIONS,
    )
    result: dict[str, Any] = spec.to_specification().to_jsonable()
    return result


def schemas() -> dict[Path, dict[str, Any]]:
    out = {DOCS / "envelope.v1.json": cloudevent_json_schema(), **event_schemas()}
    for service in SERVICES:
        out[DOCS / service / "asyncapi.json"] = asyncapi(service)
    out[DOCS / "auth" / "asyncapi.json"] = revocations_asyncapi()
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _type(prop: dict[str, Any]) -> Any:
    """What a property accepts, without its words (title, description, examples, defaults)."""
    ignored = {"title", "description", "examples", "default", "x-plaintext"}
    return {k: v for k, v in prop.items() if k not in ignored}


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why ``new`` would break a consumer of ``old`` (empty: compatible)."""
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
