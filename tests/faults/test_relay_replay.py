"""Issue 23 item 7, the relay's half: a relay killed between Kafka's acknowledgement and its checkpoint publishes
the same events again, and each of their effects still happens once.

The window is forced, not hoped for. The services run as processes, each relay on its own. The test locks a
relay's checkpoint table from a transaction of its own (``WritesHeld``) and sends commands (their commits held back
from the relays until the last one is in, so they make one batch): the relay publishes their events, Kafka
acknowledges them, and the relay waits to record its checkpoint. The test sees the events on the topic, SIGKILLs
the relay, ends its waiting session (no checkpoint of the killed relay is written), lets the lock go, and later
starts the relay again: it publishes again from its stored checkpoint. Forced twice:

1. the leads relay, with a ``LeadConverted`` in flight (its reaction: deals opens the deal);
2. the deals relay, with an ``ActivityLogged``, a ``StageChanged`` and a ``DealWon`` in flight (counted by the read
   models; the win's reactions: production makes the order, leads records the win on the lead).

Then: each event of the two batches is on its topic exactly twice (counted by event id), every other event once;
every projection skipped each copy it read as already applied, and says so in
``pipelines_projection_duplicates_total`` of its process; so nothing took effect twice: one deal opened, one order,
one win recorded on the lead, no reaction's event appended twice, the relays' and the funnel's counts not doubled,
and every read model equals its recomputation from the stores (``Checker``: an activity or a stage visit applied
twice would differ).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.deals.events import deal_id_for_lead
from services.production.handlers import order_id_for_deal
from shared.ops.settings import PIPELINES, Settings  # the lead flow's services: the directory is not in it
from shared.ops.stack import Endpoints
from shared.store.db import connect
from testkit.checker import Checker
from testkit.faults import ADMIN, Processes, WritesHeld, skipped_duplicates
from testkit.kafka import read_topic
from testkit.services import drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]

WINDOW = {"from": "2020-01-01", "to": "2100-01-01"}
# the relays killed run on their own, beside their services' api and projector; production, whose relay is not
# killed, runs its three parts in one process (two process starts fewer: the test's time is mostly starts)
PARTS = [(s, m) for s in ("leads", "deals") for m in ("api", "relay", "projector")] + [("production", "all")]


class Flow:
    """Commands through the APIs; every event a 2xx answer acknowledged is remembered for the checker."""

    def __init__(self, http: httpx.AsyncClient, urls: dict[str, str]) -> None:
        self.http = http
        self.urls = urls
        self.acked: dict[str, set[tuple[str, int]]] = {}

    async def post(self, service: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.http.post(
            self.urls[service] + path, json=body, headers=ADMIN | {"Idempotency-Key": str(uuid.uuid4())}
        )
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        answer: dict[str, Any] = r.json()
        self.acked.setdefault(service, set()).add((answer["stream_id"], answer["version"]))
        return answer

    async def get(self, service: str, path: str, **params: Any) -> Any:
        r = await self.http.get(self.urls[service] + path, params=params, headers=ADMIN)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json()

    async def exists(self, service: str, path: str) -> bool:
        return (await self.http.get(self.urls[service] + path, headers=ADMIN)).status_code == 200


async def in_flight(checker: Checker, service: str) -> set[str]:
    """The ids of the service's events past its relay's stored checkpoint."""
    s = checker.settings.schema_name(service)
    rows = await checker.pools[service].fetch(
        f"""SELECT event_id::text FROM {s}.events e WHERE (e.tx_id, e.position) > coalesce(
                (SELECT (c.tx_id, c.position) FROM {s}.relay_checkpoints c WHERE c.name = 'relay'),
                ('0'::xid8, 0::bigint))"""
    )
    return {r[0] for r in rows}


async def on_topic(checker: Checker, service: str) -> Counter[str]:
    """How often each event id is on the service's topic."""
    messages = await read_topic(checker.settings.kafka_bootstrap_servers, checker.settings.events_topic(service))
    return Counter(m.id for _, m in messages)


async def killed_after_ack(
    procs: Processes, checker: Checker, service: str, commands: list[tuple[str, dict[str, Any]]], flow: Flow
) -> set[str]:
    """The commands sent while the service's relay cannot write its checkpoint; once their events are on the topic
    (acknowledged by Kafka) and the relay waits to record them, the relay is killed. Returns the ids of that batch:
    the commands' events, all of them (``commits_held_back``)."""
    await wait_until(lambda: _nothing_unpublished(checker, service), timeout=30, interval=0.1)
    async with WritesHeld.relay_checkpoints(checker.settings, (service,)) as held:
        async with commits_held_back(checker.settings, service):
            for path, body in commands:
                await flow.post(service, path, body)

        async def published_and_waiting() -> bool:
            if not await held.waiting(service):
                return False
            ids = await in_flight(checker, service)
            return bool(ids) and ids <= set(await on_topic(checker, service))

        await wait_until(published_and_waiting, timeout=30, interval=0.1)
        batch = await in_flight(checker, service)
        procs.kill(service, "relay")
    # left: the killed relay's session waiting to write ended, then the lock gone; no checkpoint moved
    assert await in_flight(checker, service) >= batch
    return batch


