"""What the board's routes share, built once by ``create_app`` and kept on ``app.state.board``: the settings, the
API clients, the sign-in service's client, the live hub, the revocation list and the token verifier, the templates and the pages. A route reads
it with ``board_of(request)``, so every route is a plain function of its module that a test may call on its own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import jinja2
from starlette.requests import Request

from services.web.apis import Apis
from services.web.live import Hub
from services.web.panels import Page
from services.web.people import People
from services.web.signin import SignIn
from shared.edge.auth import TokenVerifier
from shared.edge.revocation import RevocationList
from shared.ops.settings import Settings


@dataclass(frozen=True)
class Board:
    settings: Settings
    tz: ZoneInfo  # the business's time zone: today's date and the times a page writes
    apis: Apis
    signin: SignIn  # sessions and their API tokens (decision 0022)
    people: People  # the teams and users each session may choose in the filters
    hub: Hub
    revocations: RevocationList
    verifier: TokenVerifier
    templates: jinja2.Environment
    pages: dict[str, Page]  # by id, which is also the page's path
    stop: asyncio.Event  # set: the process stops, open event streams end
    live_feed: bool  # False (tests without Kafka): no live notices, revocations in this process only

    def today(self) -> date:
        return datetime.now(UTC).astimezone(self.tz).date()


def board_of(request: Request) -> Board:
    board: Board = request.app.state.board
    return board
