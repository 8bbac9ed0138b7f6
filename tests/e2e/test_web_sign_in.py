"""Signing in to the board in headless Chromium, through the real sign-in service (issue 27; decision 0022), on the
processes every board test shares (tests/e2e/web_world.py): with a password; with the organisation's OpenID Provider
(npm ``oidc-provider``, a real one); an account locked after wrong passwords, the page saying until when; a post
without the session's CSRF token refused, from the page's own origin and from another; signing out everywhere ends
every session of the user, and a token the board held is refused by every API within 5 s."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from shared.ops.settings import PIPELINES
from testkit.browser import screenshot
from testkit.waiting import wait_until
from tests.e2e.web_world import MAX_FAILURES, Board, new_page, session_token, sign_in_at, signed_in

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]
APIS = (*PIPELINES, "directory")  # every API the board's processes run
PROBES = dict.fromkeys(PIPELINES, "/alerts") | {"directory": "/users"}


async def test_sign_in_with_a_password_and_sign_out_everywhere(board: Board) -> None:
    laptop, page = await signed_in(board, "u-every")
    phone, other = await signed_in(board, "u-every", viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        user = await page.locator("header .user").text_content()
        assert user is not None and "u-every" in user and "auditor" in user  # roles and team from the directory
        held = [await session_token(board, laptop), await session_token(board, phone)]
        async with httpx.AsyncClient(timeout=30) as http:
            for tok in held:  # both sessions' tokens work before
                for api in APIS:
                    r = await http.get(board.urls[api] + PROBES[api], headers={"Authorization": f"Bearer {tok}"})
                    assert r.status_code == 200, (api, r.text)
            await page.click("form[action='/logout/everywhere'] button")
            await page.wait_for_url("**/login")
            signed_out = time.monotonic()

            async def refused_everywhere() -> bool:
                for tok in held:
                    for api in APIS:
                        r = await http.get(board.urls[api] + PROBES[api], headers={"Authorization": f"Bearer {tok}"})
                        if r.status_code != 401:
                            return False
                return True

            await wait_until(refused_everywhere, timeout=5, interval=0.1)  # issue 27: within 5 s
            assert time.monotonic() - signed_out < 5
        await other.reload()  # the phone's session ended too: the login page
        assert "/login" in other.url
        await screenshot(other, "signed-out-everywhere")
    finally:
        await laptop.close()
        await phone.close()


async def test_sign_in_with_the_openid_provider(board: Board) -> None:
    ctx, page = await new_page(board)
    try:
        await page.goto(f"{board.urls['web']}/marketing")
        assert "/login" in page.url
        await page.click("a.oidc")  # "Sign in with 127.0.0.1:…": to the provider's own pages
        await page.wait_for_url(f"{board.provider.issuer}/**")
        await page.fill("input[name=login]", "u-oidc")
        await page.fill("input[name=password]", "whatever the provider asks")
        await page.click("button[type=submit]")
        while page.url.startswith(board.provider.issuer):  # its consent page, once
            await page.click("button[type=submit]")
            await page.wait_for_load_state()
        await page.wait_for_url("**/marketing")  # back where the user was going, signed in
        user = await page.locator("header .user").text_content()
        assert user is not None and "u-oidc" in user
        await screenshot(page, "signed-in-with-oidc")
    finally:
        await ctx.close()


async def test_an_account_is_locked_after_wrong_passwords_and_the_page_says_until_when(board: Board) -> None:
    ctx, page = await new_page(board)
    try:
        for _ in range(MAX_FAILURES):
            await sign_in_at(page, board, "u-lock", "not my password")
            assert await page.locator(".error").text_content() == "Wrong email or password"
        await sign_in_at(page, board, "u-lock")  # the right password, too late
        error = await page.locator(".error").text_content()
        assert error is not None and re.fullmatch(
            r"Too many wrong passwords: this account is locked until \d{1,2}\xa0[A-Z][a-z]{2}\xa0\d{4},\xa0\d\d:\d\d",
            error,
        ), error
        await screenshot(page, "locked")
        await page.goto(f"{board.urls['web']}/sales")
        assert "/login" in page.url  # not signed in
    finally:
        await ctx.close()


async def test_a_post_without_the_sessions_csrf_token_is_refused(board: Board) -> None:
    ctx, page = await signed_in(board, "u-mgr")
    try:
        # the board's own origin, the session cookie sent, no token: refused, still signed in
        r = await page.request.post(f"{board.urls['web']}/logout", form={"next": "/sales"})
        assert r.status == 403
        # another site's page posts the sign-out form at the board: refused
        await page.goto("about:blank")
        await page.set_content(
            f'<form method="post" action="{board.urls["web"]}/logout/everywhere"><button>win</button></form>'
        )
        async with page.expect_navigation() as answer:
            await page.click("button")
        response = await answer.value
        assert response is not None and response.status == 403
        await page.goto(f"{board.urls['web']}/sales")
        assert page.url.endswith("/sales")  # still signed in
    finally:
        await ctx.close()
