"""The board when an API is busy (issue 32 item 3, decision 0032): a deals API built as every API is
(``install_common``: its in-flight bound, shared.edge.overload) holds its one allowed request, so it answers every
other one 503 ``busy`` with ``Retry-After``. The board says "busy, retry" in the user's language, keeps what the user
typed in the form it shows again, and shows its pages with the busy panels saying so (not an error page).
The sign-in service and the other APIs are tests/unit/web's fakes."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.web.app import COOKIE, create_app
from services.web.domain_words import refusal
from shared.edge.http import install_common
from tests.unit.web.test_actions import DEAL, DEALS, SAME, SCRIPT, SETTINGS, FakeApis
from tests.unit.web.test_sessions import sign_in

BUSY_EN = "The service is busy right now: try again in a few seconds."


async def ok() -> dict[str, str]:
    return {"postgresql": "ok"}


def full_api(entered: asyncio.Event, release: asyncio.Event) -> FastAPI:
    """An API whose one request in flight (``/hold``) is held until ``release``."""
    app = FastAPI()
    install_common(app, ok, "deals")
    app.state.max_in_flight = 1

    @app.post("/hold")
    async def hold() -> dict[str, str]:
        entered.set()
        await release.wait()
        return {}

    return app


class Routed(httpx.AsyncBaseTransport):
    """The deals port to the busy API (in-process), every other port to the fakes."""

    def __init__(self, deals: FastAPI, fakes: FakeApis) -> None:
        self.deals = httpx.ASGITransport(app=deals)
        self.fakes = httpx.MockTransport(fakes)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        to = self.deals if request.url.port == DEALS else self.fakes
        return await to.handle_async_request(request)


@contextlib.asynccontextmanager
async def full() -> AsyncIterator[FastAPI]:
    """An API at its bound until the block ends."""
    entered, release = asyncio.Event(), asyncio.Event()
    api = full_api(entered, release)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://api") as direct:
        held = asyncio.create_task(direct.post("/hold"))
        await asyncio.wait_for(entered.wait(), 30)
        assert (await direct.post("/hold")).status_code == 503  # full
        try:
            yield api
        finally:
            release.set()
            await held


@pytest.fixture
async def busy_board() -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    fakes = FakeApis()
    async with full() as api:
        app = create_app(SETTINGS, transport=Routed(api, fakes), live_feed=False)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web")
        secret = fakes.signin.session("u-lan", "sales", team="north")
        client.cookies.set(COOKIE, secret)
        async with app.router.lifespan_context(app), client:
            yield client, fakes.signin.sessions[secret]["csrf"]


async def test_a_busy_api_is_said_busy_and_the_form_keeps_what_was_typed(
    busy_board: tuple[httpx.AsyncClient, str],
) -> None:
    web, csrf = busy_board
    form = {"deal_id": DEAL, "version": "6", "reason": "khách quay lại, muốn thêm 2 máy", "csrf": csrf}
    page = await web.post("/act/deal.reopen?lang=en", data=form, headers=SAME)
    assert page.status_code == 503 and 'data-rule="busy"' in page.text
    assert BUSY_EN in page.text
    assert "khách quay lại, muốn thêm 2 máy" in page.text and 'name="version" value="6"' in page.text  # kept
    vi = await web.post("/act/deal.reopen?lang=vi", data=form, headers=SAME)
    assert vi.status_code == 503 and "Hệ thống đang bận: hãy thử lại sau vài giây." in vi.text
    scripted = await web.post("/act/deal.reopen?lang=vi", data=form, headers=SCRIPT)
    assert scripted.status_code == 503
    answer = scripted.json()
    assert (answer["ok"], answer["rule"]) == (False, "busy")
    assert answer["message"] == refusal("busy", None, "vi") == "Hệ thống đang bận: hãy thử lại sau vài giây."


async def test_a_page_whose_api_is_busy_shows_the_busy_panels_not_an_error_page(
    busy_board: tuple[httpx.AsyncClient, str],
) -> None:
    web, _ = busy_board
    page = await web.get("/sales", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert BUSY_EN in page.text


async def test_a_busy_sign_in_service_is_said_busy_with_the_email_kept() -> None:
    async with full() as api:
        app = create_app(SETTINGS, transport=httpx.ASGITransport(app=api), live_feed=False)  # sign-in at its bound
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web") as web,
        ):
            web.cookies.set("lang", "vi")
            r = await sign_in(web)
            assert r.status_code == 503, r.text
            assert re.search(r"Dịch vụ đăng nhập đang bận: hãy thử lại sau [12] giây", r.text), r.text
            assert 'value="lan@example.vn"' in r.text
