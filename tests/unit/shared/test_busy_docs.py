"""The busy answer in the OpenAPI documents (shared.edge.busy_docs, decision 0032): every operation of every API
behind the in-flight bound lists 503 ``busy`` with ``Retry-After``, the probes and the scrape do not, the board does
not; and the answer a bounded app really gives is the one its served document describes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
from fastapi import FastAPI

from shared.edge.busy_docs import MARK
from shared.edge.http import install_common
from shared.edge.overload import EXEMPT
from shared.edge.problems import MEDIA_TYPE
from testkit.apps import apps

METHODS = {"get", "put", "post", "delete", "patch"}


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, ops in doc["paths"].items() for m, op in ops.items() if m in METHODS]


def is_busy(op: dict[str, Any]) -> bool:
    answer = op["responses"].get("503", {})
    example = answer.get("content", {}).get(MEDIA_TYPE, {}).get("examples", {}).get("busy", {})
    return (
        MARK in answer.get("description", "")
        and "Retry-After" in answer.get("headers", {})
        and example.get("value", {}).get("rule") == "busy"
    )


def test_every_bounded_apis_operation_documents_busy_but_the_probes_and_the_board() -> None:
    for name, app in apps().items():
        doc = app.openapi()
        for path, method, op in operations(doc):
            expected = name != "web" and path not in EXEMPT
            assert is_busy(op) == expected, f"{name}: {method.upper()} {path}"
        assert app.openapi() == doc, "documenting it again changes nothing"


def bounded_app(release: asyncio.Event, *, bounded: bool = True) -> FastAPI:
    app = FastAPI()

    async def ready() -> dict[str, str]:
        return {"postgresql": "ok"}

    install_common(app, ready, "busy-docs-test", bounded=bounded)
    app.state.max_in_flight = 1

    @app.post("/things", status_code=201)
    async def create() -> dict[str, str]:
        await release.wait()
        return {"id": "t"}

    return app


def test_an_app_not_bounded_documents_no_busy_answer() -> None:
    doc = bounded_app(asyncio.Event(), bounded=False).openapi()
    assert "503" not in doc["paths"]["/things"]["post"]["responses"]


async def test_the_busy_answer_given_is_the_one_the_served_document_describes() -> None:
    release = asyncio.Event()
    app = bounded_app(release)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        doc = (await http.get("/openapi.json")).json()
        held = asyncio.create_task(http.post("/things"))
        while 'pipelines_http_in_flight{service="busy-docs-test"} 1.0' not in (await http.get("/metrics")).text:
            await asyncio.sleep(0.01)  # the held request fills the bound of 1
        busy = await http.post("/things")
        release.set()
        assert (await held).status_code == 201
    documented = doc["paths"]["/things"]["post"]["responses"]["503"]
    assert documented["x-busy-only"] is True
    media = documented["content"][busy.headers["content-type"]]
    jsonschema.Draft202012Validator(media["schema"] | {"components": doc["components"]}).validate(busy.json())
    assert busy.json() == media["examples"]["busy"]["value"]
    header = documented["headers"]["Retry-After"]["schema"]
    jsonschema.Draft202012Validator(header).validate(int(busy.headers["retry-after"]))
