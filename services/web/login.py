"""Signing in through the sign-in service (decision 0022): with an email and password, or with the organisation's
OpenID Provider when ``PIPELINES_OIDC_ISSUER`` is set; and setting a password from an administrator's reset link.

- ``GET /login``, ``POST /login`` (``email``, ``password``, ``next``, ``csrf``): a refusal is said in the user's
  language: wrong email or password, the account locked (until when), too many attempts from this address.
- ``GET /login/oidc?next=``: the provider's authorize URL, with the browser bound to this login by a short cookie
  (``pipelines_oidc``; SameSite=Lax, so the provider's redirect back carries it); ``GET /login/oidc/callback``:
  the sign-in service checks state, nonce, PKCE and the binding, matches the user in the directory and makes the
  session.
- ``GET /reset?token=…``, ``POST /reset`` (``token``, ``password``, ``confirm``, ``csrf``): a new password; the
  user's sessions end.

The login and reset forms have no session yet: their posts carry the double-submit token (``csrf.py``).
"""

from __future__ import annotations

import re
import urllib.parse
from datetime import UTC, datetime, timedelta

import structlog
from fastapi import HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.web import csrf, i18n
from services.web.catalogs import N_
from services.web.render import html, lang_of
from services.web.session import client_of, form_of, refusal, safe_next, set_session_cookie
from services.web.signin import SignInError
from services.web.state import board_of
from shared.core.limits import ExternalId, Url

log = structlog.get_logger(__name__)
OIDC_COOKIE = "pipelines_oidc"
OIDC_COOKIE_S = 600  # a login at the provider must come back within this
LINK = re.compile(r"[A-Za-z0-9_-]{16,200}")  # a reset link's token
MAX_EMAIL, MAX_PASSWORD = 320, 1024  # longer is never right: refused without asking the sign-in service


def provider(request: Request) -> str | None:
    """The OpenID Provider's host, for the "Sign in with …" button; None when none is configured."""
    issuer = board_of(request).settings.oidc_issuer  # PIPELINES_OIDC_ISSUER
    return urllib.parse.urlsplit(issuer).netloc or issuer if issuer else None


def refusal_text(request: Request, exc: SignInError) -> str:
    """Why the sign-in service said no, in the user's language (a lockout with the time it ends)."""
    lang = lang_of(request)
    if exc.rule == "locked":
        until = datetime.now(UTC) + timedelta(seconds=exc.retry_after or 0)
        at = i18n.fmt(until.isoformat(), "datetime", lang, board_of(request).tz)
        return i18n.word(N_("Too many wrong passwords: this account is locked until {at}"), lang).format(at=at)
    if exc.rule == "too_many_requests" or exc.status == 429:
        return i18n.word(N_("Too many attempts from your address: try again in {seconds} s"), lang).format(
            seconds=exc.retry_after or 60
        )
    if exc.rule == "busy":  # its requests in flight at their bound (decision 0032)
        return i18n.word(N_("The sign-in service is busy: try again in {seconds} s"), lang).format(
            seconds=exc.retry_after or 1
        )
    if exc.rule == "bad_credentials" or exc.status == 401:
        return i18n.word(N_("Wrong email or password"), lang)
    if exc.status >= 500:
        return i18n.word(N_("The sign-in service does not answer right now: try again in a moment"), lang)
    return i18n.word(N_("Sign-in refused"), lang) + (f": {exc.detail}" if exc.detail else "")


def login_page(
    request: Request, status: int = 200, *, next_path: str = "/sales", error: str | None = None, email: str = ""
) -> Response:
    """The login form; after a refusal, with why and the email typed (never the password)."""
    notice = "password_set" if request.query_params.get("done") == "reset" else None
    return html(
        request,
        "login.html",
        status,
        next=next_path,
        error=error,
        email=email,
        notice=notice,
        provider=provider(request),
        user=None,
        csrf=csrf.value(request),
    )


async def login_form(request: Request, next: Url = "/sales") -> Response:
    """GET /login: the sign-in form, back to ``next`` (a page of this site) once signed in."""
    return login_page(request, next_path=safe_next(next))


async def login(request: Request) -> Response:
    """POST /login: sign in with an email and a password (form fields ``email``, ``password``, ``next``, ``csrf``)."""
    form = await form_of(request)
    if (reason := csrf.refused(request, form)) is not None:
        return refusal(request, reason)
    target = safe_next(form.get("next", "/sales"))
    email, password = form.get("email", "").strip(), form.get("password", "")
    if not (3 <= len(email) <= MAX_EMAIL and 1 <= len(password) <= MAX_PASSWORD):
        error = i18n.word(N_("Wrong email or password"), lang_of(request))
        return login_page(request, 401, next_path=target, error=error, email=email[:MAX_EMAIL])
    try:
        grant = await board_of(request).signin.password(email, password, client_of(request))
    except SignInError as exc:
        log.info("web.sign_in_refused", rule=exc.rule, status=exc.status)
        status = exc.status if exc.status in (401, 423, 429) else 503
        return login_page(request, status, next_path=target, error=refusal_text(request, exc), email=email)
    response = RedirectResponse(target, status_code=303)
    assert grant.session is not None
    set_session_cookie(request, response, grant.session)
    return response


