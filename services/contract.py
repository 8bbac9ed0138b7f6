"""The event contract subscribers rely on: every event type's JSON Schema, kept under docs/events/.

``python -m services.contract write`` writes the schema of each event type's current version (and of the
envelope) that is not there yet; ``check`` fails when the code and the files disagree. A published version's
file never changes: a change of shape is a new ``schema_version`` with an ``upcast``, and a new file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import services.deals.events
import services.leads.events
import services.production.events  # noqa: F401 - importing registers the event types
from shared.envelope import cloudevent_json_schema
from shared.events import registry
from shared.settings import SERVICES

DOCS = Path(__file__).resolve().parent.parent / "docs" / "events"


def schemas() -> dict[Path, dict[str, Any]]:
    out = {DOCS / "envelope.v1.json": cloudevent_json_schema()}
    for cls in registry.types("pipelines."):
        _, service, name = cls.event_type.split(".")
        if service not in SERVICES:
            continue  # e.g. the kernel tests' own event types
        out[DOCS / service / f"{name}.v{cls.schema_version}.json"] = cls.json_schema()
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def differences() -> list[str]:
    problems = []
    for path, schema in schemas().items():
        if not path.exists():
            problems.append(f"{path.relative_to(DOCS)}: missing (run `python -m services.contract write`)")
        elif path.read_text() != render(schema):
            problems.append(
                f"{path.relative_to(DOCS)}: the code's schema differs from the published one; "
                "bump schema_version and add an upcast (published versions never change)"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["write"]:
        for path, schema in schemas().items():
            if not path.exists() or "--force" in args:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(render(schema))
                print(f"wrote {path.relative_to(DOCS.parent.parent)}")
        return 0
    problems = differences()
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
