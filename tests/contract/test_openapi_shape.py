"""Each API's OpenAPI document keeps its shape: the same paths, methods, parameters, request bodies, answer codes
and success schemas (``$ref``s resolved, so a schema may move between modules) as the committed copy in
tests/contract/openapi/. Titles, descriptions, examples and operation ids may change; error bodies are checked
by the problem-details tests. A change meant to change an API rewrites the copies:
``PIPELINES_WRITE_OPENAPI=1 pytest tests/contract/test_openapi_shape.py`` — and its diff is reviewed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route

from testkit.apps import apps

HERE = Path(__file__).parent / "openapi"
IGNORED = {"title", "description", "examples", "example", "summary", "operationId", "openapi_examples", "tags"}


def resolve(node: Any, components: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name in seen:
                return {"$recursive": name}
            return resolve(components[name], components, (*seen, name))
        return {k: resolve(v, components, seen) for k, v in sorted(node.items()) if k not in IGNORED}
    if isinstance(node, list):
        return [resolve(v, components, seen) for v in node]
    return node


def shape(doc: dict[str, Any]) -> dict[str, Any]:
    components = doc.get("components", {}).get("schemas", {})
    out: dict[str, Any] = {}
    for path, operations in sorted(doc["paths"].items()):
        for method, op in sorted(operations.items()):
            responses = {}
            for code, r in sorted(op.get("responses", {}).items()):
                success = code.startswith(("2", "3"))
                responses[code] = resolve(r.get("content", {}), components) if success else "error"
            out[f"{method.upper()} {path}"] = {
                "parameters": sorted(
                    (resolve(p, components) for p in op.get("parameters", [])), key=lambda p: (p["in"], p["name"])
                ),
                "body": resolve(op.get("requestBody", {}), components),
                "responses": responses,
                "security": op.get("security"),
            }
    return out


@pytest.mark.parametrize(
    "service", ["deals", "leads", "production", "directory", "agenda", "signin", "webhooks", "web"]
)
def test_the_openapi_document_keeps_its_shape(service: str) -> None:
    app = apps()[service]
    now = shape(app.openapi())
    for r in app.routes:  # the routes outside the document too (the board's pages)
        if isinstance(r, Route) and not (isinstance(r, APIRoute) and r.include_in_schema):
            now[f"{','.join(sorted(r.methods or ()))} {r.path} (not in the document)"] = {}
    path = HERE / f"{service}.json"
    if os.environ.get("PIPELINES_WRITE_OPENAPI"):
        path.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    kept = json.loads(path.read_text())
    assert sorted(now) == sorted(kept), "routes added or removed"
    for route in kept:
        assert now[route] == kept[route], route
