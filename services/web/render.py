"""Writing a page: the templates, the language of the answer, the security headers every page carries."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi.responses import HTMLResponse
from starlette.requests import Request

from services.web import catalogs, charts, csrf, i18n
from services.web.panels import CARDS_SHOWN, ROWS_SHOWN, value_at
from services.web.state import board_of

HERE = Path(__file__).parent
MILESTONES = {  # the timeline's rows worth a second look
    "LeadCaptured",
    "LeadConverted",
    "DealOpened",
    "DealWon",
    "DealLost",
    "ProductionOrderCreated",
    "QualityInspectionFailed",
    "OrderShipped",
    "OrderDelivered",
    "FollowUpStarted",
    "FollowUpCompleted",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def templates(tz: ZoneInfo) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],  # _(), gettext, ngettext, {% trans %}: given per page by ``html`` (catalogs.py)
    )
    env.newstyle_gettext = True  # type: ignore[attr-defined]  # values by name, escaped: _("Due %(day)s", day=d)
    env.globals |= {
        "fmt": lambda value, kind, lang, **kw: i18n.fmt(value, kind, lang, tz, **kw),  # times in the business's zone
        "zone": lambda lang: i18n.zone(tz, lang),  # the business's time zone, named on the page
        "value_at": value_at,
        "MILESTONES": MILESTONES,
        "json": json,
        "CARDS_SHOWN": CARDS_SHOWN,
        "ROWS_SHOWN": ROWS_SHOWN,
        "chart": charts.svg,  # a panel's chart from its shown rows (services/web/charts.py)
        "new_key": lambda: secrets.token_urlsafe(16),  # a form's Idempotency-Key (actions/macros.html)
    }
    return env


def lang_of(request: Request) -> i18n.Lang:
    return i18n.pick_lang(
        request.query_params.get("lang"), request.cookies.get("lang"), request.headers.get("accept-language")
    )


def html(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page in the request's language; it carries the form token (``csrf.value``) unless ``csrf=None``."""
    lang = lang_of(request)
    context.setdefault("alerts", "")  # the nav's badge: counted on full pages only
    context.setdefault("more", request.query_params.get("more", "")[:80])  # the kanban column shown whole
    session = getattr(request.state, "session", None)  # signed in: the session's CSRF token (session.signed_in)
    context.setdefault("csrf", session.csrf if session is not None else csrf.value(request))
    calls = catalogs.calls(catalogs.translations(lang))

    def t(message: str) -> str:  # the old word-list call, now only ``_``: templates say ``_(...)``
        return calls.gettext(message)

    body = (
        board_of(request)
        .templates.get_template(template)
        .render(lang=lang, t=t, request_path=request.url.path, **calls.context(), **context)
    )
    response = HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
    if context["csrf"] is not None and session is None:
        csrf.keep(request, response)
    if request.query_params.get("lang") in i18n.LANGS:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="strict")
    return response
