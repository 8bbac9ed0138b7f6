"""The published event contract (docs/events) matches the code: a change of shape needs a new version."""

from __future__ import annotations

from services import contract


def test_every_event_type_has_its_published_schema_and_it_is_unchanged() -> None:
    assert contract.differences() == []


def test_every_event_type_documents_every_field() -> None:
    for path, schema in contract.schemas().items():
        if path.name.startswith("envelope"):
            continue
        assert schema["x-event-type"].startswith("pipelines."), path
        assert schema["properties"], path
