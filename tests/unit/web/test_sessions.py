"""Signing in and out of the board (issue 20 item 8): another site can make a browser post the login or logout
form but not with this site's form token, and the browser names the other origin; such a post is refused and
sets no cookie. Signing out revokes the token (in this process here; in every API: tests/integration/
test_token_revocation.py). Both cookies are HttpOnly, SameSite=Strict, and Secure over https."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.web.app import COOKIE, create_app
from tests.unit.web.test_board_unit import SETTINGS, csrf_field, fake_apis, tok

EVIL = "https://evil.example"


@pytest.fixture
async def board() -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(SETTINGS, transport=httpx.MockTransport(fake_apis), live_feed=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web")
    async with app.router.lifespan_context(app), client:
        yield app, client


async def test_a_sign_in_from_another_site_is_refused_and_sets_no_cookie(board: tuple[Any, httpx.AsyncClient]) -> None:
    _, web = board
    attacker = {"token": tok("u-attacker", "sales"), "next": "/sales"}
    # the attacker's page cannot know the form token: without it, or with another, refused
    for form in (attacker, attacker | {"csrf": "x" * 43}):
        r = await web.post("/login", data=form)
        assert r.status_code == 403 and "set-cookie" not in r.headers, r.text
    # even with the victim's own form token (a token leak), a post the browser says is from elsewhere is refused
    form = attacker | {"csrf": await csrf_field(web)}
    for headers in (
        {"Origin": EVIL},
        {"Origin": "null"},  # an opaque origin: a sandboxed frame, a redirect across sites
        {"Referer": f"{EVIL}/lure"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://web"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another origin
    ):
        r = await web.post("/login", data=form, headers=headers)
        assert r.status_code == 403 and "set-cookie" not in r.headers, headers
        assert "another site" in r.text
    assert COOKIE not in web.cookies
    # the board's own form, posted from its own page: signed in
    r = await web.post("/login", data=form, headers={"Origin": "http://web", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 303 and web.cookies.get(COOKIE) == attacker["token"]
    assert web.cookies["pipelines_csrf"] != form["csrf"]  # a new form token once signed in


async def test_sign_out_needs_the_form_token_and_revokes_the_token(board: tuple[Any, httpx.AsyncClient]) -> None:
    app, web = board
    token = tok("u-lan", "sales")
    form = {"csrf": await csrf_field(web)}
    assert (await web.post("/login", data={"token": token} | form)).status_code == 303
    form = {"csrf": web.cookies["pipelines_csrf"]}
    # another site's logout form (a link on a forum): refused, still signed in
    for data, headers in (({}, {}), ({"csrf": "x" * 43}, {}), (form, {"Origin": EVIL})):
        r = await web.post("/logout", data=data, headers=headers)
        assert r.status_code == 403 and "set-cookie" not in r.headers
    assert (await web.get("/sales")).status_code == 200
    # the board's own logout form: the cookie is cleared and the token revoked
    r = await web.post("/logout", data=form, headers={"Origin": "http://web"})
    assert r.status_code == 303 and r.headers["location"] == "/login" and COOKIE not in web.cookies
    assert len(app.state.board.revocations) == 1
    web.cookies.set(COOKIE, token)  # the token, kept by whoever copied it: refused from now on
    r = await web.get("/sales")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert (await web.get("/panel/sales/board")).status_code == 401
    web.cookies.set(COOKIE, tok("u-lan", "sales"))  # a new sign-in's token works
    assert (await web.get("/sales")).status_code == 200


async def test_sign_out_says_so_when_the_token_cannot_be_revoked(
    board: tuple[Any, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, web = board

    async def kafka_away(token_id: str, expires: float) -> None:
        raise TimeoutError

    monkeypatch.setattr(app.state.board.revocations, "publish", kafka_away)
    web.cookies.set(COOKIE, tok("u-lan", "sales"))
    r = await web.get("/sales")
    form = {"csrf": web.cookies["pipelines_csrf"]}
    r = await web.post("/logout", data=form)
    assert r.status_code == 503 and "Not signed out" in r.text
    assert (await web.get("/sales")).status_code == 200  # still signed in, to try again


async def test_over_https_both_cookies_are_secure_host_only_and_strict() -> None:
    app = create_app(SETTINGS, transport=httpx.MockTransport(fake_apis), live_feed=False)
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://board.example.vn")
    async with app.router.lifespan_context(app), web:
        r = await web.get("/login")
        csrf = r.headers["set-cookie"]
        assert csrf.startswith("__Host-pipelines_csrf=") and "Path=/" in csrf and "Domain" not in csrf
        assert all(a in csrf for a in ("HttpOnly", "SameSite=strict", "Secure"))
        form = {"token": tok("u-lan", "sales"), "csrf": web.cookies["__Host-pipelines_csrf"]}
        r = await web.post("/login", data=form, headers={"Origin": "https://board.example.vn"})
        assert r.status_code == 303
        session = r.headers.get_list("set-cookie")[0]
        assert session.startswith(f"{COOKIE}=") and all(a in session for a in ("HttpOnly", "SameSite=strict", "Secure"))