@contextlib.asynccontextmanager
async def commits_held_back(settings: Settings, service: str) -> AsyncIterator[None]:
    """A transaction with a transaction id, open for the block: the relays publish nothing committed after it began
    until it ends (``read_all``: commit-safe order), so the block's commands reach the relay in one batch."""
    conn = await connect(settings.database_url_for(service))
    try:
        async with conn.transaction():
            await conn.fetchval("SELECT pg_current_xact_id()")
            yield
    finally:
        await conn.close()


async def _nothing_unpublished(checker: Checker, service: str) -> bool:
    return await checker.unpublished(service) == 0


async def duplicates_skipped(procs: Processes) -> dict[tuple[str, str], float]:
    """``pipelines_projection_duplicates_total`` of every process running projections, per (service, projection)."""
    out: dict[tuple[str, str], float] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for service in procs.services:
            port = procs.ops_ports[service, "projector"] if (service, "projector") in procs.running else None
            text = (
                await http.get(f"http://127.0.0.1:{port}/metrics" if port else f"{procs.urls[service]}/metrics")
            ).text
            out |= {(service, p): n for p, n in skipped_duplicates(text).items()}
    return out


async def test_a_relay_killed_between_ack_and_checkpoint_publishes_again_and_nothing_takes_effect_twice(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    began = time.monotonic()
    settings = isolated_settings(endpoints)
    procs = Processes(settings, tuple(PIPELINES), tmp_path)
    phases: list[tuple[str, float]] = []

    def phase(name: str) -> None:
        phases.append((name, round(time.monotonic() - began, 1)))

    try:
        for service, mode in PARTS:
            procs.start(service, mode)
        await procs.wait_started()
        phase("started")
        async with Checker(settings, PIPELINES) as checker, httpx.AsyncClient(timeout=30) as http:
            flow = Flow(http, procs.urls)
            lead, deal, order, batches = await two_relays_killed_after_ack(procs, checker, flow)
            phase("relays killed")
            before = await duplicates_skipped(procs)
            for service in batches:
                procs.start(service, "relay")
            await procs.wait_started()
            phase("relays restarted")
            await published_twice(checker, batches)
            report = await checker.check(flow.acked, redelivery=True)
            phase("checked")
            await each_effect_once(checker, flow, lead, deal, order)
            skipped = await each_copy_skipped(procs, checker, batches, before)
            assert not procs.dead(), f"only the killed processes die: {procs.dead()}"
        print(f"\n[relay replay] {time.monotonic() - began:.1f} s; batches {batches}; skipped {skipped}; {report}")
    finally:
        print(f"\n[relay replay] phases {phases}")
        procs.stop_all()
        await drop_everything(settings)


async def two_relays_killed_after_ack(
    procs: Processes, checker: Checker, flow: Flow
) -> tuple[str, str, str, dict[str, set[str]]]:
    """A lead converted while the leads relay is held, then its deal won while the deals relay is held; each relay
    killed with the command's events acknowledged and not checkpointed. Returns the lead, deal and order ids and
    the ids of each killed relay's batch."""
    contact = {"name": "Hoàng Thị Yến", "phone": f"09{uuid.uuid4().int % 10**8:08d}"}
    lead = (await flow.post("leads", "/leads", {"source": "manual", "contact": contact}))["id"]
    for path, body in [
        ("assign", {"owner_id": "u-lan", "team_id": "north"}),
        ("contact", {"channel": "phone"}),
        ("qualify", {"level": "sql"}),
    ]:
        await flow.post("leads", f"/leads/{lead}/{path}", body)
    deal = str(deal_id_for_lead(uuid.UUID(lead)))
    order = str(order_id_for_deal(uuid.UUID(deal)))

    convert = [(f"/leads/{lead}/convert", {"customer": "Quán Yến", "title": "Tủ mát"})]
    batches = {"leads": await killed_after_ack(procs, checker, "leads", convert, flow)}
    # deals' reaction opens the deal: from the conversion published once
    await wait_until(lambda: flow.exists("deals", f"/deals/{deal}"), timeout=30, interval=0.1)
    line = {"product": "Tủ mát 2 cánh", "quantity": "2", "unit_price": {"amount": "14500000", "currency": "VND"}}
    await flow.post("deals", f"/deals/{deal}/change-lines", {"lines": [line]})
    # one batch of events a read model would count twice if it applied them twice (an activity, a stage visit),
    # and the win
    win = [
        (f"/deals/{deal}/log-activity", {"activity_type": "call", "channel": "phone"}),
        (f"/deals/{deal}/move-stage", {"stage_id": "needs_discussed"}),
        (f"/deals/{deal}/win", {}),
    ]
    batches["deals"] = await killed_after_ack(procs, checker, "deals", win, flow)
    await wait_until(lambda: flow.exists("production", f"/orders/{order}"), timeout=30, interval=0.1)
    converted = await _event_ids(checker, "leads", "pipelines.leads.LeadConverted")
    won = await _event_ids(checker, "deals", "pipelines.deals.DealWon")
    assert len(converted) == 1 and converted <= batches["leads"], (converted, batches)
    assert len(won) == 1 and won <= batches["deals"], (won, batches)
    assert len(batches["deals"]) == 3, batches
    return lead, deal, order, batches


async def published_twice(checker: Checker, batches: dict[str, set[str]]) -> None:
    """Each restarted relay published its batch again: every event of it twice on its topic (by event id), every
    other event of every topic once."""

    async def republished() -> bool:
        for s, ids in batches.items():
            counts = await on_topic(checker, s)
            if any(counts[i] < 2 for i in ids):
                return False
        return True

    await wait_until(republished, timeout=30, interval=0.2)
    for service in PIPELINES:
        counts = await on_topic(checker, service)
        assert {i for i, n in counts.items() if n > 1} == batches.get(service, set()), (service, batches, counts)
        assert max(counts.values()) <= 2, counts


async def each_effect_once(checker: Checker, flow: Flow, lead: str, deal: str, order: str) -> None:
    """The reactions to the events published twice took effect once, and the figures count them once."""
    deal_events = await _stream_types(checker, "deals", f"deal-{deal}")
    order_events = await _stream_types(checker, "production", f"production-order-{order}")
    lead_events = await _stream_types(checker, "leads", f"lead-{lead}")
    assert deal_events.count("pipelines.deals.DealOpened") == 1, deal_events
    assert order_events.count("pipelines.production.ProductionOrderCreated") == 1, order_events
    assert lead_events.count("pipelines.leads.LeadBecameCustomer") == 1, lead_events
    for service in PIPELINES:
        reactions, twice = await _caused(checker, service)
        assert reactions and not twice, (service, reactions, twice)
        await wait_until(lambda s=service: _relay_counted_each_once(checker, s), timeout=10, interval=0.1)
    funnel = await flow.get("leads", "/funnel", **WINDOW)
    assert [(f["opportunities"], f["customers"], f["revenue"]) for f in funnel] == [(1, 1, "29000000")], funnel
    won = (await flow.get("deals", "/deals", status="won"))["items"]
    assert [w["deal_id"] for w in won] == [deal], won
    orders = (await flow.get("production", "/orders", limit=200))["items"]
    assert [o["order_id"] for o in orders] == [order], orders


async def each_copy_skipped(
    procs: Processes, checker: Checker, batches: dict[str, set[str]], before: dict[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    """Every projection (read models and reactions) counted each copy on the topics it reads as a duplicate it
    skipped, and nothing else since the relays restarted. Returns the counts."""
    expected = {}
    for (service, name), projection in (await checker.projections()).items():
        copies = sum(len(ids) for s, ids in batches.items() if checker.settings.events_topic(s) in projection.topics)
        if copies:
            expected[service, name] = float(copies)
    assert expected.get(("deals", "reactions")) and expected.get(("production", "reactions")), expected

    async def counted() -> dict[tuple[str, str], float]:
        now = await duplicates_skipped(procs)
        return {k: n - before.get(k, 0.0) for k, n in now.items() if n - before.get(k, 0.0)}

    async def all_counted() -> bool:
        now = await counted()
        return all(now.get(k, 0.0) >= n for k, n in expected.items())

    with contextlib.suppress(TimeoutError):  # then the assertion says what was counted
        await wait_until(all_counted, timeout=30, interval=0.2)
    skipped = await counted()
    assert skipped == expected, (skipped, expected)
    return skipped


async def _relay_counted_each_once(checker: Checker, service: str) -> bool:
    """The relay's count of what it published, kept with its checkpoint, is the number of events stored."""
    s = checker.settings.schema_name(service)
    pool = checker.pools[service]
    published = await pool.fetchval(f"SELECT published FROM {s}.relay_checkpoints WHERE name = 'relay'")
    return bool(published == await pool.fetchval(f"SELECT count(*) FROM {s}.events"))


async def _event_ids(checker: Checker, service: str, event_type: str) -> set[str]:
    s = checker.settings.schema_name(service)
    rows = await checker.pools[service].fetch(
        f"SELECT event_id::text FROM {s}.events WHERE event_type = $1", event_type
    )
    return {r[0] for r in rows}


async def _stream_types(checker: Checker, service: str, stream: str) -> list[str]:
    s = checker.settings.schema_name(service)
    rows = await checker.pools[service].fetch(
        f"SELECT event_type FROM {s}.events WHERE stream_id = $1 ORDER BY version", stream
    )
    return [r[0] for r in rows]


async def _caused(checker: Checker, service: str) -> tuple[int, list[Any]]:
    """How many events the service's reactions appended, and those appended twice: the same type on the same stream
    caused by the same event."""
    s = checker.settings.schema_name(service)
    pool = checker.pools[service]
    by_reactions = f"FROM {s}.events WHERE metadata->>'actor' = 'system:{service}-reactions'"
    twice = await pool.fetch(
        f"""SELECT stream_id, event_type, metadata->>'causation_id' AS cause, count(*) {by_reactions}
            GROUP BY 1, 2, 3 HAVING count(*) > 1"""
    )
    return int(await pool.fetchval(f"SELECT count(*) {by_reactions}")), list(twice)
