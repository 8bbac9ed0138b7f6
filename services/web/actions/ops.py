"""The marketing page's actions (a lead's: capture, assign, contact, qualify, disqualify, convert; a campaign's
day of spend) and the production page's (an order's: its next step, an inspection with defects, a partial shipment,
delivery, hold, resume), on the action framework (``core``): each the one API command its form makes
(``ops_calls``), run with the user's own token; the API decides and its refusal is shown."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx
from fastapi import HTTPException, Request, Response

from services.web import domain_words
from services.web.actions import ops_calls as calls
from services.web.actions.core import Action, Field, Form, Options, nav_of, register
from services.web.catalogs import N_
from services.web.render import html
from services.web.session import Session, login_redirect, signed_in
from services.web.state import Board, board_of
from shared.core.limits import Identifier


def body(make: Callable[[str | None, Mapping[str, str]], calls.Call], target: str) -> Callable[[Form], dict[str, Any]]:
    """The framework's body from a call maker (the path's id is the framework's: ``{lead_id}``, ``{order_id}``)."""
    return lambda form: make(form.get(target), form).body


def listed(values: tuple[str, ...], kind: str) -> list[tuple[str, str]]:
    """The options of a select: each id with its English label (``domain_words``; ``Field.translate``)."""
    words = domain_words.KINDS[kind]
    return [(v, words.get(v, v)) for v in values]


async def users(board: Board, who: Session) -> list[tuple[str, str]]:
    """The directory's active users as it answers the user's own token (its scope, decision 0017)."""
    found: list[tuple[str, str]] = []
    params = {"active": "true", "limit": "200"}
    try:
        for _ in range(20):
            r = await board.apis.http.get(
                board.apis.directory + "/users", params=params, headers={"Authorization": f"Bearer {who.token}"}
            )
            if r.status_code != 200:
                break
            page = r.json()
            found += [(u["user_id"], u.get("name") or u["user_id"]) for u in page["items"]]
            if not page.get("next_cursor"):
                break
            params = params | {"cursor": page["next_cursor"]}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        pass
    return sorted(found, key=lambda u: u[1])


async def lead_options(board: Board, who: Session, form: Form) -> Options:
    return {
        "users": await users(board, who),
        "channels": listed(calls.CHANNELS, "activity"),
        "levels": listed(calls.LEVELS, "level"),
        "disqualify_reasons": listed(calls.DISQUALIFY_REASONS, "disqualify_reason"),
        "currencies": [(c, c) for c in calls.CURRENCIES],
    }


