"""Any split of a history into batches builds what batches of one build, for the read models of every service but
the deals' (theirs: tests/integration/test_read_model_batches.py; the customer 360's: test_customer_360.py), with
testkit/batches.py.

Hypothesis draws a generated history and where batches end; the tables, the runner's counts and the dead letters must
equal those of batches of one. Real PostgreSQL through the real runner (``ProjectionRunner.process``). Histories:

- directory and agenda (testkit/service_histories.py): the service's events from the contract's real examples, odd
  orders, events of things never registered, second registrations, merges, erasures, sealed fields no key opens,
  redeliveries; the directory's holds a team name with a NUL, which PostgreSQL refuses;
- leads, production, alerts (testkit/histories.py): the services' handlers driven by the oracle tests' simulations,
  plus events of leads, campaigns and orders never created, creations recorded twice and redeliveries, interleaved at
  random; the demand model reads the deals' generated history (testkit/deals_history.py); the leads' holds a score
  its table cannot hold.

A bad event makes its batch's apply raise; the runner applies the batch again one event at a time and dead-letters
that event alone, in any split. ``PIPELINES_SPLIT_EXAMPLES`` draws more splits per read model (CI: a few).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.agenda.projections import activities
from services.agenda.subjects import subjects
from services.alerts.projection import alerts_projection
from services.directory import projections
from services.directory.projections.adoption import adoption
from services.directory.projections.user_emails import user_emails
from services.directory.replica import replica
from services.leads.events import LeadScored
from services.leads.projections import marketing
from services.production.projections import demand, floor
from shared.messaging.projections import Projection
from shared.privacy.pii import InMemoryKeyStore, PersonalData
from testkit import histories
from testkit.batches import Message, Outcome, assert_splits_agree, cut_at
from testkit.deals_history import History
from testkit.service_histories import POISONED, agenda_history, deals_and_leads_history, directory_history

pytestmark = [pytest.mark.pg]

EXAMPLES = int(os.environ.get("PIPELINES_SPLIT_EXAMPLES", "2"))  # splits drawn per read model
SEEDS = EXAMPLES // 4  # histories: one in CI (each is applied in batches of one once, the costly part)
SECRET = b"s" * 32
PII = PersonalData(InMemoryKeyStore())  # no subject's key: a sealed field opens as None (an erased subject)


async def _directory(seed: int) -> list[Message]:
    return directory_history(seed, 8, poison=True)


async def _deals_and_leads(seed: int) -> list[Message]:
    return deals_and_leads_history(seed, 12)


async def _agenda(seed: int) -> list[Message]:
    return agenda_history(seed, 16)


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


def _poisoned(messages: list[Message]) -> list[int]:
    """The directory history's team name with a NUL: the one event dead-lettered."""
    return [i for i, (k, _) in enumerate(messages) if k == POISONED.encode()][:1]


def _last_lead_score(messages: list[Message]) -> list[int]:
    """The leads history's score past its column: the one event dead-lettered."""
    return [i for i, (_, v) in enumerate(messages) if b'"fit":1099511627776' in v.replace(b" ", b"")][:1]


History_ = Callable[[int], Awaitable[list[Message]]]
Dead = Callable[[list[Message]], list[int]] | None  # which events are dead-lettered (None: none)
# each read model: how it is made, the history of the topics it reads, its bad event
READ_MODELS: dict[str, tuple[Callable[[], Projection], History_, Dead]] = {
    "directory": (lambda: projections.directory("d"), _directory, _poisoned),
    "customers": (lambda: projections.customers("d", PII, SECRET), _directory, None),
    "user_emails": (lambda: user_emails("d", PII, SECRET), _directory, None),
    "replica": (lambda: replica("d"), _directory, None),
    "adoption": (lambda: adoption("deals"), _deals_and_leads, None),
    "activities": (lambda: activities("agenda"), _agenda, None),
    "subjects": (lambda: subjects("deals", "leads"), _deals_and_leads, None),
    "marketing": (lambda: marketing("leads"), _leads, _last_lead_score),
    "floor": (lambda: floor("production"), _production, None),
    "demand": (lambda: demand("deals", "Asia/Ho_Chi_Minh"), _deals, None),
    "alerts": (lambda: alerts_projection("alerts"), _alerts, None),
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
@example(seed=0, at=[40])  # the customers' search keys of an organisation changed before it was registered (session 44)
async def test_any_split_into_batches_builds_what_batches_of_one_build(
    pg_pool: asyncpg.Pool, name: str, seed: int, at: list[int]
) -> None:
    make, history, dead = READ_MODELS[name]
    key = (name, seed)
    if key not in _histories:
        _histories[key] = await history(seed)
    projection, messages = make(), _histories[key]
    want = await assert_splits_agree(
        pg_pool, projection, messages, cut_at(at, len(messages)), one_by_one=_one_by_one.get(key)
    )
    _one_by_one[key] = want
    expected = dead(messages) if dead else []
    assert not dead or expected, f"{name}: the history holds its bad event"
    assert want.dead_lettered == expected, name
    assert all(want.tables[t] for t in projection.tables if t not in EMPTY.get(name, ())), (
        f"{name}: the history fills every table"
    )
