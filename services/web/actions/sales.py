"""The sales page's actions (issue 28 item 1) on the action framework (``core``): open a deal, move it (a card
dragged to another column, or its "Move to…" select), win with a delivery date, lose with a reason, reopen, change
its value and expected close date, schedule, complete and reschedule activities; and three pages to act from:

- ``GET /deal/{deal_id}``: the deal as the deals API shows it to the user, every form on it, its open activities;
- ``GET /agenda``: the user's agenda (the agenda API's ``GET /agenda``), each activity with complete and reschedule;
- ``GET /customers/{organisation_id}``: the customer's 360 (the directory's ``GET /organisations/{id}/360``).

Every list a form offers (stages, customers, lost reasons) is read with the user's token: nothing they may not see.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import Request, Response

from services.web import domain_words
from services.web.actions.core import PATH_ID, Action, Field, Form, Options, nav_of, register, take
from services.web.catalogs import N_
from services.web.render import html
from services.web.session import Session, login_redirect, signed_in
from services.web.state import Board, board_of
from shared.core.limits import Identifier

KINDS = (
    "phone",
    "email",
    "meeting",
    "video_call",
    "chat",
    "sms",
    "zalo",
    "in_person",
    "site_visit",
    "free_trial",
    "offer",
    "demo",
    "task",
)


async def get_json(board: Board, who: Session, service: str, path: str, params: dict[str, str] | None = None) -> Any:
    """One GET with the user's token; None when the API does not answer 200."""
    try:
        r = await board.apis.http.get(
            board.settings.api_url(service) + path,
            params=params or {},
            headers={"Authorization": f"Bearer {who.token}"},
        )
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


async def stages(board: Board, who: Session, form: Form) -> Options:
    pipeline = await get_json(board, who, "deals", f"/pipelines/{form.get('pipeline_id') or 'default'}")
    found = (pipeline or {}).get("stages") or []
    return {
        "stages": [(s["stage_id"], s.get("name") or s["stage_id"]) for s in found if s.get("kind", "open") == "open"]
    }


async def customers(board: Board, who: Session, form: Form) -> Options:
    """The organisations the directory lets the user see (by name, the first 200)."""
    found = await get_json(board, who, "directory", "/organisations", {"limit": "200"})
    items = (found or {}).get("items", []) if isinstance(found, dict) else (found or [])
    return {"customers": [(o["organisation_id"], o.get("name") or o["organisation_id"]) for o in items]}


async def lost_reasons(board: Board, who: Session, form: Form) -> Options:
    """The reasons deals were lost in the last year, as the deals API counts them (the user's scope)."""
    today = board.today()
    window = {"from": str(today - timedelta(days=365)), "to": str(today + timedelta(days=1))}
    found = await get_json(board, who, "deals", "/analytics/lost-reasons", window) or []
    reasons = list(dict.fromkeys(r["reason"] for r in found if isinstance(r, dict) and r.get("reason")))
    return {"reasons": [(r, r) for r in reasons[:50]]}


async def deal_options(board: Board, who: Session, form: Form) -> Options:
    found = await asyncio.gather(stages(board, who, form), lost_reasons(board, who, form))
    return {k: v for options in found for k, v in options.items()} | await _kinds()


def money(form: Form) -> dict[str, Any]:
    return {"amount": form.get("amount", "").strip(), "currency": form.get("currency", "").strip() or "VND"}


def open_body(form: Form) -> dict[str, Any]:
    """The deal is the user's own (the API refuses a place the user may not put it), its customer the directory's
    organisation chosen (its name filled in by ``customer_name``) or a name typed."""
    body = take("title", "customer", "organisation_id", "expected_close_date")(form)
    body |= {"owner_id": form["_user"]} | ({"team_id": form["_team"]} if form.get("_team") else {})
    currency = form.get("currency", "").strip() or "VND"
    if form.get("product", "").strip():  # a product line: the deal's value is the lines' (a won deal needs them)
        price = {"amount": form.get("unit_price", "").strip() or form.get("amount", "").strip(), "currency": currency}
        line = {"product": form["product"].strip(), "quantity": form.get("quantity", "").strip() or "1"}
        body["lines"] = [line | {"unit_price": price}]
    elif form.get("amount", "").strip():
        body["value"] = money(form)
    return body


