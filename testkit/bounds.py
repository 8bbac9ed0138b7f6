"""What in an API's requests is not bounded by its type: the walk behind tests/unit/test_bounded_input.py.

Every query, path, header and cookie parameter and every request body of every route (the board's pages too,
which are left out of its OpenAPI document) is read from the OpenAPI schema FastAPI makes of it; a value is
bounded when its schema says so:

- a string: ``maxLength``, or an ``enum``/``const``, a ``uuid`` format, or an anchored pattern without unbounded
  repetition; a date or a time (``format`` ``date``/``date-time``) also documents its range (``formatMinimum`` and
  ``formatMaximum``, as ``shared.core.limits.Day`` and ``Moment`` write them);
- an integer or a number: ``minimum`` (or ``exclusiveMinimum``) and ``maximum`` (or ``exclusiveMaximum``);
- an array: ``maxItems`` (and its items bounded);
- an object: its properties bounded; a free-form map: ``maxProperties``, its keys and values bounded.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

BOUNDED_FORMATS = {"uuid"}  # parsed into a value of a fixed size
DATE_FORMATS = {"date", "date-time"}  # bounded in size, but their range is documented too


def bounded_pattern(pattern: str | None) -> bool:
    """An anchored pattern with no unbounded repetition (*, +, {n,}) and no top-level alternative (which would
    not be anchored at both ends) bounds its string's length."""
    if not pattern or not (pattern.startswith("^") and pattern.endswith("$")):
        return False
    depth, in_class, escaped = 0, False, False
    body = pattern[1:-1]
    for i, c in enumerate(body):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c in "*+" or (c == "|" and depth == 0) or (c == "{" and re.match(r"\{\d*,\}", body[i:])):
            return False
    return True


def whole_document(app: FastAPI) -> dict[str, Any]:
    """``app``'s OpenAPI document with every route in it, those it leaves out of its own too (the board's pages)."""
    routes = []
    for route in app.routes:
        if isinstance(route, APIRoute) and not route.include_in_schema:
            route = APIRoute(
                route.path,
                route.endpoint,
                methods=route.methods,
                dependencies=route.dependencies,
                response_model=None,
                include_in_schema=True,
                name=route.name,
            )
        routes.append(route)
    return get_openapi(title=app.title, version=app.version, routes=routes)


def _string_problem(s: dict[str, Any]) -> str | None:
    if s.get("format") in DATE_FORMATS:
        return None if "formatMinimum" in s and "formatMaximum" in s else "a date or time without its range"
    if "maxLength" in s or s.get("format") in BOUNDED_FORMATS or bounded_pattern(s.get("pattern")):
        return None
    return "a string without maxLength"


def _number_problem(s: dict[str, Any]) -> str | None:
    low = "minimum" in s or "exclusiveMinimum" in s
    high = "maximum" in s or "exclusiveMaximum" in s
    return None if low and high else "a number without minimum and maximum"


class Walk:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.schemas: dict[str, Any] = doc.get("components", {}).get("schemas", {})
        self.seen: set[str] = set()
        self.found: dict[str, str] = {}

    def walk(self, s: dict[str, Any], where: str) -> None:
        if "$ref" in s:
            name = s["$ref"].rsplit("/", 1)[-1]
            if name not in self.seen:
                self.seen.add(name)
                self.walk(self.schemas[name], name)
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in s.get(key, []):
                self.walk(branch, where)
        if "enum" in s or "const" in s:
            return
        kind = s.get("type")
        problem = None
        if kind == "string":
            problem = _string_problem(s)
        elif kind in ("integer", "number"):
            problem = _number_problem(s)
        elif kind == "array":
            problem = None if "maxItems" in s else "an array without maxItems"
            self.walk(s.get("items", {}), f"{where}[]")
        elif kind == "object" or "properties" in s:
            problem = self._object(s, where)
        elif kind is None and not any(k in s for k in ("anyOf", "oneOf", "allOf")):
            problem = "anything at all"
        if problem:
            self.found[where] = problem

    def _object(self, s: dict[str, Any], where: str) -> str | None:
        for name, sub in s.get("properties", {}).items():
            self.walk(sub, f"{where}.{name}")
        extra = s.get("additionalProperties", "properties" not in s)
        if extra is False or "properties" in s:
            return None
        if isinstance(extra, dict):
            self.walk(extra, f"{where}.*")
            self.walk({"type": "string"} | s.get("propertyNames", {}), f"{where}[key]")  # keys are strings
        return None if "maxProperties" in s and extra is not True else "a map without maxProperties"


def unbounded(doc: dict[str, Any]) -> dict[str, str]:
    """Where a request (a parameter or a body) takes a value without a bound, and what is missing: by
    component.property path, or by operation and parameter."""
    walk = Walk(doc)
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for content_type, content in op.get("requestBody", {}).get("content", {}).items():
                walk.walk(content.get("schema", {}), f"{method.upper()} {path} {content_type}")
            for p in op.get("parameters", []):
                walk.walk(p.get("schema", {}), f"{method.upper()} {path} {p['in']} {p['name']}")
    return walk.found


def operations(doc: dict[str, Any]) -> int:
    return sum(len(ops) for ops in doc["paths"].values())


def undocumented_reads(doc: dict[str, Any]) -> set[str]:
    """The GET routes whose JSON success answer has no schema of its own (none, or any object) or no example."""
    components = doc.get("components", {}).get("schemas", {})
    found = set()
    for path, operations in doc["paths"].items():
        op = operations.get("get")
        if op is None:
            continue
        success = next((r for code, r in sorted(op.get("responses", {}).items()) if code.startswith("2")), {})
        media = success.get("content", {}).get("application/json")
        if media is None:
            continue  # not JSON: metrics, a schema file, a webhook's challenge
        schema = media.get("schema") or {}
        if schema.get("type") == "array":  # a list of models: each item's
            schema = schema.get("items", {})
        target = components.get(schema.get("$ref", "").rsplit("/", 1)[-1], schema)
        typed = "$ref" in schema and ("properties" in target or "anyOf" in target)
        example = any(k in media for k in ("example", "examples")) or _has_example(target, components)
        if not (typed and example):
            found.add(f"GET {path}")
    return found


def _has_example(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """An example on the schema, or on what its items (a page's) are."""
    if "examples" in schema or "example" in schema:
        return True
    items = schema.get("properties", {}).get("items", {}).get("items", {})
    ref = items.get("$ref", "").rsplit("/", 1)[-1]
    return bool(ref) and ("examples" in components.get(ref, {}) or "example" in components.get(ref, {}))
