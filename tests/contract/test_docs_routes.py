"""The routes the README and docs/ name exist, and a route that needs query parameters is never named without them.

Every span in backquotes that reads as a route (``GET /funnel?from=…&to=…``, ``/deals/{id}/history``) is matched
against the committed OpenAPI shapes (tests/contract/openapi/, which test_openapi_shape keeps equal to the apps),
with any ``{name}`` matching any path parameter. A span ending in ``…`` names the routes under it. A bare path
means its GET (or the only method it has)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SHAPES = Path(__file__).parent / "openapi"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SPAN = re.compile(r"`((?:GET|POST|PUT|PATCH|DELETE) )?(/[a-z{][^`\s]*)`")
METHOD_PATH = re.compile(r"^(?P<methods>[A-Z,]+) (?P<path>\S+)")  # "GET,HEAD /docs (not in the document)"


def routes() -> dict[tuple[str, str], list[str]]:
    """(method, path with ``{}`` for each parameter) → the required query parameters, over every API."""
    out: dict[tuple[str, str], list[str]] = {}
    for shape in SHAPES.glob("*.json"):
        for key, op in json.loads(shape.read_text()).items():
            m = METHOD_PATH.match(key)
            assert m, key
            required = [p["name"] for p in op.get("parameters", []) if p["in"] == "query" and p.get("required")]
            for method in m["methods"].split(","):
                out[(method, re.sub(r"\{[^}]*\}", "{}", m["path"]))] = required
    return out


def mentions() -> list[tuple[str, str, str | None, str]]:
    """(document:line, the span, method or None, the route as written) for every route span of the docs; a span
    wrapped over two lines is read joined."""
    found = []
    for doc in DOCS:
        # fenced blocks blanked, their lines kept: their backquotes would pair the spans wrongly
        text = re.sub(r"```.*?```", lambda b: "\n" * b[0].count("\n"), doc.read_text(), flags=re.S)
        for quoted in re.finditer(r"`[^`]+`", text):
            span = re.sub(r"\n\s*", "", quoted[0])
            if m := SPAN.fullmatch(span):
                line = text.count("\n", 0, quoted.start()) + 1
                found.append((f"{doc.relative_to(ROOT)}:{line}", span, (m[1] or "").strip() or None, m[2]))
    return found


@pytest.mark.parametrize(("where", "span", "method", "written"), mentions(), ids=lambda v: str(v))
def test_a_route_the_docs_name_exists_with_its_required_parameters(
    where: str, span: str, method: str | None, written: str
) -> None:
    known = routes()
    path, _, query = written.partition("?")
    path = re.sub(r"\{[^}]*\}", "{}", path)
    if path.endswith("…"):
        prefix = path.rstrip("…")
        assert any(p.startswith(prefix) and (method is None or m == method) for m, p in known), f"{where}: {span}"
        return
    methods = [m for m, p in known if p == path and (method is None or m == method)]
    assert methods, f"{where}: {span} is no route of any API"
    chosen = method or ("GET" if "GET" in methods else methods[0])
    given = {part.split("=", 1)[0] for part in query.split("&") if part}
    missing = [q for q in known[(chosen, path)] if q not in given]
    assert not missing, f"{where}: {span} leaves out the required {missing}"
