"""The read models of a process reading one topic build the same tables when they share its decoded records
(shared.messaging.decoded, decision 0034) as each does alone: no read model changes an envelope or event another
gets after it.

Hypothesis draws a history and where batches end; the projections' runners share one window and take each batch in
turn, in a drawn order (testkit/batches.py ``apply_together``); each one's tables, counts and dead letters must equal
those of its batches of one without a window. Real PostgreSQL through the real runner. The groups: every read model
of the deals' topic (the board, the analytics, and production's demand model, which reads it too) and the
directory's four on its topic (with its bad event, dead-lettered by the directory model alone).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.deals.analytics import analytics
from services.deals.projections import board
from services.directory import projections
from services.directory.projections.user_emails import user_emails
from services.directory.replica import replica
from services.production.projections import demand
from shared.messaging.projections import Projection
from shared.privacy.pii import InMemoryKeyStore, PersonalData
from testkit import histories
from testkit.batches import Message, Outcome, apply_in_batches, apply_together, assert_same, cut_at
from testkit.deals_history import History
from testkit.service_histories import directory_history

pytestmark = [pytest.mark.pg]

EXAMPLES = int(os.environ.get("PIPELINES_SPLIT_EXAMPLES", "2"))
SECRET = b"s" * 32
PII = PersonalData(InMemoryKeyStore())


def _deals(seed: int) -> list[Message]:
    return histories.odd(list(History(10, seed=seed).messages()), seed, ("deal-",))


GROUPS: dict[str, tuple[str, Callable[[], list[Projection]], Callable[[int], list[Message]]]] = {
    "deals": (
        "deals",
        lambda: [board("deals"), analytics("deals"), demand("deals", "Asia/Ho_Chi_Minh")],
        _deals,
    ),
    "directory": (
        "d",
        lambda: [
            projections.directory("d"),
            projections.customers("d", PII, SECRET),
            user_emails("d", PII, SECRET),
            replica("d"),
        ],
        lambda seed: directory_history(seed, 8, poison=True),
    ),
}
_alone: dict[tuple[str, int], list[Outcome]] = {}  # (group, seed): each read model alone, in batches of one


@pytest.mark.parametrize("group", list(GROUPS))
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(seed=st.integers(min_value=0, max_value=1), at=st.lists(st.integers(min_value=1, max_value=200), max_size=8))
async def test_read_models_sharing_decoded_records_build_what_each_builds_alone(
    pg_pool: asyncpg.Pool, group: str, seed: int, at: list[int]
) -> None:
    topic, make, history = GROUPS[group]
    messages = history(seed)
    key = (group, seed)
    if key not in _alone:
        _alone[key] = [await apply_in_batches(pg_pool, p, messages, [1]) for p in make()]
    made = make()
    together = await apply_together(pg_pool, made, messages, cut_at([*at, 40], len(messages)), topic=topic, seed=seed)
    for p, want, got in zip(made, _alone[key], together, strict=True):
        assert_same(got, want, f"{p.name} sharing a window")
    if group == "directory":  # its bad event: dead-lettered by the directory model alone, shared or not
        assert [bool(o.dead_lettered) for o in together] == [True, False, False, False]
