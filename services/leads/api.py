"""The leads service's HTTP API: capture (direct and from the sources' webhooks), the lead lifecycle, campaigns,
erasure, and the marketing read models.

Roles: ``marketing`` and ``admin`` change things and see contact details; ``auditor`` reads everything but
personal data; the sales roles read leads (to work them) without contact details unless the
lead is assigned to them. Webhooks are open but verified (signature, token or key) as each source allows.
"""

# No `from __future__ import annotations` here: FastAPI reads the command routes' body types at runtime.

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field, ValidationError

from services.leads import domain, projections, sources
from services.leads.handlers import Captured, Leads
from shared.alerts import add_alerts_route
from shared.core.limits import DAY_RANGE, MAX_EXTERNAL_ID_CHARS, Day, bounded_errors
from shared.edge.auth import Principal, TokenVerifier, require
from shared.edge.commands import CommandAnswer, IdempotencyKey, IfMatch, answer, command_context
from shared.edge.http import install_common
from shared.edge.problems import ERRORS as COMMON_ERRORS
from shared.edge.problems import Problem, http_problem
from shared.edge.queries import Cursor, Limit, WaitFor, decode_cursor, history_page, page, wait_target
from shared.messaging.projections import ReadModels
from shared.ops.settings import Settings
from shared.store.commands import Context

T = TypeVar("T")
CHANGE = ("marketing",)
READ = ("marketing", "auditor", "sales", "sales_manager", "sales_director")
ERRORS = COMMON_ERRORS | {404: {"model": Problem, "description": "no such lead or campaign"}}
GENERIC = (
    domain.Assign,
    domain.RecordEngagement,
    domain.Segment,
    domain.Score,
    domain.RecordContact,
    domain.StartNurture,
    domain.StopNurture,
    domain.RecordNurtureEmail,
    domain.ExtendOffer,
    domain.StartTrial,
    domain.Qualify,
    domain.Disqualify,
    domain.Convert,
    domain.Recycle,
    domain.UpdateContact,
)


@dataclass
class LeadsAPI:
    leads: Leads
    read_models: ReadModels | None
    settings: Settings
    graph: sources.FacebookGraph | None
    readiness: Callable[[], Awaitable[dict[str, str]]]


def sees_personal_data(p: Principal, owner_id: str | None = None) -> bool:
    return bool(p.roles & {"admin", "marketing"}) or (owner_id is not None and owner_id == p.user_id)


class MergeBody(BaseModel):
    other_lead_id: uuid.UUID


class EraseBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500, examples=["data subject request of 2026-11-24"])


