"""Any split of a history into batches builds the directory's and the agenda's read models that batches of one build
(testkit/batches.py; the deals' are tests/integration/test_read_model_batches.py, the customer 360's
tests/integration/test_customer_360.py).

Hypothesis draws a generated history (testkit/service_histories.py: the service's events from the contract's real
examples, odd orders, events of things never registered, second registrations, merges, erasures, sealed fields no
key opens, redeliveries) and where batches end; the tables, the runner's counts and the dead letters must equal
those of batches of one. Real PostgreSQL through the real runner (``ProjectionRunner.process``).
``PIPELINES_SPLIT_EXAMPLES`` draws more splits per read model (CI: a few).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.agenda.projections import activities
from services.agenda.subjects import subjects
from services.directory import projections
from services.directory.projections.adoption import adoption
from services.directory.projections.user_emails import user_emails
from services.directory.replica import replica
from shared.messaging.projections import Projection
from shared.privacy.pii import InMemoryKeyStore, PersonalData
from testkit.batches import Message, Outcome, assert_splits_agree, cut_at
from testkit.service_histories import POISONED, agenda_history, deals_and_leads_history, directory_history

pytestmark = [pytest.mark.pg]

EXAMPLES = int(os.environ.get("PIPELINES_SPLIT_EXAMPLES", "2"))  # splits drawn per read model
SEEDS = EXAMPLES // 4  # histories: one in CI (each is applied in batches of one once, the costly part)
SECRET = b"s" * 32
PII = PersonalData(InMemoryKeyStore())  # no subject's key: a sealed field opens as None (an erased subject)
# each read model: how it is made, and the history of the topics it reads
READ_MODELS: dict[str, tuple[Callable[[], Projection], Callable[[int], list[Message]]]] = {
    "directory": (lambda: projections.directory("d"), lambda seed: directory_history(seed, 8, poison=True)),
    "customers": (
        lambda: projections.customers("d", PII, SECRET),
        lambda seed: directory_history(seed, 8, poison=True),
    ),
    "user_emails": (lambda: user_emails("d", PII, SECRET), lambda seed: directory_history(seed, 8, poison=True)),
    "replica": (lambda: replica("d"), lambda seed: directory_history(seed, 8, poison=True)),
    "adoption": (lambda: adoption("deals"), lambda seed: deals_and_leads_history(seed, 12)),
    "activities": (lambda: activities("agenda"), lambda seed: agenda_history(seed, 16)),
    "subjects": (lambda: subjects("deals", "leads"), lambda seed: deals_and_leads_history(seed, 12)),
}
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
    seed=st.integers(min_value=0, max_value=SEEDS), at=st.lists(st.integers(min_value=1, max_value=120), max_size=12)
)
async def test_any_split_into_batches_builds_what_batches_of_one_build(
    pg_pool: asyncpg.Pool, name: str, seed: int, at: list[int]
) -> None:
    make, history = READ_MODELS[name]
    projection, messages = make(), history(seed)
    key = (name, seed)
    want = await assert_splits_agree(
        pg_pool, projection, messages, cut_at(at, len(messages)), one_by_one=_one_by_one.get(key)
    )
    _one_by_one[key] = want
    poisoned = [i for i, (k, _) in enumerate(messages) if k == POISONED.encode()]
    # the one event PostgreSQL refuses (a team's name with a NUL) is found by the runner's retry one by one and
    # dead-lettered alone, in any split; every other generated event applies
    assert want.dead_lettered == (poisoned[:1] if name == "directory" else []), name
    assert all(want.tables[t] for t in projection.tables if t not in EMPTY.get(name, ())), (
        f"{name}: the history fills every table"
    )


EMPTY: dict[str, tuple[str, ...]] = {}  # tables a read model's history may leave empty
