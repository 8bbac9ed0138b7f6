"""``POST /imports`` and ``GET /imports/{id}``: an export uploaded and imported as a job by the directory (issue 26,
decision 0021; the job: services.directory.import_jobs, the core: shared.imports). The body is the file as it is
(CSV or XLSX, any content type), streamed to the spool directory under its own limit
(``PIPELINES_IMPORT_MAX_BYTES``: 413, nothing kept), not the API's body limit. The importer role (and admin) start
and read jobs; a job's read gives its state, counts and bad rows (row, column, reason), as ``pipelines import``
reports them."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from services.directory.api.answers import ImportJob
from services.directory.api.common import DirectoryAPI, Service
from services.directory.domain.commands import TEAM_ID_PATTERN, USER_ID_PATTERN
from services.directory.import_jobs import ImportJobs, TooLargeError
from shared.core.decider import AbsentError
from shared.core.limits import MAX_CODE_CHARS, MAX_ID_CHARS
from shared.edge.auth import Principal, require
from shared.edge.problems import ERRORS, not_found
from shared.imports.mapping import SOURCE_NAME
from shared.store.commands import Context

router = APIRouter(responses=ERRORS)
Importer = Annotated[Principal, Depends(require("importer"))]
MAX_UPLOAD_BYTES = 100 * 1024**3  # PIPELINES_IMPORT_MAX_BYTES's greatest value (shared.ops.settings)
FILE_NAME = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,200}$")


def jobs(svc: DirectoryAPI) -> ImportJobs:
    if svc.imports is None:
        raise HTTPException(503, detail="this process runs no import jobs")
    return svc.imports


@router.post(
    "/imports",
    status_code=202,
    tags=["imports"],
    summary="upload a source's export (the body: the CSV or XLSX file) and import it as a job; read it at "
    "GET /imports/{id}",
    responses={
        202: {"description": "the job started: its id and where to read it"},
        413: {"description": "the upload is larger than PIPELINES_IMPORT_MAX_BYTES (nothing is kept)"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {
                    # the bound is PIPELINES_IMPORT_MAX_BYTES (default 200 MiB); this, its greatest value
                    "schema": {"type": "string", "format": "binary", "maxLength": MAX_UPLOAD_BYTES}
                }
            },
        }
    },
)
async def start_import(
    request: Request,
    response: Response,
    svc: Service,
    p: Importer,
    source: Annotated[str, Query(pattern=SOURCE_NAME.pattern, description="a shipped mapping: pipedrive, hubspot…")],
    file_name: Annotated[
        str, Query(pattern=FILE_NAME.pattern, description="the file's name, for the report")
    ] = "upload",
    dry_run: bool = False,
    owner: Annotated[
        str | None,
        Query(
            max_length=MAX_ID_CHARS,
            pattern=USER_ID_PATTERN,
            description="owns the rows whose owner the mapping does not know (a directory user)",
        ),
    ] = None,
    owner_team: Annotated[
        str | None, Query(max_length=MAX_CODE_CHARS, pattern=TEAM_ID_PATTERN, description="that owner's team")
    ] = None,
) -> dict[str, Any]:
    runner = jobs(svc)
    ctx = Context(actor=p.user_id, correlation_id=request.state.correlation_id)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > runner.config.max_bytes:
        raise HTTPException(413, detail=f"the upload is larger than {runner.config.max_bytes} bytes")
    try:
        job = await runner.start(
            source,
            file_name,
            request.stream(),
            dry_run=dry_run,
            owner=(owner, owner_team) if owner else None,
            actor=p.user_id,
            meta=ctx.metadata(),
            token=request.headers.get("authorization", "").partition(" ")[2].strip(),  # verified: its batches' token
        )
    except TooLargeError as exc:
        raise HTTPException(413, detail=str(exc)) from None
    response.headers["Location"] = f"/imports/{job}"
    return {"id": str(job), "state": "running", "location": f"/imports/{job}"}


@router.get(
    "/imports/{import_id}",
    tags=["imports"],
    summary="an import job: its state (running, done, failed), counts and bad rows",
    responses=not_found("no such import job"),
    response_model=ImportJob,
)
async def get_import(import_id: uuid.UUID, svc: Service, p: Importer) -> dict[str, Any]:
    answer = await jobs(svc).status(import_id)
    if answer is None:
        raise AbsentError("not_found", f"no import {import_id}")
    return answer
