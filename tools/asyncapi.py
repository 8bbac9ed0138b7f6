"""The AsyncAPI 3.0 documents that describe the wire, one per topic family, under docs/events/:

- ``<service>/asyncapi.json``: the service's events topic (``pipelines.<service>.events``);
- ``alerts/asyncapi.json``: the alerts topic (``pipelines.alerts``), every service's ``pipelines.alerts.*`` events;
- ``dlq/asyncapi.json``: the dead-letter topics (``pipelines.<service>.dlq``), one channel each;
- ``auth/asyncapi.json``: the revoked tokens and sessions (``pipelines.auth.revocations``, plain JSON).

Each channel is one topic (``address`` = its name) listing every message it carries: every version of every event
type, not only the latest. An event message's payload is the whole Kafka value: the CloudEvent envelope
(docs/events/envelope.v1.json, its properties copied into each message's payload: the model generator merges an
``allOf`` into the object it points at, so a shared envelope would mix every message's fields) with its ``data``
by ``$ref`` to the published schema file (``./<Type>.v<N>.json``, under a title of its own per version); its headers (``content-type``), its ``correlationId`` (``$message.payload#/correlationid``), its Kafka key (the
stream id) and an example: a real message of that type and version (``docs/events/examples.jsonl``, taken from a
local run by ``python -m tools.asyncapi_examples``: personal fields travel sealed). Channel bindings give the
partitions, replicas and retention the services declare (replicas and partitions as deploy/k8s/pipelines.yaml sets
them); each channel has one ``receive`` operation (what a subscriber does) naming the consumer group conventions.
Servers: the local stack (``scripts/stack up``, plaintext) and a deployment's brokers (SASL/SCRAM-SHA-512 over TLS).
``tools.contract`` writes and checks them with the schema files (``make schemas``).
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.ops.settings import SERVICES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "events"
EXAMPLES = DOCS / "examples.jsonl"
K8S = ROOT / "deploy" / "k8s" / "pipelines.yaml"
ASYNCAPI = "3.0.0"
KAFKA_BINDING = "0.5.0"
CONTENT_TYPE = "application/cloudevents+json"
HEADER = "application/cloudevents+json; charset=utf-8"
DEFAULT_PARTITIONS = 6  # shared.ops.settings: PIPELINES_KAFKA_PARTITIONS
LOCAL_PORT = 9092  # scripts/stack's default Kafka port (another when taken: `scripts/stack env` prints it)
REVOCATION_RETENTION_MS = (24 * 3600 + 3600) * 1000  # shared.edge.revocation: the longest token lifetime + an hour

SUBSCRIBE = (
    "Read it with your own consumer group, named under your team's prefix (an operator grants your SCRAM user READ "
    "on the topic and on that group prefix: docs/SUBSCRIBING.md). The services' own groups are "
    "`<prefix>.<service>.<read model>.g<generation>` (prefix `pipelines`): do not join them. Skip a (streamid, "
    "streamversion) you have applied (delivery is at least once) and a type or a schemaversion you do not know."
)


def deployed() -> dict[str, str]:
    """The ConfigMap's settings in deploy/k8s/pipelines.yaml (``KEY: value`` lines)."""
    found = re.findall(r"^  ([A-Z_]+): '?([^'\n]*)'?$", K8S.read_text(), flags=re.M)
    return dict(found)


def servers() -> dict[str, Any]:
    k8s = deployed()
    brokers = k8s["KAFKA_BOOTSTRAP_SERVERS"].split(",")
    return {
        "local": {
            "host": f"localhost:{LOCAL_PORT}",
            "protocol": "kafka",
            "description": "The local stack (`scripts/stack up`): plaintext, no credentials. Its port is 9092 unless "
            "taken: `scripts/stack env` prints KAFKA_BOOTSTRAP_SERVERS.",
        },
        "deployment": {
            "host": "{broker}",
            "protocol": "kafka-secure",
            "description": "A deployment's brokers (deploy/k8s/pipelines.yaml, KAFKA_BOOTSTRAP_SERVERS): SASL_SSL, "
            "SCRAM-SHA-512 credentials, the topics under the deployment's PIPELINES_TOPIC_PREFIX (default "
            "`pipelines`).",
            "variables": {
                "broker": {"default": brokers[0], "examples": brokers, "description": "one broker host:port"}
            },
            "security": [{"$ref": "#/components/securitySchemes/scram"}],
            "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING}},
        },
    }


