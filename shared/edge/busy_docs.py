"""The busy answer in the OpenAPI document (decision 0032): every operation of an API behind the in-flight bound
(``shared.edge.overload``) may be answered ``503`` ``busy`` with ``Retry-After`` before anything of the route runs,
so every operation lists it — all but the probes and the scrape (``overload.EXEMPT``), which are never refused.

It is added once, to the document FastAPI builds, rather than to each route's ``responses``: a route added later
cannot forget it. A route that already documents a 503 of its own (a read model behind, a dependency down) keeps it;
its description gains the busy answer's. A 503 only the bound gives is marked ``x-busy-only`` (testkit.fuzz tells an
in-memory app's documented ``unavailable`` from it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from shared.edge.overload import BODY, EXEMPT, RETRY_AFTER
from shared.edge.problems import MEDIA_TYPE, Problem

METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
MARK = "`busy`"  # in a 503's description: the busy answer is documented there
DESCRIPTION = (
    f"{MARK}: this API process has too many requests in flight (PIPELINES_MAX_IN_FLIGHT); nothing was done, "
    "retry after the seconds `Retry-After` says"
)
RETRY_AFTER_HEADER = {
    "description": "seconds to wait before retrying; every `busy` answer carries it "
    f"({' or '.join(s.decode() for s in RETRY_AFTER)})",
    "schema": {"type": "integer", "minimum": 1},
}
EXAMPLE = {"summary": "busy", "value": json.loads(BODY)}


def document_busy(app: FastAPI) -> None:
    """Make ``app.openapi()`` list the busy answer on every operation the bound covers."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        doc = build()  # FastAPI's, built once and kept; adding the answer again changes nothing
        add_busy(doc)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def add_busy(doc: dict[str, Any]) -> None:
    """The busy 503 on each operation of ``doc`` outside ``EXEMPT``, merged into a 503 the route documents."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in schemas:
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for path, operations in doc.get("paths", {}).items():
        if path in EXEMPT:
            continue
        for method, operation in operations.items():
            if method in METHODS:
                _merge(operation.setdefault("responses", {}))


def _merge(responses: dict[str, Any]) -> None:
    answer = responses.get("503")
    if answer is None:
        answer = responses["503"] = {"description": DESCRIPTION, "x-busy-only": True}
    elif MARK not in answer.get("description", ""):
        answer["description"] = f"{answer.get('description', '').rstrip('.; ')}; or {DESCRIPTION}"
    answer.setdefault("headers", {})["Retry-After"] = RETRY_AFTER_HEADER
    media = answer.setdefault("content", {}).setdefault(MEDIA_TYPE, {})
    media.setdefault("schema", {"$ref": "#/components/schemas/Problem"})
    media.setdefault("examples", {})["busy"] = EXAMPLE
