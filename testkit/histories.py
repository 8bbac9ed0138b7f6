"""Histories of the leads, production and alerts topics for the random-split test (testkit/batches.py), as the relay
publishes them: CloudEvents JSON, key = stream id.

Realistic events come from the services' own handlers on in-memory stores, driven by the simulations the read
models' oracle tests use (testkit/marketing_sim.py, testkit/production_sim.py), cut to a few entities; then what
the handlers never make but a topic can hold (``odd``): events of an entity never created (a stream's later
events under another id), a creation recorded twice, a redelivered message; the streams interleaved at random,
each stream's order kept. Every history has no gap: each stream's versions are 1, 2, … in order.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.alerts.events import AlertCleared, AlertRaised
from services.leads.handlers import InMemoryDedupe, Leads
from services.production import events as pev
from services.production.handlers import Production
from shared.core.events import DomainEvent
from shared.messaging.envelope import CloudEvent
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore
from testkit import marketing_sim, production_sim

Message = tuple[bytes, bytes]


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _messages(store: InMemoryEventStore, service: str) -> list[Message]:
    out = []
    for recorded in await store.read_all(limit=1_000_000):
        e = CloudEvent.from_recorded(recorded, service)
        out.append((e.streamid.encode(), e.kafka_value()))
    return out


async def leads_messages(n_leads: int, seed: int) -> list[Message]:
    """The marketing simulation's first ``n_leads`` leads and a few days of its campaigns, through ``Leads``."""
    store = InMemoryEventStore()
    clock = _Clock(marketing_sim.START)
    leads = Leads(store, store.personal_data, clock, InMemoryDedupe(), b"d" * 32)
    ctx = Context(actor="sim")
    first_days = marketing_sim.START + timedelta(days=3)
    for a in marketing_sim.generate(n_leads, seed=seed):
        if a.kind == "spend" and a.at > first_days:
            continue
        clock.now = a.at
        kind, cmd, day = marketing_sim.command(a)
        with contextlib.suppress(Exception):  # a command the aggregate refuses: fewer events, as in the sim
            if kind == "campaign":
                await leads.campaign_command(a.target, cmd, ctx, day)
            elif a.kind == "capture":
                await leads.capture(cmd, ctx, lead_id=a.target)
            else:
                await leads.handle(a.target, cmd, ctx)
    return await _messages(store, "leads")


async def production_messages(n_orders: int, seed: int) -> list[Message]:
    """The factory simulation's orders through ``Production``, and demand plans set, approved and revised."""
    store = InMemoryEventStore()
    clock = _Clock(production_sim.START)
    production = Production(store, clock, "Asia/Ho_Chi_Minh")
    products: dict[uuid.UUID, str] = {}
    ctx = Context(actor="sim")
    for a in production_sim.generate(n_orders, seed=seed):
        clock.now = a.at
        with contextlib.suppress(Exception):  # a command the order refuses
            await production.handle(a.order, production_sim.command(a, products), ctx)
    out = await _messages(store, "production")
    rng = random.Random(seed)
    for product in production_sim.PRODUCTS[:2]:
        stream = f"demand-plan-{uuid.uuid4().hex[:6]}-2026-07"
        plan: list[DomainEvent] = [
            pev.DemandForecastRecorded(product=product, period="2026-07", quantity=Decimal(7), method="manual"),
            pev.ProductionPlanApproved(product=product, period="2026-07", quantity=Decimal(6), approved_by="u-x"),
            pev.ProductionPlanRevised(product=product, period="2026-07", old=Decimal(6), new=Decimal(9), reason="r"),
            pev.DemandForecastRecorded(product=product, period="2026-07", quantity=Decimal(8), method="history"),
        ]
        rng.shuffle(plan)
        out += envelopes("production", stream, plan, production_sim.START, rng)
    return out


