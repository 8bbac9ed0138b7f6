"""Event types for the kernel's tests (wire names under pipelines.test.*)."""

from __future__ import annotations

from typing import Any, ClassVar

from shared.core.decider import Decider
from shared.core.events import DomainEvent


class ThingCreated(DomainEvent):
    event_type: ClassVar[str] = "pipelines.test.ThingCreated"
    thing_id: str
    name: str


class ThingRenamed(DomainEvent):
    """v1 had only ``name``; v2 added ``reason``."""

    event_type: ClassVar[str] = "pipelines.test.ThingRenamed"
    schema_version: ClassVar[int] = 2
    thing_id: str
    name: str
    reason: str

    @classmethod
    def upcast(cls, from_version: int, data: dict[str, Any]) -> dict[str, Any]:
        if from_version == 1:
            return {**data, "reason": "(not recorded)"}
        return super().upcast(from_version, data)


class ContactRecorded(DomainEvent):
    event_type: ClassVar[str] = "pipelines.test.ContactRecorded"
    personal_fields: ClassVar[tuple[str, ...]] = ("email", "full_name")
    subject_field: ClassVar[str | None] = "person_id"
    erased_by: ClassVar[str | None] = "pipelines.test.ContactErased"
    person_id: str
    email: str | None
    full_name: str | None
    source: str


class ContactErased(DomainEvent):
    """The person's key was destroyed (a restore applies it again: shared.messaging.restore)."""

    event_type: ClassVar[str] = "pipelines.test.ContactErased"
    subject_field: ClassVar[str | None] = "person_id"
    erasure: ClassVar[bool] = True
    person_id: str


class Counted(DomainEvent):
    event_type: ClassVar[str] = "pipelines.test.Counted"
    n: int


def count(state: int, event: DomainEvent) -> int:
    return state + 1 if isinstance(event, Counted) else state


counter = Decider(initial=0, evolve=count)
