"""Domain events: declared once as pydantic classes; registry, wire format and JSON Schema derive from them.

An event type is a subclass of ``DomainEvent`` with an explicit ``event_type`` wire name
(``pipelines.<service>.<EventName>``) and a ``schema_version``. Declaring the class registers it. When a
schema changes incompatibly, the class bumps ``schema_version`` and overrides ``upcast`` to turn the stored
older data into the current shape; stored events are never rewritten.

Personal data: fields named in ``personal_fields`` are encrypted with the key of the subject whose id is in
``subject_field`` (see ``shared.privacy.pii``); after that subject's key is deleted they read back as ``None``, so
such fields must accept ``None``. Every personal field must be erasable: its class names in ``erased_by`` the
event type of its own service that records that subject's erasure (a class with ``erasure = True``, whose
``subject_field`` names the erased subject); ``EventRegistry.erasure_gaps`` lists the classes that do not, and a
test fails on any. A restore applies every erasure event on the topics again (``shared.messaging.restore``).
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any, ClassVar, Union

from pydantic import BaseModel, ConfigDict

# The event schemas' names (``$id``) and where a deployment serves them (``dataschema``; decision 0024): both end in
# ``schema_path``, the file's place under docs/events. The ``$id`` base is a name (``.invalid``: no host), the same in
# every deployment; ``dataschema`` puts the deployment's base (PIPELINES_SCHEMA_BASE_URL) in front of the same path.
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE = "https://pipelines.invalid/schemas"


def schema_path(event_type: str, schema_version: int) -> str:
    """``events/<service>/<Type>.v<N>.json`` for ``pipelines.<service>.<Type>`` (a type of another namespace: its
    dotted parts after the first, as folders)."""
    parts = event_type.split(".")
    return "events/" + "/".join(parts[1:] or parts) + f".v{schema_version}.json"


@functools.lru_cache(maxsize=4096)  # the relay asks for every event it publishes: a few hundred distinct answers
def schema_uri(event_type: str, schema_version: int, base: str = SCHEMA_ID_BASE) -> str:
    return f"{base}/{schema_path(event_type, schema_version)}"


class EventDefinitionError(TypeError):
    """An event class is declared wrongly (raised at import time)."""


class UnknownEventTypeError(LookupError):
    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


class UnsupportedSchemaVersionError(ValueError):
    pass


class DomainEvent(BaseModel):
    """Base of every domain event. Subclasses with an ``event_type`` register themselves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    personal_fields: ClassVar[tuple[str, ...]] = ()
    subject_field: ClassVar[str | None] = None
    # with personal fields: the wire name of the event type that records their subject's erasure
    erased_by: ClassVar[str | None] = None
    # this event records that the subject named by ``subject_field`` was erased (its key destroyed)
    erasure: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:  # abstract bases (e.g. DealEvent) declare no wire name
            registry.add(cls)

    @classmethod
    def upcast(cls, from_version: int, data: dict[str, Any]) -> dict[str, Any]:
        """Turn data stored at ``from_version`` into the current schema. Override when the version grows."""
        raise UnsupportedSchemaVersionError(
            f"{cls.event_type}: no upcast from schema version {from_version} to {cls.schema_version}"
        )

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The producer's schema: strict (``additionalProperties: false``, as the class forbids extra fields). What is
        published for consumers is its consumer view (``tools.contract.consumer_view``)."""
        schema = {"$schema": JSON_SCHEMA_DIALECT, **cls.model_json_schema(mode="serialization")}
        schema["$id"] = schema_uri(cls.event_type, cls.schema_version)
        schema["x-event-type"] = cls.event_type
        schema["x-schema-version"] = cls.schema_version
        if cls.personal_fields:
            schema["x-personal-fields"] = list(cls.personal_fields)
            schema["x-subject-field"] = cls.subject_field
            for name in cls.personal_fields:  # on the wire: a sealed token (shared.privacy.pii), or null once erased
                plaintext = schema["properties"][name]
                schema["properties"][name] = {
                    "anyOf": [{"type": "string", "pattern": "^pii:v1:"}, {"type": "null"}],
                    "description": "personal data sealed under the subject's key; null when absent or erased",
                    "x-plaintext": plaintext,
                }
        return schema

    def subject_id(self) -> str | None:
        """The data subject whose key protects this event's personal fields."""
        if not self.subject_field:
            return None
        value = getattr(self, self.subject_field)
        return None if value is None else str(value)