def alerts_messages(n_alerts: int, seed: int) -> list[Message]:
    """Alerts raised and cleared, some raised again after clearing (a new alert id), some cleared twice."""
    rng = random.Random(seed)
    out: list[Message] = []
    at = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
    for i in range(n_alerts):
        alert = uuid.UUID(int=rng.getrandbits(128))
        entity = f"deal-{uuid.UUID(int=rng.getrandbits(128))}"
        raised = AlertRaised(
            alert_id=alert,
            service=rng.choice(["deals", "leads", "production"]),
            kind=rng.choice(["deal_stuck", "lead_not_contacted", "order_at_risk"]),
            entity=entity,
            summary=f"alert {i}: chờ {rng.randint(1, 90)} ngày",
            details={"owner_id": f"u-{i % 3}", "note": "ghi chú"},
            raised_at=at + timedelta(minutes=i),
            concerns=tuple(f"u-{j}" for j in range(rng.randint(0, 2))),
        )
        cleared = AlertCleared(
            alert_id=alert, service=raised.service, kind=raised.kind, entity=entity, cleared_at=at + timedelta(hours=i)
        )
        events: list[DomainEvent] = [raised] + [cleared] * rng.choice([0, 1, 1, 2])
        out += envelopes("alerts", f"alert-{alert}", events, at, rng)
    return out


def envelopes(
    service: str, stream: str, events: Sequence[DomainEvent], at: datetime, rng: random.Random
) -> list[Message]:
    """Events as their service's relay publishes them, versions 1, 2, … of ``stream``."""
    return [
        (
            stream.encode(),
            CloudEvent(
                id=str(uuid.UUID(int=rng.getrandbits(128))),
                source=f"/pipelines/{service}",
                type=event.event_type,
                subject=stream,
                time=at + timedelta(minutes=v),
                data=event.model_dump(mode="json"),
                streamid=stream,
                streamversion=v,
                position=1,
                schemaversion=event.schema_version,
                recordedtime=at + timedelta(minutes=v),
                correlationid="c",
                causationid="c",
            ).kafka_value(),
        )
        for v, event in enumerate(events, 1)
    ]


def appended(messages: Sequence[Message], stream: str, event: DomainEvent, service: str, seed: int) -> list[Message]:
    """``messages`` and ``event`` as the next version of ``stream`` (which must be among them)."""
    version = sum(1 for k, _ in messages if k == stream.encode())
    assert version, f"no stream {stream}"
    rng = random.Random(seed)
    ((key, value),) = envelopes(service, stream, [event], datetime(2026, 11, 2, tzinfo=UTC), rng)
    bumped = CloudEvent.model_validate_json(value).model_copy(update={"streamversion": version + 1})
    return [*messages, (key, bumped.kafka_value())]


def _renumbered(stream: str, values: Sequence[bytes], old: str, new: str) -> list[Message]:
    """A stream's messages under another id (in its key, stream id and data), versions from 1."""
    out = []
    for v, value in enumerate(values, 1):
        e = CloudEvent.model_validate_json(value.replace(old.encode(), new.encode()))
        out.append((stream.encode(), e.model_copy(update={"streamversion": v}).kafka_value()))
    return out


def odd(messages: Sequence[Message], seed: int, prefixes: Sequence[str]) -> list[Message]:
    """``messages`` plus what the handlers never make: for some streams whose key starts with one of ``prefixes``
    (followed by a uuid), its events after the first under a new id (an entity never created) and its first event
    again as its next version (created twice); then every stream interleaved at random keeping each stream's
    order, with about 3 % redelivered."""
    rng = random.Random(seed)
    streams: dict[bytes, list[bytes]] = {}
    for key, value in messages:
        streams.setdefault(key, []).append(value)
    extra: dict[bytes, list[Message]] = {}
    for key, values in list(streams.items()):
        name = key.decode()
        prefix = next((p for p in prefixes if name.startswith(p)), None)
        if prefix is None or len(values) < 2 or rng.random() > 0.3:
            continue
        old, new = name.removeprefix(prefix), str(uuid.UUID(int=rng.getrandbits(128)))
        extra[f"{prefix}{new}".encode()] = _renumbered(f"{prefix}{new}", values[1:], old, new)
        again = CloudEvent.model_validate_json(values[0]).model_copy(update={"streamversion": len(values) + 1})
        values.append(again.kafka_value())
    queues = [[(k, v) for v in vs] for k, vs in streams.items()] + list(extra.values())
    out: list[Message] = []
    while queues:
        q = rng.choice(queues)
        out.append(q.pop(0))
        if rng.random() < 0.03:
            out.append(rng.choice(out))
        if not q:
            queues.remove(q)
    return out