def create_app(svc: LeadsAPI, verifier: TokenVerifier) -> FastAPI:
    app = FastAPI(
        title="Pipelines — leads",
        version="1.0.0",
        description="The marketing pipeline: from ad click to customer. " + (__doc__ or ""),
    )
    app.state.token_verifier = verifier
    install_common(app, svc.readiness, "leads")
    tz = ZoneInfo(svc.settings.timezone)

    @app.exception_handler(sources.WebhookRejectedError)
    async def rejected(request: Request, exc: sources.WebhookRejectedError) -> JSONResponse:
        return await http_problem(request, HTTPException(exc.status, detail=exc.detail))

    router = APIRouter(responses=ERRORS)

    context = command_context

    async def existing(lead_id: uuid.UUID) -> Any:
        loaded = await svc.leads.lead(lead_id)
        if loaded.version == 0:
            raise HTTPException(404, detail=f"no lead {lead_id}")
        return loaded

    def captured_answer(c: Captured) -> Response:
        if c.result is None:  # this delivery was captured before: answer as the first time did
            return JSONResponse({"id": str(c.lead_id), "replayed": True}, status_code=200)
        response = answer(str(c.lead_id), c.result.append, created=True, location=f"/leads/{c.lead_id}")
        if c.duplicate_of:
            response.headers["X-Duplicate-Of"] = str(c.duplicate_of)
        return response

    # ------------------------------------------------------------------ capture
    @router.post(
        "/leads",
        status_code=201,
        response_model=CommandAnswer,
        tags=["capture"],
        summary="capture a lead typed in or imported",
    )
    async def capture(
        request: Request,
        body: Annotated[
            domain.CaptureLead,
            Body(
                openapi_examples={
                    "manual": {
                        "value": {
                            "source": "manual",
                            "contact": {"name": "Trần Thị Bích", "phone": "0912 345 678", "company": "Cà phê Phố"},
                            "attribution": {"source": "manual", "channel": "event", "campaign_id": "hoi-cho-2026"},
                        }
                    }
                }
            ),
        ],
        p: Annotated[Principal, Depends(require(*CHANGE))],
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        ctx = await context(request, p.user_id, key=idempotency_key)
        return captured_answer(await svc.leads.capture(body, ctx, imported=True))  # never a webhook's lead id

    def secret(value: Any, name: str) -> str:
        if value is None:
            raise HTTPException(503, detail=f"the {name} webhook is not configured")
        return str(value.get_secret_value())

    def mapped(source: Callable[..., T], *payload: Any) -> T:
        """A source's payload mapped to a lead. A value over a limit (shared.core.limits) is the payload's fault: 422,
        each field at fault named as the lead's (``["lead", "raw_payload"]``) with its limit."""
        try:
            return source(*payload)
        except ValidationError as exc:
            raise HTTPException(422, detail=bounded_errors(exc.errors(), prefix=("lead",))) from None

    async def webhook_capture(request: Request, cmd: domain.CaptureLead, source: str) -> Response:
        ctx = Context(actor=f"webhook:{source}", correlation_id=request.state.correlation_id)
        return captured_answer(await svc.leads.capture(cmd, ctx))

    @router.post("/webhooks/website", tags=["webhooks"], summary="the website's form (HMAC-signed)")
    async def website(request: Request) -> Response:
        body = await request.body()
        sources.verify_hmac(
            body, request.headers.get("x-pipelines-signature"), secret(svc.settings.website_form_secret, "website form")
        )
        return await webhook_capture(request, mapped(sources.website_form, sources.parse_json(body)), "website")

    @router.post("/webhooks/ladipage", tags=["webhooks"], summary="a Ladipage form (token in the URL)")
    async def ladipage(
        request: Request, token: Annotated[str | None, Query(max_length=MAX_EXTERNAL_ID_CHARS)] = None
    ) -> Response:
        sources.verify_token(token, secret(svc.settings.ladipage_token, "Ladipage"))
        cmd = mapped(sources.ladipage, sources.parse_json(await request.body()))
        return await webhook_capture(request, cmd, "ladipage")

    @router.get(
        "/webhooks/facebook",
        tags=["webhooks"],
        summary="Facebook's subscription check",
        response_class=Response,  # the challenge as text/plain; errors as JSON
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "the challenge"}},
    )
    async def facebook_verify(
        mode: Annotated[str | None, Query(alias="hub.mode", max_length=MAX_EXTERNAL_ID_CHARS)] = None,
        verify_token: Annotated[str | None, Query(alias="hub.verify_token", max_length=MAX_EXTERNAL_ID_CHARS)] = None,
        challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=MAX_EXTERNAL_ID_CHARS)] = None,
    ) -> Response:
        sources.verify_token(verify_token, secret(svc.settings.facebook_verify_token, "Facebook"))
        if mode != "subscribe" or not challenge:
            raise HTTPException(422, detail="expected hub.mode=subscribe and a hub.challenge")
        return PlainTextResponse(challenge)

    @router.post("/webhooks/facebook", tags=["webhooks"], summary="Facebook Lead Ads (X-Hub-Signature-256)")
    async def facebook(request: Request) -> Response:
        body = await request.body()
        sources.verify_hmac(
            body, request.headers.get("x-hub-signature-256"), secret(svc.settings.facebook_app_secret, "Facebook")
        )
        if svc.graph is None:
            raise HTTPException(503, detail="the Facebook Graph API is not configured")
        captured = []
        for notification in sources.facebook_leadgen_ids(sources.parse_json(body)):
            try:
                lead = await svc.graph.fetch_lead(str(notification["leadgen_id"]))
            except (sources.GraphAPIError, OSError) as exc:
                # not 200: Facebook delivers the notification again later, nothing is lost
                detail = f"could not fetch the lead: {exc}"
                raise HTTPException(503, detail=detail, headers={"Retry-After": "60"}) from None
            ctx = Context(actor="webhook:facebook", correlation_id=request.state.correlation_id)
            c = await svc.leads.capture(mapped(sources.facebook_lead, notification, lead), ctx)
            captured.append({"id": str(c.lead_id), "replayed": c.result is None})
        return JSONResponse({"captured": captured})

    @router.post("/webhooks/google-ads", tags=["webhooks"], summary="Google Ads lead form (google_key)")
    async def google_ads(request: Request) -> Response:
        body, key = await request.body(), secret(svc.settings.google_ads_webhook_key, "Google Ads")
        sources.verify_token(sources.google_key(body), key)  # before the body is parsed: its key, found in the bytes
        data = sources.parse_json(body)
        given = data.get("google_key")
        sources.verify_token(given if isinstance(given, str) else None, key)  # and the body's own, top level
        cmd = mapped(sources.google_ads, data)
        if cmd is None:
            return JSONResponse({"ignored": "test lead"})
        return await webhook_capture(request, cmd, "google-ads")

    # ------------------------------------------------------------------ the lead's lifecycle
    def command_route(cmd: type[domain.Command]) -> None:
        async def run(
            lead_id: uuid.UUID,
            request: Request,
            body: cmd,  # type: ignore[valid-type]  # a class chosen at runtime, one route per command
            p: Annotated[Principal, Depends(require(*CHANGE))],
            if_match: IfMatch = None,
            idempotency_key: IdempotencyKey = None,
        ) -> Response:
            await existing(lead_id)
            command: domain.Command = body
            result = await svc.leads.handle(
                lead_id, command, await context(request, p.user_id, if_match, idempotency_key)
            )
            return answer(str(lead_id), result.append)

        router.add_api_route(
            "/leads/{lead_id}/" + cmd.name.replace("_", "-"),
            run,
            methods=["POST"],
            response_model=CommandAnswer,
            tags=["lead commands"],
            summary=cmd.name.replace("_", " "),
        )

    for cmd in GENERIC:
        command_route(cmd)

    @router.post(
        "/leads/{lead_id}/merge",
        response_model=CommandAnswer,
        tags=["lead commands"],
        summary="merge another lead (a duplicate) into this one",
    )
    async def merge(
        lead_id: uuid.UUID, request: Request, body: MergeBody, p: Annotated[Principal, Depends(require(*CHANGE))]
    ) -> Response:
        await existing(lead_id)
        await existing(body.other_lead_id)
        result = await svc.leads.merge(lead_id, body.other_lead_id, await context(request, p.user_id))
        return answer(str(lead_id), result.append)

    @router.post(
        "/leads/{lead_id}/remap",
        response_model=CommandAnswer,
        tags=["lead commands"],
        summary="run the source's current field mapping again on the kept payload",
    )
    async def remap(
        lead_id: uuid.UUID, request: Request, p: Annotated[Principal, Depends(require(*CHANGE))]
    ) -> Response:
        await existing(lead_id)
        try:
            result = await svc.leads.remap(lead_id, await context(request, p.user_id))
        except ValidationError as exc:  # the kept payload maps to a value over a limit
            raise HTTPException(422, detail=bounded_errors(exc.errors(), prefix=("lead",))) from None
        return answer(str(lead_id), result.append)

    @router.post(
        "/leads/{lead_id}/erase",
        response_model=CommandAnswer,
        tags=["personal data"],
        summary="forget the person: their key is destroyed everywhere",
    )
    async def erase(
        lead_id: uuid.UUID, request: Request, body: EraseBody, p: Annotated[Principal, Depends(require(*CHANGE))]
    ) -> Response:
        await existing(lead_id)
        result = await svc.leads.erase(lead_id, body.reason, await context(request, p.user_id))
        return answer(str(lead_id), result.append)

    @router.get("/leads/{lead_id}", tags=["leads"], summary="the lead now")
    async def get_lead(
        lead_id: uuid.UUID, p: Annotated[Principal, Depends(require(*READ))], response: Response
    ) -> dict[str, Any]:
        loaded = await existing(lead_id)
        body = domain.state_as_json(loaded.state)
        body["version"] = loaded.version
        if sees_personal_data(p, loaded.state.owner_id):
            contact = await svc.leads.contact(lead_id)
            body["contact"] = contact.model_dump(mode="json") if contact else None
        response.headers["ETag"] = f'"{loaded.version}"'
        return body

    @router.get("/leads/{lead_id}/history", tags=["leads"], summary="every event of the lead")
    async def history(
        lead_id: uuid.UUID, p: Annotated[Principal, Depends(require(*READ))], limit: Limit = 100, cursor: Cursor = None
    ) -> Any:
        loaded = await existing(lead_id)
        personal = sees_personal_data(p, loaded.state.owner_id)
        return await history_page(
            loaded.events, svc.leads.personal_data, personal=personal, offset=decode_cursor(cursor), limit=limit
        )

    # ------------------------------------------------------------------ campaigns
    @router.post("/campaigns", status_code=201, response_model=CommandAnswer, tags=["campaigns"])
    async def create_campaign(
        request: Request,
        body: domain.CreateCampaign,
        p: Annotated[Principal, Depends(require(*CHANGE))],
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        campaign_id = uuid.uuid4()
        result = await svc.leads.campaign_command(
            campaign_id, body, await context(request, p.user_id, key=idempotency_key)
        )
        cid = result.append.stream_id.removeprefix("campaign-")
        return answer(cid, result.append, created=True, location=f"/campaigns/{cid}")

    @router.post(
        "/campaigns/{campaign_id}/status",
        response_model=CommandAnswer,
        tags=["campaigns"],
        summary="launch, pause or end",
    )
    async def campaign_status(
        campaign_id: uuid.UUID,
        request: Request,
        body: domain.ChangeCampaignStatus,
        p: Annotated[Principal, Depends(require(*CHANGE))],
        if_match: IfMatch = None,
    ) -> Response:
        result = await svc.leads.campaign_command(campaign_id, body, await context(request, p.user_id, if_match))
        return answer(str(campaign_id), result.append)

    @router.put("/campaigns/{campaign_id}/budget", response_model=CommandAnswer, tags=["campaigns"])
    async def campaign_budget(
        campaign_id: uuid.UUID,
        request: Request,
        body: domain.ChangeBudget,
        p: Annotated[Principal, Depends(require(*CHANGE))],
        if_match: IfMatch = None,
    ) -> Response:
        result = await svc.leads.campaign_command(campaign_id, body, await context(request, p.user_id, if_match))
        return answer(str(campaign_id), result.append)

    @router.put(
        "/campaigns/{campaign_id}/spend/{day}",
        response_model=CommandAnswer,
        tags=["campaigns"],
        summary="a day's spend (the same day again changes nothing; a different amount needs a reason)",
    )
    async def campaign_spend(
        campaign_id: uuid.UUID,
        day: Annotated[Day, Path(description=f"the day of the spend: {DAY_RANGE}")],
        request: Request,
        body: domain.RecordSpend,
        p: Annotated[Principal, Depends(require(*CHANGE))],
    ) -> Response:
        result = await svc.leads.campaign_command(campaign_id, body, await context(request, p.user_id), day)
        return answer(str(campaign_id), result.append)

    @router.get("/campaigns/{campaign_id}", tags=["campaigns"])
    async def get_campaign(campaign_id: uuid.UUID, p: Annotated[Principal, Depends(require(*READ))]) -> dict[str, Any]:
        c = (await svc.leads.campaign(campaign_id)).state
        if c.status == "none":
            raise HTTPException(404, detail=f"no campaign {campaign_id}")
        return {
            "campaign_id": str(campaign_id),
            "name": c.name,
            "channel": c.channel,
            "code": c.code,
            "status": c.status,
            "budget": c.budget.model_dump(mode="json") if c.budget else None,
            "spend": {d.isoformat(): m.model_dump(mode="json") for d, m in sorted(c.spend.items())},
        }

    # ------------------------------------------------------------------ read models
    def read_models() -> ReadModels:
        if svc.read_models is None:
            raise HTTPException(503, detail="this process serves no read models")
        return svc.read_models

    def window(start: date, end: date) -> tuple[datetime, datetime]:
        if end <= start:
            raise HTTPException(422, detail="`to` must be after `from`")
        return datetime.combine(start, time(), tz), datetime.combine(end, time(), tz)

    async def waited(position: int | None) -> tuple[str, int] | None:
        return await wait_target(svc.leads.store, position)

    @router.get("/leads", tags=["read models"], summary="the lead inbox, newest first")
    async def get_inbox(
        p: Annotated[Principal, Depends(require(*READ))],
        status: str | None = None,
        source: str | None = None,
        unassigned: bool | None = None,
        limit: Limit = 50,
        cursor: Cursor = None,
        position: WaitFor = None,
    ) -> Any:
        offset = decode_cursor(cursor)
        async with read_models().connection("marketing", wait_for=await waited(position)) as conn:
            rows = await projections.inbox(
                conn, status=status, source=source, unassigned=unassigned, offset=offset, limit=limit
            )
        tokens = [{"contact": r.pop("contact_token")} for r in rows]
        allowed = [sees_personal_data(p, r["owner_id"]) for r in rows]
        opened = await svc.leads.personal_data.open(tokens) if any(allowed) else tokens
        for r, o, ok in zip(rows, opened, allowed, strict=True):
            r["contact"] = o["contact"] if ok else None
        return page(rows, offset, limit)

    @router.get("/funnel", tags=["read models"], summary="captured → MQL → SQL → opportunity → customer")
    async def get_funnel(
        p: Annotated[Principal, Depends(require(*READ))],
        start: Annotated[Day, Query(alias="from", description=DAY_RANGE)],
        end: Annotated[Day, Query(alias="to", description=DAY_RANGE)],
        by: Literal["source", "campaign", "month"] = "source",
        position: WaitFor = None,
    ) -> list[dict[str, Any]]:
        lo, hi = window(start, end)
        async with read_models().connection("marketing", wait_for=await waited(position)) as conn:
            return await projections.funnel(conn, by=by, start=lo, end=hi, tz=svc.settings.timezone)

    @router.get("/campaigns", tags=["read models"], summary="campaign performance: CPL, CAC, revenue, ROI, ROAS")
    async def get_campaigns(
        p: Annotated[Principal, Depends(require(*READ))],
        start: Annotated[Day, Query(alias="from", description=DAY_RANGE)],
        end: Annotated[Day, Query(alias="to", description=DAY_RANGE)],
        position: WaitFor = None,
    ) -> list[dict[str, Any]]:
        lo, hi = window(start, end)
        async with read_models().connection("marketing", wait_for=await waited(position)) as conn:
            return await projections.campaign_performance(conn, start=lo, end=hi, tz=svc.settings.timezone)

    @router.get("/nurture", tags=["read models"], summary="nurture sequences: sent, opened, clicked, converted")
    async def get_nurture(p: Annotated[Principal, Depends(require(*READ))]) -> list[dict[str, Any]]:
        async with read_models().connection("marketing") as conn:
            return await projections.nurture_performance(conn)

    @router.get("/segments", tags=["read models"], summary="leads per segment and how far they got")
    async def get_segments(p: Annotated[Principal, Depends(require(*READ))]) -> list[dict[str, Any]]:
        async with read_models().connection("marketing") as conn:
            return await projections.segments(conn)

    add_alerts_route(router, "leads", read_models, require(*READ))
    app.include_router(router)
    return app
