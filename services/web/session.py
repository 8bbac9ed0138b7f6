"""Signing in and out: the bearer token (the same JWT the APIs take) kept in an HttpOnly cookie and sent on to the
APIs. Both forms are refused from another site (``csrf.py``); signing out revokes the token in every API
(``shared.edge.revocation``) before its cookie is cleared."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime

import structlog
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.web import csrf
from services.web.render import html
from services.web.state import board_of
from shared.edge.auth import InvalidTokenError, Principal

log = structlog.get_logger(__name__)
COOKIE = "pipelines_token"


def safe_next(target: str) -> str:
    """Only a path of this site (no scheme, no host, no //): an open redirect would help phishing."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/sales"
    return target


def signed_in(request: Request) -> tuple[Principal, str] | None:
    """Who the cookie's token says the user is, and the token; None without a valid one (expired, revoked)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return board_of(request).verifier.verify(token), token
    except InvalidTokenError:
        return None


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urllib.parse.urlencode({"next": target}), status_code=303)


async def form_of(request: Request) -> dict[str, str]:
    fields = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
    return {k: v[0] for k, v in fields.items()}


def refusal(request: Request, reason: str) -> HTMLResponse:
    """A post another site made, or without this site's token: nothing done, no cookie set."""
    log.warning("web.form_refused", path=request.url.path, reason=reason)
    return html(request, "message.html", 403, title="refused", message=reason, user=None, csrf=None)


async def login_form(request: Request, next: str = "/sales") -> HTMLResponse:
    """GET /login: the sign-in form, back to ``next`` (a page of this site) once signed in."""
    return html(request, "login.html", next=safe_next(next), error=None, user=None)


async def login(request: Request) -> Response:
    """POST /login: sign in with a token (form fields ``token``, ``next``, ``csrf``)."""
    form = await form_of(request)
    if (reason := csrf.refused(request, form)) is not None:
        return refusal(request, reason)
    token = form.get("token", "").strip().removeprefix("Bearer ").strip()
    target = safe_next(form.get("next", "/sales"))
    try:
        # the APIs verify it again on every call; this only refuses a bad one early
        expires = board_of(request).verifier.check(token).expires
    except InvalidTokenError as exc:
        return html(request, "login.html", 401, next=target, error=str(exc), user=None)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(60, int(expires - datetime.now(UTC).timestamp())),
        path="/",
        httponly=True,
        samesite="strict",
        secure=csrf.https(request),
    )
    csrf.renew(request, response)
    return response


async def logout(request: Request) -> Response:
    """POST /logout: sign out; the token is revoked in every API (within seconds) before its cookie is cleared; if the
    revocation cannot be published, the user is told and stays signed in, to try again."""
    form = await form_of(request)
    if (reason := csrf.refused(request, form)) is not None:
        return refusal(request, reason)
    token = request.cookies.get(COOKIE)
    if token:
        board = board_of(request)
        try:
            verified = board.verifier.check(token)
        except InvalidTokenError:
            pass  # expired, revoked or not a token: nothing to revoke
        else:
            try:
                await board.revocations.publish(verified.token_id, verified.expires)
            except Exception as exc:
                log.error("web.logout_not_revoked", error=repr(exc))
                return html(request, "message.html", 503, title="logout_failed", message=None, user=None)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=csrf.https(request))
    csrf.renew(request, response)
    return response
