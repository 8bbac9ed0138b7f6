"""Any split of a history into batches builds the leads', production's and alerts' read models that batches of one
build (testkit/batches.py; the directory's and agenda's: test_read_model_batches_services.py, the deals':
test_read_model_batches.py).

The histories (testkit/histories.py) are the services' handlers driven by the oracle tests' simulations, plus
events of leads, campaigns and orders never created, creations recorded twice and redeliveries, interleaved at
random; the demand model reads the deals' generated history (testkit/deals_history.py); the leads' history has a
score its table cannot hold (a batch holding it raises and is applied again one by one: only it is dead-lettered).
Hypothesis draws where batches end; the tables, the runner's counts and the dead letters must equal those of batches of one. Real
PostgreSQL through the real runner (``ProjectionRunner.process``). ``PIPELINES_SPLIT_EXAMPLES`` draws more splits
per read model (CI: a few).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.alerts.projection import alerts_projection
from services.leads.events import LeadScored
from services.leads.projections import marketing
from services.production.projections import demand, floor
from shared.messaging.projections import Projection
from testkit import histories
from testkit.batches import Message, Outcome, assert_splits_agree, cut_at
from testkit.deals_history import History

pytestmark = [pytest.mark.pg]

EXAMPLES = int(os.environ.get("PIPELINES_SPLIT_EXAMPLES", "2"))  # splits drawn per read model
SEEDS = EXAMPLES // 4  # histories: one in CI (each is applied in batches of one once, the costly part)


async def _leads(seed: int) -> list[Message]:
    """The leads, and a score its column cannot hold (integer): the batch's apply raises, the runner finds it."""
    messages = await histories.leads_messages(14, seed)
    stream = next(k.decode() for k, _ in messages if k.startswith(b"lead-"))
    bad = LeadScored(
        lead_id=uuid.UUID(stream.removeprefix("lead-")),
        fit=2**40,
        engagement=Decimal(1),
        total=Decimal(1),
        model_version="v",
        at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    return histories.odd(histories.appended(messages, stream, bad, "leads", seed), seed, ("lead-", "campaign-"))


async def _production(seed: int) -> list[Message]:
    return histories.odd(await histories.production_messages(8, seed), seed, ("production-order-",))


async def _deals(seed: int) -> list[Message]:
    return histories.odd(list(History(10, seed=seed).messages()), seed, ("deal-",))


async def _alerts(seed: int) -> list[Message]:
    return histories.odd(histories.alerts_messages(12, seed), seed, ())


# each read model: how it is made, and the history of the topics it reads
READ_MODELS: dict[str, tuple[Callable[[], Projection], Callable[[int], Awaitable[list[Message]]]]] = {
    "marketing": (lambda: marketing("leads"), _leads),
    "floor": (lambda: floor("production"), _production),
    "demand": (lambda: demand("deals", "Asia/Ho_Chi_Minh"), _deals),
    "alerts": (lambda: alerts_projection("alerts"), _alerts),
}
EMPTY: dict[str, tuple[str, ...]] = {"floor": ("inspections",)}  # tables a small history may leave empty
_histories: dict[tuple[str, int], list[Message]] = {}
_one_by_one: dict[tuple[str, int], Outcome] = {}  # (read model, seed): its history applied in batches of one


@pytest.mark.parametrize("name", list(READ_MODELS))
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    seed=st.integers(min_value=0, max_value=SEEDS), at=st.lists(st.integers(min_value=1, max_value=200), max_size=12)
)
async def test_any_split_into_batches_builds_what_batches_of_one_build(
    pg_pool: asyncpg.Pool, name: str, seed: int, at: list[int]
) -> None:
    make, history = READ_MODELS[name]
    key = (name, seed)
    if key not in _histories:
        _histories[key] = await history(seed)
    projection, messages = make(), _histories[key]
    want = await assert_splits_agree(
        pg_pool, projection, messages, cut_at(at, len(messages)), one_by_one=_one_by_one.get(key)
    )
    _one_by_one[key] = want
    assert bool(want.dead_lettered) == (name == "marketing"), "only the bad score is dead-lettered"
    assert all(want.tables[t] for t in projection.tables if t not in EMPTY.get(name, ())), (
        f"{name}: the history fills every table"
    )
