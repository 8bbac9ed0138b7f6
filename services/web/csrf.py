"""Cross-site request forgery: a form that changes something (sign in, sign out, set a password) must come from
this site's page.

Two checks, both needed for a post to proceed (``refused``):

- **The session's token** (decision 0022), once signed in: the sign-in service gives each session a CSRF token; every
  page's forms carry it (field ``csrf``; a script sends header ``X-CSRF-Token``) and a post must carry it, compared in
  constant time. Before there is a session (the login and password-reset forms), a double-submit token instead:
- **A double-submit token.** A random value in a cookie and the same value in the form's hidden field ``csrf``,
  compared in constant time. Another site can make a browser post a form here, but can neither read the cookie nor
  set it, so it cannot put the value in its form. Over https the cookie is ``__Host-pipelines_csrf`` (Secure,
  Path=/, no Domain: not even a sibling subdomain can set it); over plain http (the local board) it is
  ``pipelines_csrf``. HttpOnly and SameSite=Strict in both. A page that finds no (well-formed) cookie makes a new
  value and sets it with its answer; signing in and out make a new one.
- **The request's origin.** A browser names where a post comes from: ``Sec-Fetch-Site`` and ``Origin`` (else
  ``Referer``). A post from another site, another origin or an opaque one (``Origin: null``) is refused even with
  the right token. A client that sends none of them (curl, a script) is no browser a page can drive, and needs the
  token only. Behind a proxy, the proxy must pass the ``Host`` header on (the origin is compared with it).

A refused post changes nothing and sets no cookie (403). Use: ``value(request)`` in a form without a session,
``keep(request, response)`` on the page's answer, ``refused(request, form, session_csrf)`` first in the post's
handler, ``renew(request, response)`` after a sign-in or sign-out.
"""

from __future__ import annotations

import hmac
import re
import secrets
import urllib.parse
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from services.web.catalogs import N_  # the reasons are shown translated (message.html)

FIELD = "csrf"
HEADER = "x-csrf-token"  # a script's post carries the token here instead
NAME = "pipelines_csrf"
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_SAME = ("same-origin", "none")  # Sec-Fetch-Site values of a post this site's page (or the user) made


def https(request: Request) -> bool:
    return request.url.scheme == "https"


def cookie_name(request: Request) -> str:
    return f"__Host-{NAME}" if https(request) else NAME


def _cookie(request: Request) -> str | None:
    value = request.cookies.get(cookie_name(request))
    return value if value and _WELL_FORMED.fullmatch(value) else None


def value(request: Request) -> str:
    """The value this request's form carries: the cookie's, or a new one (``keep`` then sets it)."""
    existing = _cookie(request)
    if existing is not None:
        return existing
    made: str | None = getattr(request.state, "csrf_new", None)
    if made is None:
        made = request.state.csrf_new = secrets.token_urlsafe(32)
    return made


def _set(request: Request, response: Response, token: str) -> None:
    response.set_cookie(cookie_name(request), token, path="/", httponly=True, samesite="strict", secure=https(request))


def keep(request: Request, response: Response) -> None:
    """Set the cookie when ``value`` made a new one for this request's page."""
    made = getattr(request.state, "csrf_new", None)
    if made is not None:
        _set(request, response, made)


def renew(request: Request, response: Response) -> None:
    """A new value from now on (after signing in or out: a value someone saw before is worth nothing)."""
    _set(request, response, secrets.token_urlsafe(32))


def cross_site(request: Request) -> str | None:
    """Why the browser says this post comes from elsewhere; None when it comes from this site or says nothing."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in _SAME:
        return f"the form was sent from another site (Sec-Fetch-Site: {site})"
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if referer is None:
            return None
        parts = urllib.parse.urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "null"
    host = request.headers.get("host", "")
    if origin == "null" or urllib.parse.urlsplit(origin).netloc.lower() != host.lower():
        return N_("the form was sent from another site (its origin is not this one's)")
    return None


def refused(request: Request, form: Mapping[str, str], session: str | None = None) -> str | None:
    """Why this post is refused (another site's, or without this site's token); None when it may proceed.

    ``session``: the signed-in session's CSRF token (decision 0022), which the post must carry (field ``csrf`` or
    header ``X-CSRF-Token``); without a session (the login and reset forms), the double-submit cookie's value."""
    elsewhere = cross_site(request)
    if elsewhere is not None:
        return elsewhere
    expected = session if session is not None else _cookie(request)
    sent = form.get(FIELD) or request.headers.get(HEADER, "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode("utf-8", "replace")):
        return N_("the form's security token is missing or out of date: open the page again and resend")
    return None
