"""The read routes' examples are real answers (issue 31 item 5, decision 0029): each example a response model
documents is valid against the schema its OpenAPI document publishes, and goes through the model unchanged — the
same keys in the same order, no value coerced — so a client reading the documents reads what the route answers
(the routes answer their dicts through these models: a model reordering, dropping or coercing a field would change
the bytes clients get)."""

from __future__ import annotations

import json
from typing import Any, get_args, get_origin

import pytest
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from pydantic import BaseModel

from testkit.apps import apps

APPS = apps()


def _model(annotation: Any) -> type[BaseModel] | None:
    """The model a route answers (a list's item, a page's item: their examples are the item's)."""
    if get_origin(annotation) is list:
        return _model(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        items = annotation.model_fields.get("items")
        if not _examples(annotation) and items is not None:
            return _model(items.annotation)
        return annotation
    return None


def _examples(model: type[BaseModel]) -> list[dict[str, Any]]:
    extra = model.model_config.get("json_schema_extra")
    return list(extra.get("examples", [])) if isinstance(extra, dict) else []


def _documented(name: str) -> list[tuple[RouteContext, type[BaseModel], dict[str, Any]]]:
    found = []
    for route in iter_route_contexts(APPS[name].routes):  # the included routers' routes too
        if isinstance(route.original_route, APIRoute) and "GET" in (route.methods or ()) and route.response_model:
            model = _model(route.response_model)
            if model is not None:
                found += [(route, model, ex) for ex in _examples(model)]
    return found


@pytest.mark.parametrize("name", sorted(APPS))
def test_each_example_goes_through_its_model_unchanged(name: str) -> None:
    for route, model, example in _documented(name):
        answered = model.model_validate(example).model_dump(
            mode="json", by_alias=True, exclude_unset=route.response_model_exclude_unset
        )
        assert json.dumps(answered, ensure_ascii=False) == json.dumps(example, ensure_ascii=False), (
            f"{route.path}: {model.__name__}'s example comes out changed (a field's order or type)"
        )


@pytest.mark.parametrize("name", sorted(APPS))
def test_each_example_is_valid_against_the_published_schema(name: str) -> None:
    doc = APPS[name].openapi()
    schemas = doc.get("components", {}).get("schemas", {})
    for route, model, example in _documented(name):
        # the schema the document publishes for the model's answers (FastAPI's output schema: `-Output` when the
        # input one differs)
        key = next((k for k in (f"{model.__name__}-Output", model.__name__) if k in schemas), None)
        assert key is not None, f"{route.path}: {model.__name__} is not in the document"
        validator = Draft202012Validator({**schemas[key], "components": doc["components"]})
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(example)]
        assert not errors, f"{route.path}: {model.__name__}'s example is not valid: {errors}"