async def local_time(board: Board, who: Session, form: dict[str, str]) -> dict[str, str]:
    """A datetime-local input (the business's time zone, no offset) as an ISO time with the zone's offset."""
    raw = form.get("due_at", "").strip()
    if raw:
        at = datetime.fromisoformat(raw)  # ValueError: the form is unusable (422)
        form["due_at"] = (at if at.tzinfo else at.replace(tzinfo=board.tz)).isoformat()
    return form


def schedule_body(form: Form) -> dict[str, Any]:
    return take("kind", "title", "notes", "due_at")(form) | {
        "subject_type": "deal",
        "subject_id": form.get("deal_id", ""),
    }


async def _kinds() -> Options:
    return {"kinds": [(k, domain_words.ACTIVITIES.get(k, k)) for k in KINDS]}  # English labels (``Field.translate``)


async def customer_name(board: Board, who: Session, form: dict[str, str]) -> dict[str, str]:
    """A new deal's customer name: the chosen organisation's, as the directory shows it to the user."""
    org = form.get("organisation_id", "").strip()
    if org and not form.get("customer", "").strip() and PATH_ID.fullmatch(org):
        found = await get_json(board, who, "directory", f"/organisations/{org}")
        if isinstance(found, dict) and found.get("name"):
            form["customer"] = str(found["name"])
    form.setdefault("deal_id", str(uuid.uuid4()))  # a retry of the same form opens no second deal
    return form


CLOSE_DATE = Field("expected_close_date", N_("Expected close"), "date")
DEAL = "/deals/{deal_id}"
DEAL_ACTIONS = (
    Action(
        "deal.open",
        N_("New deal"),
        "deals",
        "/deals",
        open_body,
        fields=(
            Field("title", N_("Deal"), required=True),
            Field("organisation_id", N_("Customer"), "select", options="customers"),
            Field("customer", N_("Or a customer's name"), max_len=200),
            Field("amount", N_("Value"), "number", max_len=40),
            Field("currency", N_("Currency"), max_len=3),
            Field("product", N_("Product (the deal's line)")),
            Field("quantity", N_("Quantity"), "number", max_len=40),
            Field("unit_price", N_("Unit price"), "number", max_len=40),
            CLOSE_DATE,
        ),
        query=("deal_id",),
        options=customers,
        prepare=customer_name,
    ),
    Action(
        "deal.move",
        N_("Move"),
        "deals",
        DEAL + "/move-stage",
        take("stage_id", "note"),
        fields=(Field("stage_id", N_("Move to…"), "select", required=True, options="stages"),),
        versioned=True,
        current=DEAL,
        options=stages,
    ),
    Action(
        "deal.win",
        N_("Mark as won"),
        "deals",
        DEAL + "/win",
        take("requested_delivery_date"),
        fields=(Field("requested_delivery_date", N_("Requested delivery date"), "date"),),
        versioned=True,
        current=DEAL,
    ),
    Action(
        "deal.lose",
        N_("Mark as lost"),
        "deals",
        DEAL + "/lose",
        take("reason", "competitor"),
        fields=(
            Field("reason", N_("Why"), required=True, max_len=2000, options="reasons"),
            Field("competitor", N_("Competitor")),
        ),
        versioned=True,
        current=DEAL,
        options=lost_reasons,
    ),
    Action(
        "deal.reopen",
        N_("Reopen"),
        "deals",
        DEAL + "/reopen",
        take("reason", "stage_id"),
        fields=(
            Field("reason", N_("Why"), required=True, max_len=2000),
            Field("stage_id", N_("Stage"), "select", options="stages"),
        ),
        versioned=True,
        current=DEAL,
        options=stages,
    ),
    Action(
        "deal.value",
        N_("Change the value"),
        "deals",
        DEAL + "/change-value",
        lambda form: {"value": money(form)} | take("reason")(form),
        fields=(
            Field("amount", N_("Value"), "number", required=True, max_len=40),
            Field("currency", N_("Currency"), max_len=3),
            Field("reason", N_("Why")),
        ),
        versioned=True,
        current=DEAL,
    ),
    Action(
        "deal.close_date",
        N_("Change the close date"),
        "deals",
        DEAL + "/change-close-date",
        take("expected_close_date", "reason"),
        fields=(Field("expected_close_date", N_("Expected close"), "date", required=True), Field("reason", N_("Why"))),
        versioned=True,
        current=DEAL,
    ),
)
ACTIVITY = "/activities/{activity_id}"
ACTIVITY_ACTIONS = (
    Action(
        "activity.schedule",
        N_("Schedule an activity"),
        "agenda",
        "/activities",
        schedule_body,
        prepare=local_time,
        fields=(
            Field("kind", N_("Kind"), "select", required=True, options="kinds", translate=True),
            Field("title", N_("What to do"), required=True),
            Field("due_at", N_("When"), "datetime-local", required=True),
            Field("notes", N_("Notes"), "textarea", max_len=2000),
        ),
        options=lambda board, who, form: _kinds(),
    ),
    Action(
        "activity.complete",
        N_("Mark done"),
        "agenda",
        ACTIVITY + "/complete",
        take("outcome"),
        fields=(Field("outcome", N_("Outcome"), max_len=2000),),
        versioned=True,
        current=ACTIVITY,
        back="/agenda",
    ),
    Action(
        "activity.reschedule",
        N_("Reschedule"),
        "agenda",
        ACTIVITY + "/reschedule",
        take("due_at", "reason"),
        prepare=local_time,
        fields=(
            Field("due_at", N_("When"), "datetime-local", required=True),
            Field("reason", N_("Why"), max_len=500),
        ),
        versioned=True,
        current=ACTIVITY,
        back="/agenda",
    ),
)


