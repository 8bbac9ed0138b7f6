"""The board's layout without servers (issue 28): a kanban column shows its first cards and "n more", a plain link
(no script needed) to the whole column, which a live update keeps whole; the page is reachable by keyboard (a skip
link to the content) and announces live updates. The layout in a real browser: tests/e2e/test_web_board.py."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from services.web.app import COOKIE, create_app
from services.web.panels import CARDS_SHOWN
from tests.unit.web.signin_fake import SIGNIN_PORT
from tests.unit.web.test_board_unit import SETTINGS, SIGNIN, session

MANY = 20  # deals in the first stage: more than a column shows


def card(n: int) -> dict[str, Any]:
    return {"deal_id": f"d-{n}", "title": f"Deal {n}", "customer": "Co", "owner_id": "u-lan", "value": "1000"}


BOARD = {
    "stages": [
        {"stage_id": "qualified", "name": "Qualified", "count": MANY, "deals": [card(n) for n in range(MANY)]},
        {"stage_id": "quote", "name": "Quote", "count": 2, "deals": [card(100), card(101)]},
    ]
}


ASKED: list[dict[str, str]] = []  # the deals API's /board queries


def fake_apis(request: httpx.Request) -> httpx.Response:
    """The deals API's board, listing each stage's first ``cards`` deals (all of ``whole_stage``'s) as it does."""
    if request.url.port == SIGNIN_PORT:
        return SIGNIN(request)
    if request.url.path == "/board" and request.url.port == 8102:
        q = dict(request.url.params)
        ASKED.append(q)
        cut = int(q.get("cards", 1000))
        stages = [
            s | {"deals": s["deals"] if s["stage_id"] == q.get("whole_stage") else s["deals"][:cut]}
            for s in BOARD["stages"]
        ]
        return httpx.Response(200, json={"stages": stages})
    return httpx.Response(200, json=[])


@pytest.fixture
async def web() -> Any:
    app = create_app(SETTINGS, transport=httpx.MockTransport(fake_apis), live_feed=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web")
    async with app.router.lifespan_context(app), client:
        client.cookies.set(COOKIE, session("u-lan", "sales"))
        yield client


def cards_in(html: str, stage: str) -> int:
    column = html.split(f'data-stage="{stage}"', 1)[1].split('<div class="column"', 1)[0]
    return column.count("<article")


async def test_a_column_shows_its_first_cards_and_links_to_the_rest(web: httpx.AsyncClient) -> None:
    page = (await web.get("/sales")).text
    assert ASKED[-1]["cards"] == str(CARDS_SHOWN) and "whole_stage" not in ASKED[-1]  # the API lists what is shown
    assert cards_in(page, "qualified") == CARDS_SHOWN and cards_in(page, "quote") == 2
    assert 'data-total="20"' in page and f">{MANY - CARDS_SHOWN} more</a>" in page
    link = re.search(r'<a class="more" href="([^"]+)"', page)
    assert link and "more=qualified" in link.group(1) and link.group(1).endswith("#panel-board")
    whole = (await web.get(link.group(1).replace("&amp;", "&").split("#")[0])).text
    assert ASKED[-1]["whole_stage"] == "qualified"
    assert cards_in(whole, "qualified") == MANY and cards_in(whole, "quote") == 2
    assert ">Show fewer</a>" in whole and "more=qualified" in re.search(r'data-query="([^"]*)"', whole).group(1)
    # a live update fetches the panel with the page's query: the column stays whole, its links carry `more` once
    fragment = (await web.get("/panel/sales/board?more=qualified")).text
    assert cards_in(fragment, "qualified") == MANY and fragment.count("more=qualified") == 1
    csv = (await web.get("/export/sales/board.csv?more=quote")).text  # every card, whatever the page shows
    assert "cards" not in ASKED[-1] and len(csv.strip().splitlines()) == 1 + MANY + 2
    assert (await web.get("/sales?more=<x>")).status_code == 422
    vi = (await web.get("/sales?lang=vi")).text
    assert f">Xem thêm {MANY - CARDS_SHOWN}</a>" in vi


async def test_the_page_has_a_skip_link_and_announces_live_updates(web: httpx.AsyncClient) -> None:
    page = (await web.get("/sales")).text
    assert '<a class="skip" href="#content">Skip to the content</a>' in page and '<main id="content"' in page
    assert 'aria-live="polite"' in page
