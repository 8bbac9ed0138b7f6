"""The sources' webhooks: open, but verified as each source allows (an HMAC signature, a token in the URL, a key
in the body); each maps the source's payload to a capture, once per delivery (``Leads.capture``)."""

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError

from services.leads import domain, sources
from services.leads.api.common import ERRORS, LeadsAPI, Service, captured_answer, new_lead_id
from shared.core.limits import MAX_EXTERNAL_ID_CHARS, bounded_errors
from shared.store.commands import Context

T = TypeVar("T")
router = APIRouter(responses=ERRORS)
Param = Annotated[str | None, Query(max_length=MAX_EXTERNAL_ID_CHARS)]


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


async def webhook_capture(svc: LeadsAPI, request: Request, cmd: domain.CaptureLead, source: str) -> Response:
    ctx = Context(actor=f"webhook:{source}", correlation_id=request.state.correlation_id)
    return captured_answer(await svc.leads.capture(cmd, ctx, new_lead_id(cmd.external_id)))


@router.post("/webhooks/website", tags=["webhooks"], summary="the website's form (HMAC-signed)")
async def website(request: Request, svc: Service) -> Response:
    body = await request.body()
    key = secret(svc.settings.website_form_secret, "website form")
    sources.verify_hmac(body, request.headers.get("x-pipelines-signature"), key)
    return await webhook_capture(svc, request, mapped(sources.website_form, sources.parse_json(body)), "website")


@router.post("/webhooks/ladipage", tags=["webhooks"], summary="a Ladipage form (token in the URL)")
async def ladipage(request: Request, svc: Service, token: Param = None) -> Response:
    sources.verify_token(token, secret(svc.settings.ladipage_token, "Ladipage"))
    cmd = mapped(sources.ladipage, sources.parse_json(await request.body()))
    return await webhook_capture(svc, request, cmd, "ladipage")


@router.get(
    "/webhooks/facebook",
    tags=["webhooks"],
    summary="Facebook's subscription check",
    response_class=Response,  # the challenge as text/plain; errors as JSON
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "the challenge"}},
)
async def facebook_verify(
    svc: Service,
    mode: Annotated[str | None, Query(alias="hub.mode", max_length=MAX_EXTERNAL_ID_CHARS)] = None,
    verify_token: Annotated[str | None, Query(alias="hub.verify_token", max_length=MAX_EXTERNAL_ID_CHARS)] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=MAX_EXTERNAL_ID_CHARS)] = None,
) -> Response:
    sources.verify_token(verify_token, secret(svc.settings.facebook_verify_token, "Facebook"))
    if mode != "subscribe" or not challenge:
        raise HTTPException(422, detail="expected hub.mode=subscribe and a hub.challenge")
    return PlainTextResponse(challenge)


async def facebook_capture(svc: LeadsAPI, request: Request, notification: dict[str, Any]) -> dict[str, Any]:
    """One notification's lead, fetched from the Graph API and captured."""
    assert svc.graph is not None
    try:
        lead = await svc.graph.fetch_lead(str(notification["leadgen_id"]))
    except (sources.GraphAPIError, OSError) as exc:
        # not 200: Facebook delivers the notification again later, nothing is lost
        raise HTTPException(503, detail=f"could not fetch the lead: {exc}", headers={"Retry-After": "60"}) from None
    cmd = mapped(sources.facebook_lead, notification, lead)
    ctx = Context(actor="webhook:facebook", correlation_id=request.state.correlation_id)
    c = await svc.leads.capture(cmd, ctx, new_lead_id(cmd.external_id))
    return {"id": str(c.lead_id), "replayed": c.result is None}


@router.post("/webhooks/facebook", tags=["webhooks"], summary="Facebook Lead Ads (X-Hub-Signature-256)")
async def facebook(request: Request, svc: Service) -> Response:
    body = await request.body()
    key = secret(svc.settings.facebook_app_secret, "Facebook")
    sources.verify_hmac(body, request.headers.get("x-hub-signature-256"), key)
    if svc.graph is None:
        raise HTTPException(503, detail="the Facebook Graph API is not configured")
    captured = [
        await facebook_capture(svc, request, notification)
        for notification in sources.facebook_leadgen_ids(sources.parse_json(body))
    ]
    return JSONResponse({"captured": captured})


@router.post("/webhooks/google-ads", tags=["webhooks"], summary="Google Ads lead form (google_key)")
async def google_ads(request: Request, svc: Service) -> Response:
    body, key = await request.body(), secret(svc.settings.google_ads_webhook_key, "Google Ads")
    sources.verify_token(sources.google_key(body), key)  # before the body is parsed: its key, found in the bytes
    data = sources.parse_json(body)
    given = data.get("google_key")
    sources.verify_token(given if isinstance(given, str) else None, key)  # and the body's own, top level
    cmd = mapped(sources.google_ads, data)
    if cmd is None:
        return JSONResponse({"ignored": "test lead"})
    return await webhook_capture(svc, request, cmd, "google-ads")