def oidc_cookie(request: Request) -> str:
    return f"__Host-{OIDC_COOKIE}" if csrf.https(request) else OIDC_COOKIE


async def oidc_start(request: Request, next: Url = "/sales") -> Response:
    """GET /login/oidc: to the OpenID Provider's sign-in page; this browser is bound to the login by a cookie."""
    if provider(request) is None:
        raise HTTPException(404, detail="no OpenID Provider is configured")
    try:
        url, binding = await board_of(request).signin.oidc_start(safe_next(next))
    except SignInError as exc:
        return login_page(request, 503, next_path=safe_next(next), error=refusal_text(request, exc))
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        oidc_cookie(request),
        binding,
        max_age=OIDC_COOKIE_S,
        path="/",
        httponly=True,
        samesite="lax",  # the provider's redirect back is a top-level navigation from its site
        secure=csrf.https(request),
    )
    return response


async def oidc_callback(request: Request) -> Response:
    """GET /login/oidc/callback: the provider sends the browser back with ``code`` and ``state`` (or ``error``)."""
    q = request.query_params
    code, state, binding = q.get("code", ""), q.get("state", ""), request.cookies.get(oidc_cookie(request), "")
    lang = lang_of(request)
    if not code or not state or not binding or max(len(code), len(state), len(binding)) > 2000:
        log.info("web.oidc_refused", error=q.get("error", "")[:100], binding=bool(binding))
        return login_page(request, 400, error=i18n.word(N_("Sign-in with your organisation's account failed"), lang))
    try:
        grant = await board_of(request).signin.oidc_callback(code, state, binding, client_of(request))
    except SignInError as exc:
        log.info("web.oidc_refused", rule=exc.rule, status=exc.status)
        text = (
            i18n.word(N_("Sign-in with your organisation's account failed"), lang)
            if exc.status < 500
            else refusal_text(request, exc)
        )
        if exc.status < 500 and exc.detail:
            text += f": {exc.detail}"
        return login_page(request, 401 if exc.status < 500 else 503, error=text)
    response = RedirectResponse(safe_next(grant.next or "/sales"), status_code=303)
    assert grant.session is not None
    set_session_cookie(request, response, grant.session)
    response.delete_cookie(oidc_cookie(request), path="/", httponly=True, samesite="lax", secure=csrf.https(request))
    return response


def reset_page(request: Request, link: str, status: int = 200, error: str | None = None) -> HTMLResponse:
    return html(request, "reset.html", status, link=link, error=error, user=None, csrf=csrf.value(request))


async def reset_form(request: Request, token: ExternalId = "") -> Response:
    """GET /reset?token=…: the form to set a new password, from an administrator's one-time link."""
    if not LINK.fullmatch(token):
        return reset_page(
            request,
            "",
            400,
            error=i18n.word(
                N_("This link is used, expired or not valid: ask your administrator for a new one"), lang_of(request)
            ),
        )
    return reset_page(request, token)


async def reset(request: Request) -> Response:
    """POST /reset: set the password (``token``, ``password``, ``confirm``, ``csrf``); then to the login page."""
    form = await form_of(request)
    if (reason := csrf.refused(request, form)) is not None:
        return refusal(request, reason)
    link, password, lang = form.get("token", ""), form.get("password", ""), lang_of(request)
    if not LINK.fullmatch(link):
        return reset_page(
            request,
            "",
            400,
            error=i18n.word(N_("This link is used, expired or not valid: ask your administrator for a new one"), lang),
        )
    if password != form.get("confirm", ""):
        return reset_page(request, link, 422, error=i18n.word(N_("The two passwords differ"), lang))
    if not 12 <= len(password) <= 128:
        return reset_page(
            request, link, 422, error=i18n.word(N_("12 to 128 characters, and not your email address"), lang)
        )
    try:
        await board_of(request).signin.reset(link, password)
    except SignInError as exc:
        log.info("web.reset_refused", rule=exc.rule, status=exc.status)
        if exc.status == 422:
            return reset_page(
                request, link, 422, error=i18n.word(N_("12 to 128 characters, and not your email address"), lang)
            )
        if exc.status >= 500:
            return reset_page(
                request,
                link,
                503,
                error=i18n.word(N_("The sign-in service does not answer right now: try again in a moment"), lang),
            )
        return reset_page(
            request,
            "",
            400,
            error=i18n.word(N_("This link is used, expired or not valid: ask your administrator for a new one"), lang),
        )
    return RedirectResponse("/login?done=reset", status_code=303)
