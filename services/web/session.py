"""Who is signed in (decision 0022): the browser holds only the session's secret, in an HttpOnly, SameSite=Lax cookie
(``__Host-pipelines_session``, Secure, over https; ``pipelines_session`` on plain http); the board asks the
sign-in service for the session's short-lived API token (kept in memory, ``signin.Tokens``) and calls the APIs with
it. A session that ended (signed out, timed out, signed out everywhere, the user deactivated) is the login page.
Signing out (this session, or every session of the user) asks the sign-in service, which revokes the session's
tokens in every API before it answers; then the cookie is cleared. The login, OpenID Connect and reset pages are in
``login.py``."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

import structlog
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.web import csrf
from services.web.render import html
from services.web.signin import Grant, SignInError, key_of
from services.web.state import board_of
from shared.edge.auth import InvalidTokenError, Principal

log = structlog.get_logger(__name__)
COOKIE = "pipelines_session"
SECRET = re.compile(r"[A-Za-z0-9_-]{20,128}")  # a session secret as the sign-in service makes them


@dataclass(frozen=True)
class Session:
    principal: Principal
    token: str  # the API token, for the APIs only: never sent to the browser
    csrf: str  # every post of a signed-in page carries it
    secret: str  # the cookie's value

    @property
    def key(self) -> str:
        return key_of(self.secret)


def cookie_name(request: Request) -> str:
    return f"__Host-{COOKIE}" if csrf.https(request) else COOKIE


def set_session_cookie(request: Request, response: Response, secret: str) -> None:
    """Until the browser closes; the sign-in service ends the session itself (idle and absolute timeouts)."""
    response.set_cookie(
        cookie_name(request), secret, path="/", httponly=True, samesite="lax", secure=csrf.https(request)
    )
    csrf.renew(request, response)


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(cookie_name(request), path="/", httponly=True, samesite="lax", secure=csrf.https(request))
    csrf.renew(request, response)


def safe_next(target: str) -> str:
    """Only a path of this site (no scheme, no host, no //): an open redirect would help phishing."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 2000:
        return "/sales"
    return target


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


async def signed_in(request: Request) -> Session | None:
    """The request's session and its API token; None without a live one. The kept token is checked on every request
    (a session signed out everywhere is revoked in this process too within seconds), and asked again once if the
    check fails. ``SignInError("unavailable")`` when the sign-in service does not answer."""
    secret = request.cookies.get(cookie_name(request), "")
    if not SECRET.fullmatch(secret):
        return None
    board = board_of(request)
    for _ in range(2):
        try:
            grant: Grant = await board.signin.token(secret)
        except SignInError as refusal:
            if refusal.status in (401, 403, 404):  # ended, timed out, or no such session
                return None
            raise
        try:
            principal = await board.verifier.averify(grant.token)
        except InvalidTokenError as exc:
            log.info("web.token_refused", reason=str(exc))
            board.signin.tokens.forget(key_of(secret))
            continue
        session = Session(principal, grant.token, grant.csrf, secret)
        request.state.session = session  # the page's forms carry its CSRF token (render.html)
        return session
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


async def logout(request: Request) -> Response:
    """POST /logout: sign out of this session."""
    return await _end(request, everywhere=False)


async def logout_everywhere(request: Request) -> Response:
    """POST /logout/everywhere: sign out of every session of the user (every browser, every device)."""
    return await _end(request, everywhere=True)


async def _end(request: Request, *, everywhere: bool) -> Response:
    """The sign-in service ends the session(s) and revokes their tokens in every API before it answers; if it cannot,
    the user is told and stays signed in, to try again. A session that already ended: only the cookie goes."""
    form = await form_of(request)
    session = await signed_in(request)
    reason = csrf.refused(request, form, session.csrf if session else None)
    if session is not None and reason is not None:
        return refusal(request, reason)
    if session is None and (elsewhere := csrf.cross_site(request)) is not None:
        return refusal(request, elsewhere)
    if session is not None:
        try:
            await board_of(request).signin.end(session.secret, everywhere=everywhere)
        except SignInError as exc:
            if exc.status not in (401, 404):
                log.error("web.logout_not_revoked", rule=exc.rule, status=exc.status)
                return html(request, "message.html", 503, title="logout_failed", message=None, user=None)
        log.info("web.signed_out", user=session.principal.user_id, everywhere=everywhere)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(request, response)
    return response
