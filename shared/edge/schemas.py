"""The event schemas, served by every API where the events' ``dataschema`` points (decision 0024).

``GET /schemas/events/<service>/<Type>.v<N>.json`` and ``GET /schemas/events/envelope.v1.json``: the published files
of docs/events byte for byte (the consumer view: ``tools.contract``), open (no token: they are the public contract),
``application/schema+json``, cacheable (``Cache-Control``, a strong ``ETag``; ``If-None-Match`` answers 304). Every API
serves every schema (the files are the same in every image), so one base URL (PIPELINES_SCHEMA_BASE_URL) may point at
any of them. A name that is not a published schema answers 404 problem+json; nothing outside docs/events is read.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Request, Response
from fastapi import Path as PathParam

from shared.core.limits import MAX_NAME_CHARS
from shared.edge.problems import ERRORS, not_found, problem

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "docs" / "events"
# a published schema's name: no dots, slashes or anything else that could leave the folder
_NAME = re.compile(r"^(?:[a-z]{1,40}/[A-Z][A-Za-z0-9]{0,80}\.v[1-9][0-9]{0,3}|envelope\.v[1-9][0-9]{0,3})\.json$")
MEDIA_TYPE = "application/schema+json"
CACHE_CONTROL = "public, max-age=3600"  # a published version only ever changes compatibly (tools/contract.py)


@lru_cache(maxsize=1024)
def _published(name: str) -> tuple[bytes, str] | None:
    path = SCHEMAS_DIR / name
    if not path.is_file():
        return None
    body = path.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def schema_file(name: str) -> tuple[bytes, str] | None:
    """The published schema ``events/<name>`` and its ETag, or None when there is no such schema."""
    return _published(name) if _NAME.fullmatch(name) else None


def install_event_schemas(app: FastAPI) -> None:
    @app.get(
        "/schemas/events/{name:path}",
        tags=["health"],
        summary="an event schema (the URI of an event's `dataschema`), as published in docs/events",
        response_class=Response,
        responses={
            200: {"content": {MEDIA_TYPE: {}}, "description": "the JSON Schema (2020-12)"},
            304: {"description": "not modified (If-None-Match)"},
            **not_found("no such published schema"),
            422: ERRORS[422],
        },
    )
    async def event_schema(name: Annotated[str, PathParam(max_length=MAX_NAME_CHARS)], request: Request) -> Response:
        found = schema_file(name)
        if found is None:
            return problem(404, f"no published event schema is named {name[:100]!r}")
        body, etag = found
        headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Access-Control-Allow-Origin": "*"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=MEDIA_TYPE, headers=headers)