register(*DEAL_ACTIONS, *ACTIVITY_ACTIONS)


def missing(request: Request, who: Session, board: Board) -> Response:
    return html(request, "actions/missing.html", 404, user=who.principal, nav=nav_of(board))


async def deal_page(request: Request, deal_id: Identifier) -> Response:
    """GET /deal/{deal_id}: the deal now, every action on it, its open activities with theirs."""
    who = await signed_in(request)
    if who is None:
        return login_redirect(request)
    board = board_of(request)
    if not PATH_ID.fullmatch(deal_id):
        return missing(request, who, board)
    deal, activities, options = await asyncio.gather(
        get_json(board, who, "deals", f"/deals/{deal_id}"),
        get_json(board, who, "agenda", "/activities", {"subject_id": deal_id, "status": "scheduled", "limit": "50"}),
        deal_options(board, who, {}),
    )
    if not isinstance(deal, dict):  # no such deal, or not one the user may see: the API says which, the page not
        return missing(request, who, board)
    items = activities.get("items", []) if isinstance(activities, dict) else (activities or [])
    value: dict[str, Any] = deal["value"] if isinstance(deal.get("value"), dict) else {}
    stage: dict[str, Any] = deal["stage"] if isinstance(deal.get("stage"), dict) else {}
    values = {
        "deal_id": deal_id,
        "version": str(deal.get("version", "")),
        "stage_id": str(stage.get("stage_id") or ""),
        "amount": str(value.get("amount") or ""),
        "currency": str(value.get("currency") or ""),
        "expected_close_date": str(deal.get("expected_close_date") or ""),
    }
    return html(
        request,
        "actions/deal.html",
        deal=deal,
        activities=items,
        actions={a.id: a for a in (*DEAL_ACTIONS, *ACTIVITY_ACTIONS)},
        values=values,
        options=options,
        back=f"/deal/{deal_id}",
        kinds=KINDS,
        user=who.principal,
        nav=nav_of(board),
    )


async def agenda_page(request: Request) -> Response:
    """GET /agenda: the user's overdue, today's and upcoming activities, each with complete and reschedule."""
    who = await signed_in(request)
    if who is None:
        return login_redirect(request)
    board = board_of(request)
    agenda = await get_json(board, who, "agenda", "/agenda", {"days": "14"})
    return html(
        request,
        "actions/agenda.html",
        agenda=agenda if isinstance(agenda, dict) else None,
        actions={a.id: a for a in ACTIVITY_ACTIONS},
        back="/agenda",
        options={},
        kinds=KINDS,
        user=who.principal,
        nav=nav_of(board),
    )


async def customer_page(request: Request, organisation_id: Identifier) -> Response:
    """GET /customers/{organisation_id}: the customer's 360 as the directory shows it to the user."""
    who = await signed_in(request)
    if who is None:
        return login_redirect(request)
    board = board_of(request)
    if not PATH_ID.fullmatch(organisation_id):
        return missing(request, who, board)
    org, view = await asyncio.gather(
        get_json(board, who, "directory", f"/organisations/{organisation_id}"),
        get_json(board, who, "directory", f"/organisations/{organisation_id}/360"),
    )
    if not isinstance(view, dict):
        return missing(request, who, board)
    return html(request, "actions/customer.html", org=org or {}, view=view, user=who.principal, nav=nav_of(board))
