"""The board's pages and panels: a page (``/sales``, ``/marketing``, …) loads all its panels at once;
``/panel/{page}/{panel}`` is one panel's HTML, what live updates fetch again; ``/alerts/count`` the nav's badge.

A page's answer is always HTML (a bad filter: the page with the error, 422; signed out: to the sign-in form);
a panel's or the badge's refusal is a problem (``application/problem+json``), which the page's script reads."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from services.web import i18n
from services.web.apis import OnePage, Shown, alert_count, load
from services.web.panels import FilterError, Filters, Page, Panel, Said
from services.web.people import Choices
from services.web.render import html, lang_of
from services.web.session import Session, login_redirect, signed_in
from services.web.state import Board, board_of
from shared.core.limits import Code


def query_of(request: Request) -> dict[str, str]:
    """The page's filters as typed (the language and a live update's position are not filters)."""
    return {k: v for k, v in request.query_params.items() if k not in ("lang", "position")}


def filters_or_error(request: Request) -> tuple[Filters | None, str | None]:
    try:
        return Filters.parse(query_of(request), board_of(request).today()), None
    except FilterError as exc:
        return None, Said(str(exc), exc.text)


async def checked_filters(request: Request, who: Session, page: Page) -> tuple[Filters | None, str | None, Choices]:
    """The page's filters, a team or salesperson among those the user may choose (``people.py``), and the
    dropdowns' lists (empty on a page without those filters)."""
    f, error = filters_or_error(request)
    if not {"team", "owner"} & set(page.filters):
        return f, error, Choices()
    choices = await board_of(request).people.choices(who.key, who.principal, who.token)
    if f is not None and (refusal := choices.refusal(f)) is not None:
        return None, refusal, choices
    return f, error, choices


def nav(board: Board) -> dict[str, Any]:
    return {"nav": [(p.id, p.title) for p in board.pages.values()]}


async def root() -> RedirectResponse:
    """GET /: the sales page."""
    return RedirectResponse("/sales", status_code=303)


async def show_page(request: Request) -> Response:
    """GET /<page id> (``/sales``, ``/audit``, …): a whole page, each of its panels from its API, and the alerts
    badge."""
    board = board_of(request)
    page = board.pages[request.scope["route"].path.lstrip("/")]  # the route is the page's path
    who = await signed_in(request)
    if who is None:
        return login_redirect(request)
    principal, token = who.principal, who.token
    f, error, choices = await checked_filters(request, who, page)
    if f is None:
        typed = query_of(request)
        return html(
            request,
            "page.html",
            422,
            page=page,
            shown=[],
            error=error,
            user=principal,
            query=typed,
            choices=choices,
            **nav(board),
        )
    counting = asyncio.ensure_future(alert_count(board.apis, token))  # beside the panels, not after them
    apis = OnePage(board.apis)  # panels asking the same query share one call
    shown = list(await asyncio.gather(*(load(apis, panel, f, principal, token) for panel in page.panels)))
    alerts = await counting
    if any(s.state == "signed_out" for s in shown):  # an API refused the token: ask the sign-in service again
        board.signin.tokens.forget(who.key)
        return login_redirect(request)
    return html(
        request,
        "page.html",
        page=page,
        shown=shown,
        error=None,
        user=principal,
        query=f.as_query(),
        alerts=alerts,
        choices=choices,
        **nav(board),
    )


def panel_of(board: Board, page_id: str, panel_id: str) -> Panel:
    page = board.pages.get(page_id)
    if page is None or panel_id not in page.by_id:
        raise HTTPException(404, detail=f"no panel {page_id}/{panel_id}")
    return page.by_id[panel_id]


async def one(request: Request, page_id: str, panel_id: str, whole: bool = False) -> tuple[Shown, i18n.Lang]:
    """One panel as the user may see it, after a live update's ``position`` where its API waits for one."""
    board = board_of(request)
    panel = panel_of(board, page_id, panel_id)
    who = await signed_in(request)
    if who is None:
        raise HTTPException(401, detail="sign in again")
    f, error, _ = await checked_filters(request, who, board.pages[page_id])
    if f is None:
        raise HTTPException(422, detail=error)
    raw = request.query_params.get("position")
    position = int(raw) if raw and raw.isdigit() and int(raw) > 0 else None
    return await load(board.apis, panel, f, who.principal, who.token, position, whole), lang_of(request)


async def panel_fragment(request: Request, page_id: Code, panel_id: Code) -> Response:
    """GET /panel/{page_id}/{panel_id}: one panel's HTML, what a live update fetches again."""
    shown, _ = await one(request, page_id, panel_id)
    if shown.state == "signed_out":
        raise HTTPException(401, detail="sign in again")
    return html(request, "panel.html", s=shown, page_id=page_id, query=query_of(request))


async def alerts_count(request: Request) -> dict[str, str]:
    """GET /alerts/count: the active alerts the user may see, for the badge on every page (refreshed on alert notices)."""
    who = await signed_in(request)
    if who is None:
        raise HTTPException(401, detail="sign in again")
    return {"count": await alert_count(board_of(request).apis, who.token)}
