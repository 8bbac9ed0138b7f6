"""The web board: server-rendered pages over the three APIs, called with the signed-in user's own token.

- Sign in through the sign-in service (decision 0022) with an email and password or the organisation's OpenID
  Provider (``login.py``); the browser holds the session's secret in an HttpOnly cookie, the board asks the sign-in
  service for the session's short-lived API token and calls the APIs with it, so a page shows exactly what the
  user's role may see there: a salesperson their own deals, a manager their team's, an auditor everything (a panel
  the role may not see says so). Signing out (or out everywhere) ends the session and revokes its tokens in every
  API (``session.py``). Every post carries the session's CSRF token, and is refused from another site
  (``csrf.py``). The Team and Salesperson filters list what the directory lets the user see (``people.py``).
- ``/sales``, ``/marketing``, ``/production``, ``/alerts``, ``/audit``: panels defined in ``pages.py``;
  ``/panel/{page}/{panel}`` one panel's HTML (what live updates fetch) (``views.py``), ``/export/{page}/{panel}.csv``
  its CSV (``exports.py``).
- ``/events``: server-sent events, one small notice per event on the topics (``stream.py``, fed by ``live.py``).
- ``/readyz``: 503 while the live feed cannot reach Kafka; ready while it waits for topics the services have not
  made yet ("ok; waiting for topics: …": a fresh deployment where the board starts first; pages work, not live).
- English and Vietnamese: ``?lang=en|vi`` (kept in a cookie), else the browser's language.

``create_app`` builds what the routes share (``state.Board``, on ``app.state.board``) and adds the routes
(``add_routes``: the board's URLs in one table); each route is a function of its module that reads the board
from the request (``state.board_of``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.web import exports, live, login, session, stream, views
from services.web.actions import core as actions
from services.web.actions import ops as ops_actions
from services.web.actions import sales as sales_actions
from services.web.apis import Apis
from services.web.pages import all_pages
from services.web.people import People
from services.web.render import HERE, html, templates
from services.web.session import COOKIE as COOKIE  # the session cookie's name, for tests that sign in
from services.web.signin import SignIn, SignInError
from services.web.state import Board
from shared.edge.auth import TokenVerifier
from shared.edge.http import install_common
from shared.edge.problems import http_problem
from shared.edge.revocation import RevocationList
from shared.ops.settings import Settings


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    live_feed: bool = True,
    stop: asyncio.Event | None = None,
) -> FastAPI:
    """The board's app; setting ``stop`` ends its live feed and open event streams (a process's shutdown).
    ``live_feed=False`` (tests without Kafka): no live notices, and signing out revokes in this process only."""
    tz = ZoneInfo(settings.timezone)
    revocations = RevocationList(settings if live_feed else None)
    apis = Apis(settings, transport)
    board = Board(
        settings=settings,
        tz=tz,
        apis=apis,
        people=People(apis),
        signin=SignIn(settings, transport),
        hub=live.Hub(),
        revocations=revocations,
        verifier=TokenVerifier.from_settings(settings, revoked=revocations),
        templates=templates(tz),
        pages=all_pages(tz),
        stop=stop or asyncio.Event(),
        live_feed=live_feed,
    )
    app = FastAPI(title="Pipelines — board", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.board = board
    # the board is not bounded (decision 0032): its own requests are the APIs' and are bounded there
    install_common(
        app, functools.partial(readiness, board), "web", max_body_bytes=settings.max_body_bytes, bounded=False
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(SignInError, signin_down)
    add_routes(app, board.pages)
    return app


async def signin_down(request: Request, exc: Exception) -> Response:
    """The sign-in service did not answer while the board checked a session: say so, sign no one out."""
    if request.url.path.startswith(("/panel/", "/export/", "/alerts/count", "/events")):
        return await http_problem(request, StarletteHTTPException(503, "the sign-in service does not answer"))
    return html(request, "message.html", 503, title="signin_down", message=None, user=None, csrf=None)


def add_routes(app: FastAPI, pages: Iterable[str]) -> None:
    """The board's own routes, each a function of the module of its concern; none is in the OpenAPI document (the
    board serves browsers). Added to the app one by one rather than by including routers, so that ``app.routes``
    lists every route (tests/contract/test_openapi_shape.py reads it)."""
    routes: list[tuple[str, str, Callable[..., Awaitable[Any]]]] = [
        ("GET", "/", views.root),
        ("GET", "/login", login.login_form),
        ("POST", "/login", login.login),
        ("GET", "/login/oidc", login.oidc_start),
        ("GET", "/login/oidc/callback", login.oidc_callback),
        ("GET", "/reset", login.reset_form),
        ("POST", "/reset", login.reset),
        ("POST", "/logout", session.logout),
        ("POST", "/logout/everywhere", session.logout_everywhere),
        *(("GET", f"/{page}", views.show_page) for page in pages),
        ("GET", "/panel/{page_id}/{panel_id}", views.panel_fragment),
        ("GET", "/export/{page_id}/{panel_id}.csv", exports.export),
        ("GET", "/alerts/count", views.alerts_count),
        ("GET", "/events", stream.events),
        ("POST", "/act/{action_id}", actions.act),  # every action (services/web/actions/core.py)
        ("GET", "/act/{action_id}", actions.form_page),
        ("GET", "/deal/{deal_id}", sales_actions.deal_page),
        ("GET", "/agenda", sales_actions.agenda_page),
        ("GET", "/customers/{organisation_id}", sales_actions.customer_page),
        ("GET", "/lead/{lead_id}", ops_actions.lead_page),  # a lead and its actions (actions/ops.py)
        ("GET", "/order/{order_id}", ops_actions.order_page),  # a production order and its actions
    ]
    for method, path, endpoint in routes:
        app.add_api_route(path, endpoint, methods=[method], include_in_schema=False)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The live feed and the revocation list read Kafka while the app serves; at its end, ``stop`` ends them."""
    board: Board = app.state.board
    running = []
    if board.live_feed:
        running += [
            asyncio.create_task(live.feed(board.settings, board.hub, board.stop)),
            asyncio.create_task(board.revocations.run(board.stop)),
        ]
    running.append(asyncio.create_task(board.verifier.run(board.stop)))  # the JWKS (nothing without PIPELINES_JWKS_URL)
    try:
        yield
    finally:
        board.stop.set()
        for task in running:
            await task
        await board.apis.close()
        await board.signin.close()


async def readiness(board: Board) -> dict[str, str]:
    """Ready when the live feed reads Kafka (or waits for topics the services have not made: "ok; waiting for topics:
    …", pages work), the revocation list is caught up and the APIs and the sign-in service answer."""
    checks = {"live": board.hub.readiness() if board.live_feed else "ok"}
    if board.live_feed:  # not before it knows every token signed out
        checks["revocations"] = board.revocations.readiness()
    for service, url in (*board.apis.urls.items(), ("signin", board.signin.url)):
        try:
            r = await board.apis.http.get(url + "/healthz", timeout=2)
            checks[service] = "ok" if r.status_code == 200 else f"answered {r.status_code}"
        except httpx.HTTPError as exc:
            checks[service] = type(exc).__name__
    return checks


__all__ = ["COOKIE", "create_app"]
