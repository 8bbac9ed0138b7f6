"""What moved one deal's part of the forecast between two recorded times (the rows the query compares: as the deal
was recorded at the start, or as it was opened when it was opened in between, and as it was at the end)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from services.deals.analytics.pipeline import deal_changes

M = Decimal(1_000_000)


def row(**changes: Any) -> dict[str, Any]:
    """A deal open at the start and at the end, 50,000,000, u-lan's in the north, nothing changed."""
    base = {
        "was": "open",
        "now": "open",
        "old_value": 50 * M,
        "new_value": 50 * M,
        "old_close": date(2026, 12, 15),
        "new_close": date(2026, 12, 15),
        "owner_id": "u-lan",
        "team_id": "north",
        "old_owner": "u-lan",
        "old_team": "north",
        "in_scope_now": True,
    }
    return base | changes


OPENED_SINCE = {"was": None, "old_value": None, "old_close": None}


@pytest.mark.parametrize(
    ("r", "want"),
    [
        (row(), []),
        (row(**OPENED_SINCE), [("created", 50 * M)]),
        (row(**OPENED_SINCE, now="won"), [("created", 50 * M), ("won", 50 * M)]),
        (row(**OPENED_SINCE, now="lost"), [("created", 50 * M), ("lost", 50 * M)]),
        (row(**OPENED_SINCE, owner_id="u-binh"), [("created", 50 * M), ("reassigned", 50 * M)]),
        (row(now="won", new_value=55 * M), [("won", 55 * M), ("value_up", 5 * M)]),
        (row(was="won"), [("reopened", 50 * M)]),
        (row(new_close=date(2027, 1, 10)), [("pushed_out", 50 * M)]),
        (row(owner_id="u-binh"), [("reassigned", 50 * M)]),
        (row(team_id="south"), [("reassigned", 50 * M)]),
        (row(owner_id="u-binh", now="won", in_scope_now=False), [("reassigned", 50 * M)]),
    ],
    ids=[
        "unchanged",
        "opened",
        "opened-and-won",
        "opened-and-lost",
        "opened-and-handed-over",
        "won-for-more",
        "reopened",
        "pushed-out",
        "reassigned",
        "moved-team",
        "handed-out-of-scope",
    ],
)
def test_what_moved_a_deal(r: dict[str, Any], want: list[tuple[str, Decimal]]) -> None:
    assert deal_changes(r) == want
