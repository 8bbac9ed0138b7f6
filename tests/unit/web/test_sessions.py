"""Signing in and out of the board through the sign-in service (decision 0022), its answers faked at the transport
(tests/unit/web/signin_fake.py; the real one: tests/e2e/test_web_sign_in.py). The browser holds only the session's
secret; every post carries the session's CSRF token (the login and reset forms, without a session, the double-submit
token) and is refused from another site; refusals are said in the user's language; an ended session is the login
page; the API token is asked once per session and kept until 30 s before it expires."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.web.app import COOKIE, create_app
from services.web.signin import Grant, key_of
from tests.unit.web.signin_fake import PASSWORD, FakeSignIn
from tests.unit.web.test_board_unit import SETTINGS, csrf_field, fake_apis

EVIL = "https://evil.example"
OIDC = SETTINGS.model_copy(update={"oidc_issuer": "https://id.example.vn"})


@pytest.fixture
async def board() -> AsyncIterator[tuple[Any, httpx.AsyncClient, FakeSignIn]]:
    signin = FakeSignIn(users={"lan@example.vn": ("u-lan", ("sales",), "north")})

    def answer(request: httpx.Request) -> httpx.Response:
        return signin(request) if request.url.port == 8107 else fake_apis(request)

    app = create_app(OIDC, transport=httpx.MockTransport(answer), live_feed=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web")
    async with app.router.lifespan_context(app), client:
        yield app, client, signin


Board = tuple[Any, httpx.AsyncClient, FakeSignIn]


async def sign_in(web: httpx.AsyncClient, email: str = "lan@example.vn", password: str = PASSWORD) -> httpx.Response:
    form = {"email": email, "password": password, "next": "/sales", "csrf": await csrf_field(web)}
    return await web.post("/login", data=form, headers={"Origin": "http://web", "Sec-Fetch-Site": "same-origin"})


async def test_a_sign_in_from_another_site_is_refused_and_sets_no_cookie(board: Board) -> None:
    _, web, signin = board
    attacker = {"email": "lan@example.vn", "password": PASSWORD, "next": "/sales"}
    for form in (attacker, attacker | {"csrf": "x" * 43}):  # the attacker's page cannot know the form token
        r = await web.post("/login", data=form)
        assert r.status_code == 403 and "set-cookie" not in r.headers, r.text
    form = attacker | {"csrf": await csrf_field(web)}  # even with the victim's own token, from elsewhere: refused
    for headers in (
        {"Origin": EVIL},
        {"Origin": "null"},
        {"Referer": f"{EVIL}/lure"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://web"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        r = await web.post("/login", data=form, headers=headers)
        assert r.status_code == 403 and "set-cookie" not in r.headers and "another site" in r.text, headers
    assert COOKIE not in web.cookies and "/sessions/password" not in signin.calls  # nothing asked
    r = await sign_in(web)
    assert r.status_code == 303 and web.cookies[COOKIE] in signin.sessions
    assert web.cookies["pipelines_csrf"] != form["csrf"]  # a new form token once signed in


async def test_every_post_without_the_sessions_csrf_token_is_refused_and_does_nothing(board: Board) -> None:
    app, web, signin = board
    assert (await sign_in(web)).status_code == 303
    secret = web.cookies[COOKIE]
    posts = {r.path for r in app.routes if "POST" in getattr(r, "methods", ())}
    assert posts == {"/login", "/logout", "/logout/everywhere", "/reset", "/act/{action_id}"}
    double_submit = web.cookies["pipelines_csrf"]  # the login form's token is not the session's
    for path in ("/logout", "/logout/everywhere", "/act/deal.move"):  # every action: tests/unit/web/test_actions.py
        for data, headers in (
            ({}, {}),
            ({"csrf": "x" * 43}, {}),
            ({"csrf": double_submit}, {}),
            ({"csrf": signin.sessions[secret]["csrf"]}, {"Origin": EVIL}),
        ):
            r = await web.post(path, data=data, headers=headers)
            assert r.status_code == 403 and "set-cookie" not in r.headers, (path, data, headers)
    assert not signin.sessions[secret]["ended"] and (await web.get("/sales")).status_code == 200
    for path in ("/login", "/reset"):  # the forms without a session: the double-submit token
        r = await web.post(path, data={"email": "lan@example.vn", "password": PASSWORD, "token": "x" * 20})
        assert r.status_code == 403, path
    # a script sends the token in a header instead of the form
    r = await web.post("/logout", headers={"X-CSRF-Token": signin.sessions[secret]["csrf"]})
    assert r.status_code == 303 and signin.sessions[secret]["ended"]


async def test_refusals_are_said_in_the_users_language(board: Board) -> None:
    _, web, _ = board
    r = await sign_in(web, password="wrong")
    assert r.status_code == 401 and "Wrong email or password" in r.text and COOKIE not in web.cookies
    assert 'value="lan@example.vn"' in r.text and PASSWORD not in r.text  # the email kept, never the password
    r = await sign_in(web, email="locked@example.vn")
    assert r.status_code == 423 and re.search(r"locked until \d+\xa0\w+\xa020\d\d", r.text)  # when it ends, local
    web.cookies.set("lang", "vi")
    r = await sign_in(web, email="locked@example.vn")
    assert r.status_code == 423 and re.search(r"tài khoản bị khóa đến \d\d/\d\d/20\d\d", r.text)
    r = await sign_in(web, email="busy@example.vn")
    assert r.status_code == 429 and "thử lại sau 42 giây" in r.text
    r = await sign_in(web, password="x" * 5000)  # too long to be anyone's: not even asked
    assert r.status_code == 401 and "Sai email hoặc mật khẩu" in r.text


async def test_signing_out_everywhere_ends_every_session_of_the_user(board: Board) -> None:
    _, web, signin = board
    other = signin.session("u-lan", "sales", team="north")  # the same user on a phone
    stranger = signin.session("u-binh", "sales", team="north")
    assert (await sign_in(web)).status_code == 303
    csrf = signin.sessions[web.cookies[COOKIE]]["csrf"]
    r = await web.post("/logout/everywhere", data={"csrf": csrf}, headers={"Origin": "http://web"})
    assert r.status_code == 303 and r.headers["location"] == "/login" and COOKIE not in web.cookies
    assert signin.sessions[other]["ended"] and not signin.sessions[stranger]["ended"]
    web.cookies.set(COOKIE, other)  # the phone's session, once its kept token is gone: the login page
    r = await web.get("/sales")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert (await web.get("/panel/sales/board")).status_code == 401


async def test_the_api_token_is_kept_until_shortly_before_it_expires_and_a_revoked_one_is_asked_again(
    board: Board,
) -> None:
    app, web, signin = board
    secret = signin.session("u-lan", "sales", team="north")
    web.cookies.set(COOKIE, secret)
    for _ in range(3):
        assert (await web.get("/sales")).status_code == 200
    assert signin.calls.count("/sessions/token") == 1
    tokens = app.state.board.signin.tokens
    kept = tokens.kept[key_of(secret)]
    tokens.kept[key_of(secret)] = Grant(kept.token, time.time() + 29, kept.csrf, kept.user)  # 29 s left
    assert (await web.get("/sales")).status_code == 200 and signin.calls.count("/sessions/token") == 2
    # the session's tokens revoked (signed out everywhere elsewhere): the board asks again, and the session ended
    await app.state.board.revocations.publish_session(key_of(secret)[:32], time.time() + 600)
    signin.sessions[secret]["ended"] = True
    r = await web.get("/sales")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_when_the_sign_in_service_does_not_answer_no_one_is_signed_out(board: Board) -> None:
    _, web, signin = board
    assert (await sign_in(web)).status_code == 303
    secret = web.cookies[COOKIE]
    signin.down = True
    r = await web.post("/logout", data={"csrf": signin.sessions[secret]["csrf"]})
    assert r.status_code == 503 and "Not signed out" in r.text and web.cookies[COOKIE] == secret
    signin.down = False
    assert (await web.get("/sales")).status_code == 200  # still signed in, to try again
    web.cookies.set(COOKIE, signin.session("u-lan", "sales"))  # not kept yet: the sign-in service is needed
    signin.down = True
    r = await web.get("/sales")
    assert r.status_code == 503 and "Sign-in unavailable" in r.text
    assert (await web.get("/alerts/count")).json()["status"] == 503
    r = await sign_in(web)
    assert r.status_code == 503 and "does not answer" in r.text


async def test_sign_in_with_the_openid_provider(board: Board) -> None:
    _, web, signin = board
    r = await web.get("/login")
    assert "Sign in with id.example.vn" in r.text and 'href="/login/oidc?next=/sales"' in r.text
    r = await web.get("/login/oidc", params={"next": "/marketing"})
    assert r.status_code == 303 and r.headers["location"].startswith("https://id.example.vn/authorize?")
    binding = r.headers["set-cookie"]
    assert binding.startswith("pipelines_oidc=") and "HttpOnly" in binding and "SameSite=lax" in binding
    web.cookies.delete("pipelines_oidc")  # another browser's callback (a login forced on the victim): refused
    r = await web.get("/login/oidc/callback", params={"code": "c-1", "state": "st-1"})
    assert r.status_code == 400 and COOKIE not in web.cookies
    web.cookies.set("pipelines_oidc", "b" * 43)
    r = await web.get("/login/oidc/callback", params={"code": "c-2", "state": "st-1"})
    assert r.status_code == 401 and "organisation" in r.text and COOKIE not in web.cookies
    r = await web.get("/login/oidc/callback", params={"code": "c-1", "state": "st-1"})
    assert r.status_code == 303 and r.headers["location"] == "/marketing"
    assert signin.sessions[web.cookies[COOKIE]]["user"][0] == "u-oidc"


async def test_without_a_provider_there_is_no_such_button() -> None:
    app = create_app(SETTINGS, transport=httpx.MockTransport(fake_apis), live_feed=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web") as web:
        assert "Sign in with" not in (await web.get("/login")).text
        assert (await web.get("/login/oidc")).status_code == 404


async def test_setting_a_password_from_a_reset_link(board: Board) -> None:
    _, web, _ = board
    r = await web.get("/reset", params={"token": "<script>"})
    assert r.status_code == 400 and "ask your administrator" in r.text and "<script>" not in r.text
    r = await web.get("/reset", params={"token": "a-good-link-token-0123"})
    assert r.status_code == 200 and 'value="a-good-link-token-0123"' in r.text
    form = {"token": "a-good-link-token-0123", "csrf": web.cookies["pipelines_csrf"]}
    r = await web.post("/reset", data=form | {"password": "long enough pw", "confirm": "long enough pW"})
    assert r.status_code == 422 and "differ" in r.text
    r = await web.post("/reset", data=form | {"password": "short", "confirm": "short"})
    assert r.status_code == 422 and "12 to 128" in r.text
    bad = form | {"token": "a-used-link-token-0123", "password": "long enough pw", "confirm": "long enough pw"}
    r = await web.post("/reset", data=bad)
    assert r.status_code == 400 and "ask your administrator" in r.text
    r = await web.post("/reset", data=form | {"password": "long enough pw", "confirm": "long enough pw"})
    assert r.status_code == 303 and r.headers["location"] == "/login?done=reset"
    assert "Your password is set" in (await web.get("/login?done=reset")).text


async def test_over_https_the_cookies_are_secure_and_host_only() -> None:
    signin = FakeSignIn(users={"lan@example.vn": ("u-lan", ("sales",), "north")})
    app = create_app(SETTINGS, transport=httpx.MockTransport(signin), live_feed=False)
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://board.example.vn")
    async with app.router.lifespan_context(app), web:
        r = await web.get("/login")
        csrf = r.headers["set-cookie"]
        assert csrf.startswith("__Host-pipelines_csrf=") and "Path=/" in csrf and "Domain" not in csrf
        assert all(a in csrf for a in ("HttpOnly", "SameSite=strict", "Secure"))
        form = {"email": "lan@example.vn", "password": PASSWORD, "csrf": web.cookies["__Host-pipelines_csrf"]}
        r = await web.post("/login", data=form, headers={"Origin": "https://board.example.vn"})
        assert r.status_code == 303
        cookie = r.headers.get_list("set-cookie")[0]
        assert cookie.startswith(f"__Host-{COOKIE}=") and "Path=/" in cookie and "Domain" not in cookie
        assert all(a in cookie for a in ("HttpOnly", "SameSite=lax", "Secure"))
