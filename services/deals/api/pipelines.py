"""Pipelines and targets: a pipeline's stages (``GET``, or as of a version) and their definition (``PUT``, a new
version: a director's, since every team works the pipelines); a revenue target for an owner or a team and period
(``PUT``: a manager their team's, a director any)."""

# No `from __future__ import annotations` here: FastAPI reads the routes' body types at runtime.

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from services.deals import domain
from services.deals.api import forms
from services.deals.api.answers import PipelineView
from services.deals.api.common import ERRORS, Reader, Service, known
from services.deals.api.rights import may_set_target
from services.deals.api.views import pipeline_as_json
from shared.core.decider import AbsentError
from shared.core.limits import MAX_VERSION, Identifier
from shared.edge.auth import Principal, require
from shared.edge.commands import CommandAnswer, IdempotencyKey, IfMatch, run_command

router = APIRouter(responses=ERRORS)


@router.get(
    "/pipelines/{pipeline_id}",
    tags=["pipelines"],
    summary="a pipeline's stages (or as of a version)",
    response_model=PipelineView,
)
async def get_pipeline(
    pipeline_id: Identifier,
    svc: Service,
    p: Reader,
    response: Response,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> dict[str, Any]:
    pipeline = await svc.deals.pipeline(pipeline_id, to_version=version)
    if not pipeline.exists:
        raise AbsentError("not_found", f"no pipeline {pipeline_id}")
    response.headers["ETag"] = f'"{pipeline.version}"'
    return pipeline_as_json(pipeline)


@router.put(
    "/pipelines/{pipeline_id}",
    tags=["pipelines"],
    response_model=CommandAnswer,
    summary="define a pipeline's stages (a new version)",
)
async def put_pipeline(
    pipeline_id: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$")],
    request: Request,
    body: domain.DefinePipeline,
    svc: Service,
    p: Annotated[Principal, Depends(require("sales_director"))],  # every team works the pipelines
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.deals.define_pipeline(pipeline_id, body, ctx),
        aggregate_id=pipeline_id,
        if_match=if_match,
        idempotency_key=idempotency_key,
    )


@router.put(
    "/targets/{target_id}",
    tags=["targets"],
    response_model=CommandAnswer,
    summary="set a revenue target for an owner or a team and period",
)
async def put_target(
    target_id: uuid.UUID,
    request: Request,
    body: forms.SetSalesTarget,
    svc: Service,
    p: Annotated[Principal, Depends(require("sales_manager", "sales_director"))],
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    may_set_target(p, body.team_id)
    await known(svc, body.owner_id, body.team_id, request=request)
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.deals.set_target(target_id, body, ctx),
        aggregate_id=str(target_id),
        if_match=if_match,
        idempotency_key=idempotency_key,
    )
