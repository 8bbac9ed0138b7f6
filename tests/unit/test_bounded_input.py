"""Every input of every route is bounded by its type at the edge (issue 31 item 5, decision 0029).

The walk (testkit.bounds) reads every route of every app testkit.apps builds, the board's pages included, queries
as well as commands: an integer without a minimum and a maximum, a string without maxLength (or an enum, a uuid
format, a bounded pattern), an array without maxItems, a date or a time without its documented range fails it. A
new route or service is walked as soon as testkit.apps builds it. The values past those bounds answer 422 naming
the field, and store nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared.core.limits import MAX_DAY, MAX_ID_CHARS, MIN_DAY
from shared.ops.settings import SERVICES
from testkit.apps import apps
from testkit.bounds import bounded_pattern, operations, unbounded, whole_document
from testkit.services import bearer

# What no schema can bound, and why. Anything else unbounded fails the test below.
EXEMPT = {
    # any JSON a source sent, kept to re-run a mapping: bounded as a whole by its validator (MAX_RAW_PAYLOAD_BYTES,
    # MAX_JSON_DEPTH; tests/unit/test_request_bounds.py), which JSON Schema cannot say; its schema has maxProperties.
    ("leads", "CaptureLead.raw_payload"),
    # an imported fact's body (issue 26): the body of one of the service's commands, validated as that command
    # (each field bounded there) and bounded as a whole like raw_payload (shared.edge.imports.Fact).
    *((service, "Fact.body") for service in (*SERVICES,)),
}
APPS = apps()


def test_every_service_is_walked() -> None:
    assert set(SERVICES) | {"signin", "web"} <= set(APPS)


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_input_of_every_route_is_bounded_by_its_type(name: str) -> None:
    doc = whole_document(APPS[name])
    found = unbounded(doc)
    exempt = {where for s, where in EXEMPT if s == name}
    left = {where: why for where, why in found.items() if where not in exempt}
    assert left == {}, "unbounded inputs: bound them with the types of shared.core.limits (or exempt them, with why)"
    assert exempt <= set(found), "an exemption no longer needed: remove it"
    assert operations(doc) >= 4  # the walk saw the routes


def test_the_walk_finds_each_kind_of_unbounded_input() -> None:
    doc = {
        "paths": {
            "/x/{id}": {
                "get": {
                    "parameters": [
                        {"in": "path", "name": "id", "schema": {"type": "string"}},
                        {"in": "query", "name": "n", "schema": {"type": "integer", "maximum": 5}},
                        {"in": "query", "name": "m", "schema": {"type": "integer", "minimum": 0, "maximum": 5}},
                        {"in": "query", "name": "day", "schema": {"type": "string", "format": "date"}},
                        {
                            "in": "query",
                            "name": "ok_day",
                            "schema": {
                                "anyOf": [
                                    {
                                        "type": "string",
                                        "format": "date",
                                        "formatMinimum": "1900-01-01",
                                        "formatMaximum": "2199-12-31",
                                    },
                                    {"type": "null"},
                                ]
                            },
                        },
                        {"in": "query", "name": "u", "schema": {"type": "string", "format": "uuid"}},
                        {"in": "query", "name": "kind", "schema": {"enum": ["a", "b"]}},
                        {"in": "query", "name": "tags", "schema": {"type": "array", "items": {"type": "string"}}},
                    ]
                },
                "post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/c/X"}}}}},
            }
        },
        "components": {
            "schemas": {
                "X": {
                    "type": "object",
                    "properties": {
                        "ok": {"type": "string", "maxLength": 3},
                        "at": {"type": "string", "format": "date-time"},
                        "map": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 1}},
                    },
                }
            }
        },
    }
    assert set(unbounded(doc)) == {
        "GET /x/{id} path id",
        "GET /x/{id} query n",
        "GET /x/{id} query day",
        "GET /x/{id} query tags",
        "GET /x/{id} query tags[]",
        "X.at",
        "X.map",
        "X.map[key]",
    }


def test_bounded_pattern_tells_bounded_from_unbounded() -> None:
    for p in (r"^[A-Z]{3}$", r"^(outbound|inbound)$", r"^[a-z][a-z0-9_]{0,39}$"):
        assert bounded_pattern(p), p
    for p in (r"^[a-z_]*$", r"^a+$", r"[A-Z]{3}", r"^a|b$", r"^a{2,}$", None):
        assert not bounded_pattern(p), p


def test_the_board_pages_are_walked_though_left_out_of_its_document() -> None:
    web = APPS["web"]
    assert "/deal/{deal_id}" not in web.openapi()["paths"]
    assert "/deal/{deal_id}" in whole_document(web)["paths"]


# ---------------------------------------------------------------------------------------------- answers
SALES = bearer("u-lan", "sales")


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, TestClient]]:
    built: dict[str, FastAPI] = apps()
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(TestClient(built[name])) for name in ("deals", "leads", "production", "web")}


def errors(r: Any) -> dict[tuple[Any, ...], dict[str, Any]]:
    assert r.status_code == 422, r.text[:500]
    assert r.headers["content-type"].startswith("application/problem+json")
    return {tuple(e["loc"]): e for e in r.json()["errors"]}


def test_a_query_id_past_its_bound_answers_422_naming_it(clients: dict[str, TestClient]) -> None:
    r = clients["deals"].get("/deals", params={"owner_id": "u" * (MAX_ID_CHARS + 1)}, headers=SALES)
    assert errors(r)[("query", "owner_id")]["ctx"] == {"max_length": MAX_ID_CHARS}
    r = clients["deals"].get("/deals", params={"cursor": "c" * 10_000}, headers=SALES)
    assert ("query", "cursor") in errors(r)
    r = clients["leads"].get("/leads", params={"status": "s" * 10_000}, headers=bearer("u-mkt", "marketing"))
    assert ("query", "status") in errors(r)


def test_a_date_outside_its_range_answers_422_with_the_range(clients: dict[str, TestClient]) -> None:
    r = clients["deals"].get("/follow-ups", params={"due_by": "9999-12-31"}, headers=SALES)
    error = errors(r)[("query", "due_by")]
    assert error["ctx"] == {"min_day": MIN_DAY.isoformat(), "max_day": MAX_DAY.isoformat()}
    r = clients["deals"].get("/follow-ups", params={"due_by": "2026-12-01"}, headers=SALES)
    assert r.status_code == 503, r.text  # valid: on to the read models, which this in-memory app has none of


def test_a_command_date_outside_its_range_answers_422(clients: dict[str, TestClient]) -> None:
    order = {"customer": "Bình An", "lines": [{"product": "Tủ mát", "quantity": "2"}], "due_date": "9999-01-10"}
    production = bearer("u-prod", "production")
    r = clients["production"].post("/orders", json=order, headers=production)
    assert errors(r)[("body", "due_date")]["type"] == "date_out_of_range"
    r = clients["production"].post("/orders", json=order | {"due_date": "1899-12-31"}, headers=production)
    assert ("body", "due_date") in errors(r)
    r = clients["production"].post("/orders", json=order | {"due_date": "2027-01-10"}, headers=production)
    assert r.status_code == 201, r.text


def test_the_documents_give_each_date_its_range() -> None:
    doc = APPS["deals"].openapi()
    params = {p["name"]: p["schema"] for p in doc["paths"]["/follow-ups"]["get"]["parameters"]}
    day = params["due_by"]["anyOf"][0]
    assert (day["format"], day["formatMinimum"], day["formatMaximum"]) == ("date", "1900-01-01", "2199-12-31")


def test_a_board_page_id_past_its_bound_is_refused(clients: dict[str, TestClient]) -> None:
    r = clients["web"].get("/deal/" + "d" * 5000, follow_redirects=False)
    assert r.status_code == 422, r.text[:300]
    assert "deal_id" in r.text
