"""Writing a page: the templates, the language of the answer, the security headers every page carries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi.responses import HTMLResponse
from starlette.requests import Request

from services.web import csrf, i18n
from services.web.panels import value_at
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
    )
    env.globals |= {
        "fmt": lambda value, kind, lang: i18n.fmt(value, kind, lang, tz),  # times in the business's time zone
        "value_at": value_at,
        "MILESTONES": MILESTONES,
        "json": json,
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
    session = getattr(request.state, "session", None)  # signed in: the session's CSRF token (session.signed_in)
    context.setdefault("csrf", session.csrf if session is not None else csrf.value(request))
    body = (
        board_of(request)
        .templates.get_template(template)
        .render(lang=lang, t=lambda key: i18n.word(key, lang), request_path=request.url.path, **context)
    )
    response = HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
    if context["csrf"] is not None and session is None:
        csrf.keep(request, response)
    if request.query_params.get("lang") in i18n.LANGS:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="strict")
    return response