async def shipments(board: Board, who: Session, order_id: str | None) -> list[tuple[str, str]]:
    """The order's shipments not yet delivered, as the production API answers the user (none if it refuses)."""
    try:
        order = calls.an_id(order_id, "order")
        r = await board.apis.get("production", f"/orders/{order}", {}, who.token)
        found = r.json().get("shipments", []) if r.status_code == 200 else []
        return [(s["shipment_id"], f"{s['quantity']} · {s['shipment_id'][:8]}") for s in found if not s["delivered"]]
    except (calls.FormError, httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
        return []


async def order_options(board: Board, who: Session, form: Form) -> Options:
    return {
        "steps": listed(calls.STEPS, "order_step"),
        "passed": [("false", N_("Failed (defects below)")), ("true", N_("Passed"))],
        "shipments": await shipments(board, who, form.get("order_id")),
    }


LEAD = Field("lead_id", N_("Lead"), "hidden")
ORDER = Field("order_id", N_("Order"), "hidden")
VERSION = Field("version", N_("Version"), "hidden")
CURRENCY = Field("currency", N_("Currency"), "select", options="currencies")


def lead(id_: str, label: str, path: str, make: Any, fields: tuple[Field, ...]) -> Action:
    """An action on a lead (or the capture of one) through the leads API, back to the marketing page."""
    return Action(
        id_,
        label,
        "leads",
        path,
        body(make, "lead_id"),
        (LEAD, VERSION, *fields),
        versioned=True,
        current="/leads/{lead_id}",
        back="/marketing",
        options=lead_options,
    )


def order(id_: str, label: str, path: str, make: Any, fields: tuple[Field, ...]) -> Action:
    """An action on an order through the production API, back to the production page."""
    return Action(
        id_,
        label,
        "production",
        path,
        body(make, "order_id"),
        (ORDER, VERSION, *fields),
        versioned=True,
        back="/production",
        options=order_options,
        current="/orders/{order_id}",
    )


CAPTURE = Action(
    "lead.capture",
    N_("Add a lead"),
    "leads",
    "/leads",
    lambda form: calls.capture_lead(None, form).body,
    (
        Field("source", N_("Source"), required=True, max_len=60),
        Field("campaign_id", N_("Campaign"), max_len=100),
        Field("name", N_("Name")),
        Field("email", N_("Email"), "email"),
        Field("phone", N_("Phone"), "tel", max_len=40),
        Field("company", N_("Company")),
    ),
    back="/marketing",
)
SPEND = Action(
    "campaign.spend",
    N_("Record a day's spend"),
    "leads",
    "/campaigns/{campaign_id}/spend/{day}",
    lambda form: calls.record_spend(form.get("campaign_id"), form).body,
    (
        Field("campaign_id", N_("Campaign"), "hidden"),
        Field("day", N_("Day"), "date", required=True),
        Field("amount", N_("Spend"), "number", required=True, max_len=20),
        CURRENCY,
    ),
    back="/marketing",
    options=lead_options,
    method="PUT",
)
MARKETING = (
    CAPTURE,
    lead(
        "lead.assign",
        N_("Assign"),
        "/leads/{lead_id}/assign",
        calls.assign_lead,
        (Field("owner_id", N_("Owner"), "select", required=True, options="users"),),
    ),
    lead(
        "lead.contact",
        N_("Record a contact"),
        "/leads/{lead_id}/contact",
        calls.contact_lead,
        (Field("channel", N_("Channel"), "select", required=True, options="channels", translate=True),),
    ),
    lead(
        "lead.qualify",
        N_("Qualify"),
        "/leads/{lead_id}/qualify",
        calls.qualify_lead,
        (Field("level", N_("Level"), "select", required=True, options="levels", translate=True),),
    ),
    lead(
        "lead.disqualify",
        N_("Disqualify"),
        "/leads/{lead_id}/disqualify",
        calls.disqualify_lead,
        (
            Field("reason", N_("Why"), "select", required=True, options="disqualify_reasons", translate=True),
            Field("note", N_("Note"), "textarea", max_len=500),
        ),
    ),
    lead(
        "lead.convert",
        N_("Convert to a deal"),
        "/leads/{lead_id}/convert",
        calls.convert_lead,
        (
            Field("customer", N_("Customer"), required=True),
            Field("title", N_("Deal"), required=True),
            Field("amount", N_("Value"), "number", max_len=20),
            CURRENCY,
            Field("expected_close_date", N_("Expected close date"), "date"),
        ),
    ),
    SPEND,
)
DEFECTS = tuple(
    f
    for i in range(3)
    for f in (
        Field(f"defect_kind_{i}", N_("Defect"), max_len=60),
        Field(f"defect_count_{i}", N_("Count"), "number", max_len=10),
    )
)
PRODUCTION = (
    order(
        "order.step",
        N_("Move to the next step"),
        "/orders/{order_id}/{step}",
        calls.move_order,
        (
            Field("step", N_("Step"), "select", required=True, options="steps", translate=True),
            Field("planned_start", N_("Planned start"), "date"),
            Field("planned_end", N_("Planned end"), "date"),
            Field("product", N_("Product")),
            Field("quantity", N_("Quantity"), "number", max_len=20),
            Field("packages", N_("Packages"), "number", max_len=10),
        ),
    ),
    order(
        "order.inspect",
        N_("Record an inspection"),
        "/orders/{order_id}/record-inspection",
        calls.inspect_order,
        (
            Field("passed", N_("Result"), "select", required=True, options="passed", translate=True),
            Field("inspected_quantity", N_("Units inspected"), "number", required=True, max_len=20),
            *DEFECTS,
        ),
    ),
    order(
        "order.ship",
        N_("Ship (part of) the order"),
        "/orders/{order_id}/ship",
        calls.ship_order,
        (
            Field("quantity", N_("Quantity"), "number", required=True, max_len=20),
            Field("carrier", N_("Carrier"), required=True, max_len=100),
            Field("tracking_no", N_("Tracking number"), max_len=100),
        ),
    ),
    order(
        "order.deliver",
        N_("Confirm delivery"),
        "/orders/{order_id}/confirm-delivery",
        calls.deliver_order,
        (Field("shipment_id", N_("Shipment"), "select", required=True, options="shipments"),),
    ),
    order(
        "order.hold",
        N_("Put on hold"),
        "/orders/{order_id}/hold",
        calls.hold_order,
        (Field("reason", N_("Why"), "textarea", required=True, max_len=500),),
    ),
    order(
        "order.resume",
        N_("Resume"),
        "/orders/{order_id}/resume",
        calls.resume_order,
        (Field("reason", N_("Why"), "textarea", max_len=500),),
    ),
)

register(*MARKETING, *PRODUCTION)
LEAD_ACTIONS = tuple(a for a in MARKETING if a.id.startswith("lead.") and a is not CAPTURE)


async def get_json(board: Board, who: Session, service: str, path: str) -> tuple[int, Any]:
    """One GET with the user's token: the status and the body (0, None when the API does not answer)."""
    try:
        r = await board.apis.http.get(
            board.settings.api_url(service) + path, headers={"Authorization": f"Bearer {who.token}"}
        )
        return r.status_code, r.json()
    except (httpx.HTTPError, ValueError):
        return 0, None


async def deal_made(board: Board, who: Session, lead: dict[str, Any]) -> tuple[str | None, str]:
    """The deal a converted lead opened (the deals API's reaction): its id, and whether it exists ("ok"), may not be
    read by the user ("forbidden") or is not there yet ("pending"); (None, "") for a lead not converted."""
    if lead.get("status") != "converted" or not lead.get("lead_id"):
        return None, ""
    deal = calls.deal_of_lead(str(lead["lead_id"]))
    status, _ = await get_json(board, who, "deals", f"/deals/{deal}")
    return deal, {200: "ok", 403: "forbidden"}.get(status, "pending")


async def thing_page(request: Request, kind: str, thing_id: str) -> Response:
    """GET /lead/{id}, /order/{id}: the lead or order as its API shows it to the user, and every action on it."""
    who = await signed_in(request)
    if who is None:
        return login_redirect(request)
    try:
        thing_id = calls.an_id(thing_id, kind)
    except calls.FormError:
        raise HTTPException(404, detail=f"no such {kind}") from None
    board = board_of(request)
    service, path, actions, loader = (
        ("leads", f"/leads/{thing_id}", LEAD_ACTIONS, lead_options)
        if kind == "lead"
        else ("production", f"/orders/{thing_id}", PRODUCTION, order_options)
    )
    status, thing = await get_json(board, who, service, path)
    if status != 200 or not isinstance(thing, dict):
        raise HTTPException(status if status in (403, 404) else 503, detail=f"no such {kind}, or not one you may see")
    values = {f"{kind}_id": thing_id, "version": str(thing.get("version", ""))}
    options = await loader(board, who, values)
    deal, deal_state = await deal_made(board, who, thing) if kind == "lead" else (None, "")
    return html(
        request,
        f"actions/{kind}.html",
        thing=thing,
        deal=deal,
        deal_state=deal_state,
        actions=actions,
        values=values,
        options=options,
        back=f"/{kind}/{thing_id}",
        user=who.principal,
        nav=nav_of(board),
    )


async def lead_page(request: Request, lead_id: Identifier) -> Response:
    return await thing_page(request, "lead", lead_id)


async def order_page(request: Request, order_id: Identifier) -> Response:
    return await thing_page(request, "order", order_id)