SCRAM = {
    "type": "scramSha512",
    "description": "SASL/SCRAM-SHA-512 over TLS (security protocol SASL_SSL): one Kafka user per service and per "
    "subscribing team, its password given by the operator. Its ACLs let it read the topics it subscribes to and use "
    "the consumer groups under its own prefix, nothing else (docs/SUBSCRIBING.md: how an operator grants them).",
}


def topic_binding(topic: str, partitions: int, retention_ms: int) -> dict[str, Any]:
    replicas = int(deployed().get("PIPELINES_KAFKA_REPLICATION_FACTOR", "1"))
    return {
        "kafka": {
            "topic": topic,
            "partitions": partitions,
            "replicas": replicas,
            "topicConfiguration": {"cleanup.policy": ["delete"], "retention.ms": retention_ms},
            "bindingVersion": KAFKA_BINDING,
        }
    }


def versions(directory: Path, schemas: dict[Path, dict[str, Any]] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Every version's schema in ``directory``: ``schemas`` (what tools.contract is about to write) over the files."""
    found = {p: json.loads(p.read_text()) for p in directory.glob("*.v*.json")}
    found.update({p: s for p, s in (schemas or {}).items() if p.parent == directory})
    return sorted(found.items(), key=lambda item: _version_order(item[0]))


def _version_order(path: Path) -> tuple[str, int]:
    name, _, version = path.name.removesuffix(".json").rpartition(".v")
    return name, int(version)


def load_examples() -> dict[tuple[str, int], dict[str, Any]]:
    """One real message per (type, schemaversion), as ``python -m tools.asyncapi_examples`` took them."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    if EXAMPLES.exists():
        for line in EXAMPLES.read_text().splitlines():
            record = json.loads(line)
            value = record["value"]
            out.setdefault((value["type"], value["schemaversion"]), record)
    return out


def envelope_of(schemas: dict[Path, dict[str, Any]] | None) -> dict[str, Any]:
    """The CloudEvent envelope's schema: as tools.contract is about to write it, else the published file."""
    path = DOCS / "envelope.v1.json"
    envelope = (schemas or {}).get(path) or json.loads(path.read_text())
    if "$defs" in envelope:
        raise ValueError("the envelope schema has $defs: copy them along with its properties")
    return envelope


def envelope_payload(envelope: dict[str, Any], title: str, description: str, **properties: Any) -> dict[str, Any]:
    """An object with the envelope's properties (a copy) and its required ones; ``properties`` replace some."""
    return {
        "type": "object",
        "title": title,
        "description": description,
        "required": list(envelope["required"]),
        "properties": {**json.loads(json.dumps(envelope["properties"])), **properties},
    }


def event_message(
    schema: dict[str, Any], example: dict[str, Any] | None, envelope: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The message and its payload schema for one version of one event type."""
    event_type, version = schema["x-event-type"], schema["x-schema-version"]
    name = event_type.rsplit(".", 1)[1]
    words = (schema.get("description") or "").strip()
    payload = envelope_payload(
        envelope,
        f"{name}V{version}Message",
        f"One {event_type} event, schemaversion {version}: the CloudEvent envelope with its data.",
        type={"type": "string", "const": event_type},
        schemaversion={"type": "integer", "const": version},
        # a title of its own: each version's data is its own model (the files share the type's name)
        data={"title": f"{name}V{version}", "allOf": [{"$ref": f"./{name}.v{version}.json"}]},
    )
    message: dict[str, Any] = {
        "name": event_type,
        "title": f"{name} v{version}",
        "summary": words.split("\n", 1)[0] or f"{name}, version {version}",
        "contentType": CONTENT_TYPE,
        "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
        "payload": {"$ref": f"#/components/schemas/{name}.v{version}"},
        "correlationId": {"$ref": "#/components/correlationIds/correlationid"},
        "bindings": {"kafka": {"key": {"$ref": "#/components/schemas/StreamKey"}, "bindingVersion": KAFKA_BINDING}},
    }
    if words:
        message["description"] = words
    if example:
        message["examples"] = [_example(example, _example_summary(example, name, version))]
    return message, payload


def _example_summary(record: dict[str, Any], name: str, version: int) -> str:
    derived = record.get("derived_from")  # an older version no release writes now (tools.asyncapi_examples)
    if not derived:
        return f"a real {name} v{version}"
    return (
        f"{name} v{version} as an older release wrote it: the real v{derived['schemaversion']} message "
        f"{derived['id']} with v{version}'s fields only, which this code upcasts back to that message's data "
        f"exactly (no release writes v{version} now; topics keep the ones written before)"
    )


def _example(record: dict[str, Any], summary: str) -> dict[str, Any]:
    return {"name": "real", "summary": summary, "headers": record["headers"], "payload": record["value"]}


def event_components() -> dict[str, Any]:
    return {
        "schemas": {
            "CloudEventHeaders": {
                "type": "object",
                "description": "The Kafka record's headers: structured mode of the CloudEvents Kafka protocol binding.",
                "required": ["content-type"],
                "properties": {"content-type": {"type": "string", "const": HEADER}},
            },
            "StreamKey": {
                "type": "string",
                "description": "The Kafka key: the stream id (the event's `subject` and `streamid`), so one "
                "stream's events share a partition and keep their order.",
            },
        },
        "correlationIds": {
            "correlationid": {
                "description": "The request or process the event belongs to (CloudEvents extension `correlationid`; "
                "`causationid` names the event or command that caused it).",
                "location": "$message.payload#/correlationid",
            }
        },
        "securitySchemes": {"scram": SCRAM},
    }


def channel_document(
    title: str, description: str, channels: dict[str, dict[str, Any]], components: dict[str, Any]
) -> dict[str, Any]:
    """A document of ``channels`` (id → channel with its messages) and one receive operation per channel."""
    operations = {}
    for channel_id, channel in channels.items():
        operations[f"receive_{channel_id}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"Subscribe to {channel['address']}.",
            "description": SUBSCRIBE,
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in channel["messages"]],
            "bindings": {
                "kafka": {
                    "groupId": {"type": "string", "description": "your own consumer group, under your prefix"},
                    "bindingVersion": KAFKA_BINDING,
                }
            },
        }
        channel["servers"] = [{"$ref": "#/servers/local"}, {"$ref": "#/servers/deployment"}]
    return {
        "asyncapi": ASYNCAPI,
        "info": {"title": title, "version": "1", "description": description},
        "defaultContentType": CONTENT_TYPE,
        "servers": servers(),
        "channels": channels,
        "operations": operations,
        "components": components,
    }


def events_channel(
    topic: str, description: str, files: list[tuple[Path, dict[str, Any]]], envelope: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The channel of one events topic and the components its messages use."""
    examples = load_examples()
    messages, schemas = {}, {}
    for path, schema in files:
        key = path.name.removesuffix(".json")
        example = examples.get((schema["x-event-type"], schema["x-schema-version"]))
        messages[key], schemas[key] = event_message(schema, example, envelope)
    channel = {
        "address": topic,
        "title": topic,
        "description": description,
        "messages": {k: {"$ref": f"#/components/messages/{k}"} for k in messages},
        "bindings": topic_binding(topic, DEFAULT_PARTITIONS, -1),
    }
    components = event_components()
    components["schemas"].update(schemas)
    components["messages"] = messages
    return channel, components


WIRE = (
    "Each Kafka message is one CloudEvents 1.0 event in structured JSON mode: the value is the whole envelope "
    "(docs/events/envelope.v1.json) with the type's `data` (its `dataschema` names the data's schema), the header "
    "`content-type` says so, the key is the stream id. Fields listed in a schema's `x-personal-fields` travel sealed "
    "(`pii:v1:` tokens) and read as null once the person is erased. Topics keep every event (retention -1): a new "
    "subscriber reads from the beginning. See docs/SUBSCRIBING.md."
)


def service_document(service: str, schemas: dict[Path, dict[str, Any]] | None = None) -> dict[str, Any]:
    topic = f"pipelines.{service}.events"
    files = versions(DOCS / service, schemas)
    description = f"Every event of the {service} service, in stream order."
    channel, components = events_channel(topic, description, files, envelope_of(schemas))
    return channel_document(f"Pipelines — {service} events", WIRE, {"events": channel}, components)


def alerts_document(schemas: dict[Path, dict[str, Any]] | None = None) -> dict[str, Any]:
    files = versions(DOCS / "alerts", schemas)
    description = "The alerts every service raises and clears (services/alerts): `pipelines.alerts.*` events."
    channel, components = events_channel("pipelines.alerts", description, files, envelope_of(schemas))
    return channel_document("Pipelines — alerts", WIRE, {"alerts": channel}, components)


DEAD_LETTERS = (
    "A read model's dead letters: a message its projector could not apply (no such type, an unreadable value, a "
    "handler that failed on it) is copied here with the reason in its headers, and the projector moves past it (its "
    "stream's progress counts it as seen). The value and the key are the failed message's, byte for byte: almost "
    "always a CloudEvent from a topic the service reads (the envelope with its `data`), but a value that could not "
    "be read at all is copied as it was. `pipelines dlq list <service>` lists them, `pipelines dlq redrive <service>` "
    "sends them back once the cause is fixed (docs/OPERATIONS.md, Dead letters)."
)


def dead_letter_document(envelope: dict[str, Any]) -> dict[str, Any]:
    examples = list(load_examples().values())
    channels, messages = {}, {}
    for service in SERVICES:
        topic = f"pipelines.{service}.dlq"
        message: dict[str, Any] = {
            "name": "DeadLetter",
            "title": f"A dead letter of the {service} service's read models",
            "summary": "A message a projector could not apply, and why.",
            "contentType": CONTENT_TYPE,
            "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
            "payload": {"$ref": "#/components/schemas/DeadLetter"},
            "correlationId": {"$ref": "#/components/correlationIds/correlationid"},
            "bindings": {"kafka": {"key": {"$ref": "#/components/schemas/StreamKey"}, "bindingVersion": KAFKA_BINDING}},
        }
        source = next(
            (e for e in examples if e["topic"] == f"pipelines.{service}.events" and "derived_from" not in e), None
        )
        if source:
            message["examples"] = [_dead_letter_example(source, service)]
        messages[f"{service}DeadLetter"] = message
        channels[f"{service}_dlq"] = {
            "address": topic,
            "title": topic,
            "description": f"The {service} service's dead letters. " + DEAD_LETTERS,
            "messages": {"DeadLetter": {"$ref": f"#/components/messages/{service}DeadLetter"}},
            "bindings": topic_binding(topic, 1, -1),
        }
    components = event_components()
    components["messages"] = messages
    components["schemas"]["DeadLetter"] = envelope_payload(
        envelope,
        "DeadLetterMessage",
        "The failed message's value: usually a CloudEvent (a value that could not be read is copied as it was, and "
        "fails this schema).",
    )
    components["schemas"]["DeadLetterHeaders"] = {
        "type": "object",
        "description": "Why and where from (the failed message's own headers are not copied).",
        "required": ["dlq-reason", "dlq-projection", "dlq-source", "dlq-time"],
        "properties": {
            "dlq-reason": {"type": "string", "description": "why the projector could not apply it"},
            "dlq-projection": {"type": "string", "description": "the read model (projection) that failed on it"},
            "dlq-source": {"type": "string", "description": "where it was read: `<topic>/<partition>/<offset>`"},
            "dlq-time": {"type": "string", "format": "date-time", "description": "when it was dead-lettered"},
        },
    }
    return channel_document("Pipelines — dead letters", DEAD_LETTERS, channels, components)


def _dead_letter_example(source: dict[str, Any], service: str) -> dict[str, Any]:
    """A real event as a dead letter would carry it (headers as shared.messaging.runner writes them)."""
    headers = {
        "dlq-reason": "ValueError: the read model refused it (an example)",
        "dlq-projection": f"{service}_example",
        "dlq-source": f"{source['topic']}/{source.get('partition', 0)}/{source.get('offset', 0)}",
        "dlq-time": source["value"]["recordedtime"],
    }
    return {
        "name": "example",
        "summary": "a real event, as dead-lettered",
        "headers": headers,
        "payload": source["value"],
    }


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


REVOCATION_EXAMPLES = {  # as shared.edge.revocation publishes them (key, value)
    "TokenRevoked": ("hV1mEPp4cX0e5yS0tq9Q2w", {"jti": "hV1mEPp4cX0e5yS0tq9Q2w", "exp": 1796601600.0}),
    "SessionRevoked": (
        "sid:1b0e1c52-61f0-4d0a-9d47-3f3b8f1f2a6e",
        {"sid": "1b0e1c52-61f0-4d0a-9d47-3f3b8f1f2a6e", "exp": 1796601600.0},
    ),
}


def revocations_document() -> dict[str, Any]:
    messages, schemas = {}, {}
    for model, key in ((TokenRevoked, "the jti"), (SessionRevoked, "`sid:` and the session id")):
        name = model.__name__
        schema = model.model_json_schema()
        schema.pop("additionalProperties", None)  # the consumer's view: a field added later is no error
        schemas[name] = schema
        example_key, example = REVOCATION_EXAMPLES[name]
        messages[name] = {
            "name": name,
            "title": name,
            "summary": inspect.cleandoc(model.__doc__ or "").split("\n", 1)[0],
            "description": inspect.cleandoc(model.__doc__ or ""),
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "bindings": {
                "kafka": {"key": {"type": "string", "description": f"Key: {key}."}, "bindingVersion": KAFKA_BINDING}
            },
            "examples": [{"name": "example", "summary": f"key {example_key}", "payload": example}],
        }
    channel = {
        "address": "pipelines.auth.revocations",
        "title": "pipelines.auth.revocations",
        "description": REVOCATIONS,
        "messages": {k: {"$ref": f"#/components/messages/{k}"} for k in messages},
        "bindings": topic_binding("pipelines.auth.revocations", 1, REVOCATION_RETENTION_MS),
    }
    components = {"schemas": schemas, "messages": messages, "securitySchemes": {"scram": SCRAM}}
    document = channel_document(
        "Pipelines — revoked tokens and sessions", REVOCATIONS, {"revocations": channel}, components
    )
    document["defaultContentType"] = "application/json"
    operation = document["operations"]["receive_revocations"]
    operation["description"] = "Read from the beginning, without a consumer group (every replica needs every message)."
    operation["bindings"] = {"kafka": {"bindingVersion": KAFKA_BINDING}}
    return document


def documents(schemas: dict[Path, dict[str, Any]] | None = None) -> dict[Path, dict[str, Any]]:
    """Every AsyncAPI document by its path; ``schemas``: the event schema files as tools.contract writes them."""
    out = {DOCS / s / "asyncapi.json": service_document(s, schemas) for s in SERVICES}
    out[DOCS / "alerts" / "asyncapi.json"] = alerts_document(schemas)
    out[DOCS / "dlq" / "asyncapi.json"] = dead_letter_document(envelope_of(schemas))
    out[DOCS / "auth" / "asyncapi.json"] = revocations_document()
    return out