def _accepts_none(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _accepts_none(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return type(None) in typing.get_args(annotation)
    return annotation is None or annotation is type(None) or annotation is Any


class EventRegistry:
    """Wire name → event class; parses stored data, upcasting older schema versions."""

    def __init__(self) -> None:
        self._types: dict[str, type[DomainEvent]] = {}

    def add(self, cls: type[DomainEvent]) -> None:
        name = cls.__dict__["event_type"]
        if not isinstance(name, str) or name.count(".") < 2:
            raise EventDefinitionError(f"{cls.__qualname__}: event_type must look like 'pipelines.<service>.<Name>'")
        existing = self._types.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise EventDefinitionError(f"event type {name!r} is declared twice: {existing} and {cls}")
        if cls.schema_version < 1:
            raise EventDefinitionError(f"{name}: schema_version starts at 1")
        fields = cls.model_fields
        if cls.personal_fields:
            if not cls.subject_field or cls.subject_field not in fields:
                raise EventDefinitionError(f"{name}: personal_fields need a subject_field naming one of its fields")
            for f in cls.personal_fields:
                if f not in fields:
                    raise EventDefinitionError(f"{name}: personal field {f!r} is not a field")
                if not _accepts_none(fields[f].annotation):
                    raise EventDefinitionError(f"{name}: personal field {f!r} must accept None (erased)")
            if not cls.erased_by:
                raise EventDefinitionError(f"{name}: personal_fields need erased_by, the event type erasing them")
        if cls.erasure and (not cls.subject_field or cls.subject_field not in fields):
            raise EventDefinitionError(f"{name}: an erasure event needs a subject_field naming the erased subject")
        self._types[name] = cls

    def __contains__(self, event_type: str) -> bool:
        return event_type in self._types

    def get(self, event_type: str) -> type[DomainEvent]:
        try:
            return self._types[event_type]
        except KeyError:
            raise UnknownEventTypeError(event_type) from None

    def types(self, prefix: str = "") -> list[type[DomainEvent]]:
        return [cls for name, cls in sorted(self._types.items()) if name.startswith(prefix)]

    def erasure_gaps(self, prefix: str = "") -> list[str]:
        """Why each event type with personal fields (of those whose wire name starts with ``prefix``) has no
        erasure path: its ``erased_by`` is not a registered erasure event type of its own service."""
        gaps = []
        for cls in self.types(prefix):
            if not cls.personal_fields:
                continue
            service = cls.event_type.rsplit(".", 1)[0] + "."
            eraser = self._types.get(cls.erased_by or "")
            if eraser is None:
                gaps.append(f"{cls.event_type}: erased_by {cls.erased_by!r} is not a registered event type")
            elif not eraser.erasure:
                gaps.append(f"{cls.event_type}: {cls.erased_by} is not an erasure event (erasure = True)")
            elif not eraser.event_type.startswith(service):
                gaps.append(f"{cls.event_type}: {cls.erased_by} is another service's: each service erases its own")
        return gaps

    def erased_subject(self, event_type: str, data: dict[str, Any]) -> str | None:
        """The subject an erasure event (as stored or on the wire) erased; None for any other event."""
        cls = self._types.get(event_type)
        if cls is None or not cls.erasure or cls.subject_field is None:
            return None
        value = data.get(cls.subject_field)
        return None if value is None else str(value)

    def upcast(self, event_type: str, schema_version: int, data: dict[str, Any]) -> dict[str, Any]:
        """Stored data of any known version → data in the class's current schema."""
        cls = self.get(event_type)
        if schema_version > cls.schema_version:
            raise UnsupportedSchemaVersionError(
                f"{event_type} v{schema_version} is newer than this code's v{cls.schema_version}"
            )
        if schema_version < cls.schema_version:
            data = cls.upcast(schema_version, dict(data))
        return data

    def parse(self, event_type: str, schema_version: int, data: dict[str, Any]) -> DomainEvent:
        cls = self.get(event_type)
        return cls.model_validate(self.upcast(event_type, schema_version, data))


registry = EventRegistry()
