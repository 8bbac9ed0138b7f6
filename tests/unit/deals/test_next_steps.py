"""The next-step analytics' route (issue 25 item 2) on the in-memory store: scoped like the other numbers — a
salesperson their own, a manager their team's (403 otherwise), a filter naming nobody 422 naming it — checked
before the read model is read; and a board row's next step as one object. The figures themselves, given events:
tests/integration/test_deals_next_step.py (PostgreSQL)."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from services.deals.projections.next_steps import nest
from tests.unit.deals.test_customer_links import BINH, DIRECTOR, LAN, auth, client  # noqa: F401 - the fixture

ROUTE = "/analytics/next-steps"


def test_the_next_step_numbers_are_scoped_before_they_are_read(client: TestClient) -> None:  # noqa: F811
    assert client.get(ROUTE, params={"owner_id": "u-binh"}, headers=LAN).status_code == 403
    assert client.get(ROUTE, params={"team_id": "south"}, headers=auth("u-mai", "sales_manager")).status_code == 403
    unknown = client.get(ROUTE, params={"owner_id": "u-nobody"}, headers=DIRECTOR)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["loc"] == ["query", "owner_id"]
    assert client.get(ROUTE, headers={}).status_code == 401
    # allowed: on to the read model, which this app has not (503)
    assert client.get(ROUTE, headers=LAN).status_code == 503
    assert client.get(ROUTE, params={"owner_id": "u-binh"}, headers=BINH).status_code == 503
    assert client.get(ROUTE, params={"team_id": "south", "owner_id": "u-tuan"}, headers=DIRECTOR).status_code == 503


def test_a_board_rows_next_step_is_one_object_or_null() -> None:
    activity = uuid.uuid4()
    cols = {"next_activity_id": activity, "next_kind": "zalo", "next_title": "nhắn Zalo", "next_due_at": "t"}
    assert nest({"deal_id": "d", **cols}) == {
        "deal_id": "d",
        "next_step": {"activity_id": activity, "kind": "zalo", "title": "nhắn Zalo", "due_at": "t"},
    }
    empty = dict.fromkeys(cols)
    assert nest({"deal_id": "d", **empty}) == {"deal_id": "d", "next_step": None}
    assert nest({"deal_id": "d"}) == {"deal_id": "d"}  # a row without the columns (another query's) as it is
