"""Signed webhooks end to end (decision 0026): real Kafka and PostgreSQL, the webhooks' API and dispatcher, and a
receiver process verifying each delivery with the reference Standard Webhooks library (testkit/webhook_receiver.py).

One dispatcher serves the module (short backoffs: 20–50 ms, 3 tries, disabled after 10 failures in a row); each test
has its own subscriptions and streams, and turns its subscriptions off when done."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.webhooks import dispatcher
from services.webhooks.domain.addresses import AllowList
from services.webhooks.handlers import Webhooks
from services.webhooks.main import WebhooksService, build
from shared.messaging.kafka import TopicSpec, ensure_topics
from shared.ops.settings import SERVICES, Settings
from shared.ops.stack import Endpoints
from testkit import webhook_receiver
from testkit.services import bearer, client_for, drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
ADMIN = bearer("u-admin", "admin")
AUDITOR = bearer("u-audit", "auditor")


@dataclass
class World:
    settings: Settings
    service: WebhooksService
    api: httpx.AsyncClient
    receiver: str  # the receiver's base URL
    producer: AIOKafkaProducer
    sender: dispatcher.Sender  # the module's dispatcher's

    async def subscribe(self, name: str, types: list[str], **behaviour: Any) -> dict[str, Any]:
        r = await self.api.post(
            "/subscriptions", json={"url": f"{self.receiver}/hooks/{name}", "event_types": types}, headers=ADMIN
        )
        assert r.status_code == 201, r.text
        sub = r.json()
        async with httpx.AsyncClient() as c:
            spec = {"secret": sub["secret"], **behaviour}
            assert (await c.put(f"{self.receiver}/control/{name}", json=spec)).status_code == 204
        return dict(sub)

    async def received(self, name: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as c:
            return list((await c.get(f"{self.receiver}/control/{name}")).json())

    async def publish(
        self, service: str, stream: str, seq: int, event_type: str = "pipelines.deals.DealWon", event_id: str = ""
    ) -> str:
        """A CloudEvent as a relay writes it, keyed by its stream; its id."""
        event_id = event_id or str(uuid.uuid4())
        event = {
            "specversion": "1.0",
            "id": event_id,
            "source": f"/pipelines/{service}",
            "type": event_type,
            "datacontenttype": "application/json",
            "subject": stream,
            "time": "2026-12-07T00:00:00Z",
            "data": {"stream": stream, "seq": seq},
        }
        await self.producer.send_and_wait(
            self.settings.events_topic(service), json.dumps(event).encode(), key=stream.encode()
        )
        return event_id

    async def deliveries(self, sid: str, **params: str) -> list[dict[str, Any]]:
        r = await self.api.get(f"/subscriptions/{sid}/deliveries", params=params | {"limit": "500"}, headers=AUDITOR)
        assert r.status_code == 200, r.text
        return list(r.json())

    async def off(self, sid: str) -> None:
        r = await self.api.patch(f"/subscriptions/{sid}", json={"enabled": False}, headers=ADMIN)
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    with webhook_receiver.running() as base:
        yield base


@pytest.fixture(scope="module")
async def world(endpoints: Endpoints, receiver: str) -> AsyncIterator[World]:
    host = receiver.split("//")[1].split(":")[0]
    settings = isolated_settings(endpoints).model_copy(
        update={
            "webhooks_allow": f"{host}/32",
            "webhooks_max_attempts": 3,
            "webhooks_backoff_base_s": 0.02,
            "webhooks_backoff_cap_s": 0.05,
            "webhooks_disable_after": 10,
            "webhooks_poll_s": 0.05,
            "webhooks_start": "earliest",
        }
    )
    names = [*(settings.events_topic(s) for s in SERVICES), settings.alerts_topic()]
    topics = [TopicSpec(t, 3, settings.kafka_replication_factor) for t in names]
    await ensure_topics(settings.kafka_bootstrap_servers, topics)
    service = await build(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    stop = asyncio.Event()
    sender = service.sender()
    task = asyncio.create_task(dispatcher.run(service.queuer(sender), sender, stop))
    api = client_for(service.app())
    try:
        yield World(settings, service, api, receiver, producer, sender)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
        await api.aclose()
        await service.close()
        await drop_everything(settings)


def ok_seqs(received: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Per stream, the seq of each delivery the receiver verified and accepted, in the order it got them."""
    out: dict[str, list[int]] = defaultdict(list)
    for r in received:
        if r["verified"] and r["status"] == 204:
            out[r["data"]["stream"]].append(r["data"]["seq"])
    return out


async def test_signed_in_order_per_stream_and_retried_after_500s(world: World) -> None:
    """Two dispatchers send (the module's and a second one here): each stream still arrives in order."""
    sub = await world.subscribe("order", ["pipelines.deals.*"], fail_first=[500, 500])
    other = await world.subscribe("leads-only", ["pipelines.leads.LeadCaptured"])
    second, stop = world.service.sender(), asyncio.Event()
    task = asyncio.create_task(second.run(stop))
    streams = [f"deal-{uuid.uuid4()}" for _ in range(3)]
    for seq in range(8):
        for s in streams:
            await world.publish("deals", s, seq)
    await world.publish("leads", f"lead-{uuid.uuid4()}", 0, "pipelines.leads.LeadCaptured")

    async def all_in() -> bool:  # received, and recorded as delivered (the answer comes before the record)
        got = sum(len(v) for v in ok_seqs(await world.received("order")).values())
        return got >= 24 and {d["state"] for d in await world.deliveries(sub["id"])} == {"delivered"}

    try:
        await wait_until(all_in, timeout=30, interval=0.1)
    finally:
        stop.set()
        await task
        await second.close()
    got = await world.received("order")
    assert all(r["verified"] for r in got), "every delivery verifies with the reference library"
    assert all(r["webhook_id"] == r["id"] for r in got), "webhook-id is the event's id"
    assert ok_seqs(got) == {s: list(range(8)) for s in streams}, "each stream in order, each event once accepted"
    assert [r["status"] for r in got].count(500) == 2
    # the retried deliveries' attempts, queryable: two 500s then delivered
    retried = [d for d in await world.deliveries(sub["id"]) if d["attempts"] > 1]
    assert retried and all(d["state"] == "delivered" for d in retried)
    logs = []
    for d in retried:
        r = await world.api.get(f"/subscriptions/{sub['id']}/deliveries/{d['id']}", headers=AUDITOR)
        logs += r.json()["attempt_log"]
    assert sorted((a["outcome"], a["status_code"]) for a in logs if a["outcome"] != "delivered") == [
        ("http_error", 500),
        ("http_error", 500),
    ]
    assert all(a["latency_ms"] > 0 for a in logs)
    # the filter: the leads-only subscription got the lead and nothing of the deals
    await wait_until(lambda: received_at_least(world, "leads-only", 1), timeout=15, interval=0.1)
    assert {r["type"] for r in await world.received("leads-only")} == {"pipelines.leads.LeadCaptured"}
    for s in (sub, other):
        await world.off(s["id"])


async def received_at_least(world: World, name: str, n: int) -> bool:
    return len(await world.received(name)) >= n


async def test_dead_letter_holds_its_stream_until_redriven_or_skipped(world: World) -> None:
    a, b, c = (f"deal-{uuid.uuid4()}" for _ in range(3))
    a1, c1 = str(uuid.uuid4()), str(uuid.uuid4())
    sub = await world.subscribe("dead", ["pipelines.deals.DealWon"], fail_ids=[a1, c1])  # refused every time
    sid = sub["id"]
    await world.publish("deals", a, 1, event_id=a1)
    await world.publish("deals", c, 1, event_id=c1)
    for seq in (2, 3):
        await world.publish("deals", a, seq)
        await world.publish("deals", c, seq)
    await world.publish("deals", b, 1)
    await world.publish("deals", b, 2)

    async def settled() -> bool:
        states = [(d["stream"], d["state"]) for d in await world.deliveries(sid)]
        return states.count((a, "dead")) + states.count((c, "dead")) == 2 and states.count((b, "delivered")) == 2

    await wait_until(settled, timeout=30, interval=0.1)
    by_stream = defaultdict(list)
    for d in sorted(await world.deliveries(sid), key=lambda d: d["kafka_offset"]):
        by_stream[d["stream"]].append((d["state"], d["attempts"]))
    assert by_stream[a] == [("dead", 3), ("pending", 0), ("pending", 0)], "the dead head holds a2, a3"
    assert by_stream[b] == [("delivered", 1), ("delivered", 1)], "another stream goes on"
    assert (await world.api.get("/subscriptions/" + sid, headers=AUDITOR)).json()["enabled"] is True
    dead = {d["stream"]: d["id"] for d in await world.deliveries(sid, state="dead")}

    # a redrive of something not dead: 409; by an auditor: 403
    delivered = (await world.deliveries(sid, state="delivered"))[0]["id"]
    r = await world.api.post(f"/subscriptions/{sid}/deliveries/{delivered}/redrive", headers=ADMIN)
    assert (r.status_code, r.json()["rule"]) == (409, "not_dead_lettered")
    r = await world.api.post(f"/subscriptions/{sid}/deliveries/{dead[a]}/redrive", headers=AUDITOR)
    assert r.status_code == 403

    # the receiver accepts again: a redriven a1 goes first, then a2, a3; c1 skipped: c2, c3 go on without it
    async with httpx.AsyncClient() as client:
        await client.put(f"{world.receiver}/control/dead", json={"secret": sub["secret"], "fail_ids": [c1]})
    r = await world.api.post(f"/subscriptions/{sid}/deliveries/{dead[a]}/redrive", headers=ADMIN)
    assert r.status_code == 200 and r.json()["state"] == "pending", r.text
    r = await world.api.post(f"/subscriptions/{sid}/deliveries/{dead[c]}/skip", headers=ADMIN)
    assert r.status_code == 200 and r.json()["state"] == "skipped", r.text

    async def drained() -> bool:
        seqs = ok_seqs(await world.received("dead"))
        return len(seqs[a]) == 3 and len(seqs[c]) == 2

    await wait_until(drained, timeout=30, interval=0.1)
    seqs = ok_seqs(await world.received("dead"))
    assert (seqs[a], seqs[c]) == ([1, 2, 3], [2, 3])
    await world.off(sid)

    # housekeeping: delivered and skipped deliveries go after PIPELINES_WEBHOOKS_KEEP_DAYS, the others stay
    async def recorded() -> bool:  # the receiver answered before the dispatcher recorded the answer
        return {d["state"] for d in await world.deliveries(sid)} == {"delivered", "skipped"}

    await wait_until(recorded, timeout=10, interval=0.05)
    ours = len(await world.deliveries(sid))
    await world.service.store.purge(datetime.now(UTC) + timedelta(days=1))
    assert await world.deliveries(sid) == [] and ours == 8


async def test_a_run_of_failures_disables_the_subscription(world: World) -> None:
    sub = await world.subscribe("down", ["pipelines.production.*"], fail_first=[503] * 100)
    for i in range(5):
        await world.publish("production", f"order-{uuid.uuid4()}", i, "pipelines.production.OrderCreated")

    async def disabled() -> bool:
        got = (await world.api.get(f"/subscriptions/{sub['id']}", headers=AUDITOR)).json()
        return got["enabled"] is False

    await wait_until(disabled, timeout=30, interval=0.1)
    got = (await world.api.get(f"/subscriptions/{sub['id']}", headers=AUDITOR)).json()
    assert got["disabled_reason"] == "failures" and got["consecutive_failures"] >= 10
    tried = len(await world.received("down"))
    await asyncio.sleep(0.3)  # several polls: a disabled subscription is not tried
    assert len(await world.received("down")) == tried
    # re-enabled by an admin: its run of failures starts again from nothing
    r = await world.api.patch(f"/subscriptions/{sub['id']}", json={"enabled": True}, headers=ADMIN)
    assert (r.json()["enabled"], r.json()["consecutive_failures"], r.json()["disabled_reason"]) == (True, 0, None)
    await world.off(sub["id"])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hooks/x",
        "http://localhost:{port}/hooks/x",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "https://100.64.0.9/hook",
        "https://[::ffff:127.0.0.1]/hook",
    ],
)
async def test_private_addresses_are_refused_at_creation(world: World, url: str) -> None:
    port = world.receiver.rsplit(":", 1)[1]
    body = {"url": url.format(port=port), "event_types": ["pipelines.deals.*"]}
    r = await world.api.post("/subscriptions", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "address_refused" and r.json()["errors"][0]["loc"] == ["body", "url"]
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_redirects_are_not_followed(world: World) -> None:
    sub = await world.subscribe("moved", ["pipelines.directory.*"], redirect=f"{world.receiver}/hooks/elsewhere")
    await world.publish("directory", f"directory-user-{uuid.uuid4()}", 1, "pipelines.directory.UserRegistered")

    async def tried() -> bool:
        return any(d["attempts"] for d in await world.deliveries(sub["id"]))

    await wait_until(tried, timeout=20, interval=0.1)
    await world.off(sub["id"])
    (d,) = await world.deliveries(sub["id"])
    log = (await world.api.get(f"/subscriptions/{sub['id']}/deliveries/{d['id']}", headers=AUDITOR)).json()
    assert (log["attempt_log"][0]["outcome"], log["attempt_log"][0]["status_code"]) == ("http_error", 307)
    assert await world.received("elsewhere") == []


async def test_the_address_is_checked_again_at_each_delivery(world: World) -> None:
    """A host's DNS answer may change after its subscription was made (rebinding): the dispatcher resolves and checks
    again before each attempt, and connects to the address it checked. Here its allow-list stops admitting the
    receiver's address after the subscription was made: the attempt is refused, nothing reaches the receiver."""
    sub = await world.subscribe("rebound", ["pipelines.agenda.*"])
    admitting = world.sender.options
    world.sender.options = replace(admitting, allow=AllowList())
    try:
        await world.publish("agenda", f"agenda-activity-{uuid.uuid4()}", 1, "pipelines.agenda.ActivityScheduled")

        async def refused() -> bool:
            ds = await world.deliveries(sub["id"])
            return bool(ds) and ds[0]["state"] == "dead"

        await wait_until(refused, timeout=20, interval=0.1)
    finally:
        world.sender.options = admitting
    (d,) = await world.deliveries(sub["id"])
    log = (await world.api.get(f"/subscriptions/{sub['id']}/deliveries/{d['id']}", headers=AUDITOR)).json()
    assert [a["outcome"] for a in log["attempt_log"]] == ["refused"] * 3
    assert "127.0.0.2" in log["attempt_log"][0]["error"]
    assert await world.received("rebound") == []
    # once admitted again, a redrive delivers it
    r = await world.api.post(f"/subscriptions/{sub['id']}/deliveries/{d['id']}/redrive", headers=ADMIN)
    assert r.status_code == 200
    await wait_until(lambda: received_at_least(world, "rebound", 1), timeout=20, interval=0.1)
    assert ok_seqs(await world.received("rebound"))
    await world.off(sub["id"])


async def test_subscriptions_are_bounded_and_secrets_shown_once(world: World) -> None:
    base = {"url": f"{world.receiver}/hooks/bounded", "event_types": ["pipelines.deals.*"]}
    for bad, rule in (
        ({"event_types": ["pipelines.deals.NoSuch"]}, "unknown_event_type"),
        ({"event_types": []}, "invalid_input"),
        ({"url": "ftp://example.com/x"}, "invalid_subscription"),
        ({"url": "https://user:pw@example.com/x"}, "invalid_subscription"),
        ({"url": "https://example.com/" + "x" * 2100}, "invalid_input"),
        ({"url": "https://no-such-host.invalid/x"}, "unresolvable_host"),
    ):
        r = await world.api.post("/subscriptions", json=base | bad, headers=ADMIN)
        assert (r.status_code, r.json()["rule"]) == (422, rule), (bad, r.text)
    r = await world.api.post("/subscriptions", json=base, headers=ADMIN)
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    sub = r.json()
    assert sub["secret"].startswith("whsec_")
    listed = (await world.api.get("/subscriptions", headers=AUDITOR)).json()
    assert all("secret" not in s for s in listed) and sub["id"] in {s["id"] for s in listed}  # a read: no key at all
    one = (await world.api.get(f"/subscriptions/{sub['id']}", headers=AUDITOR)).json()
    changed = await world.api.patch(f"/subscriptions/{sub['id']}", json={"description": "x"}, headers=ADMIN)
    assert "secret" not in one and "secret" not in changed.json() and changed.json()["description"] == "x"
    rotated = (await world.api.post(f"/subscriptions/{sub['id']}/rotate-secret", headers=ADMIN)).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != sub["secret"]
    async with world.service.pool.acquire() as conn:
        stored = await conn.fetchval(
            f"SELECT sealed_secret FROM {world.settings.schema_name('webhooks')}.subscriptions WHERE id = $1",
            uuid.UUID(sub["id"]),
        )
    assert rotated["secret"].encode() not in stored and rotated["secret"][6:].encode() not in stored
    assert (await world.api.delete(f"/subscriptions/{sub['id']}", headers=AUDITOR)).status_code == 403
    assert (await world.api.delete(f"/subscriptions/{sub['id']}", headers=ADMIN)).status_code == 204
    assert (await world.api.get(f"/subscriptions/{sub['id']}", headers=AUDITOR)).status_code == 404


async def test_a_rotation_signs_with_both_secrets_for_its_window_then_the_new_one_only(world: World) -> None:
    """Standard Webhooks' rotation: for PIPELINES_WEBHOOKS_ROTATION_OVERLAP_S (24 h here) after a rotation each
    delivery carries the new and the previous secret's signatures, so the receiver (the reference library) verifies
    with either; once the window has closed only the new one signs and the previous secret is dropped."""
    sub = await world.subscribe("rotating", ["pipelines.deals.DealLost"])  # the receiver holds the first secret
    sid, first = uuid.UUID(sub["id"]), sub["secret"]
    r = await world.api.post(f"/subscriptions/{sid}/rotate-secret", headers=ADMIN)
    assert r.status_code == 200, r.text
    second, until = r.json()["secret"], datetime.fromisoformat(r.json()["previous_secret_until"])
    assert timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24)
    stored = await world.service.store.get(sid)
    assert stored is not None and stored.previous_sealed_secret is not None
    assert first[6:].encode() not in stored.previous_sealed_secret, "the previous secret is stored sealed"
    assert world.service.webhooks.sealer.open(sid, stored.previous_sealed_secret) == first
    stream = f"deal-{uuid.uuid4()}"

    async def deliver(seq: int, secret: str) -> dict[str, Any]:
        """The receiver holding ``secret``; one event published; what it got for it (once the answer is recorded)."""
        async with httpx.AsyncClient() as c:
            assert (await c.put(f"{world.receiver}/control/rotating", json={"secret": secret})).status_code == 204
        eid = await world.publish("deals", stream, seq, "pipelines.deals.DealLost")

        async def settled() -> bool:
            return any(d["event_id"] == eid and d["state"] != "pending" for d in await world.deliveries(str(sid)))

        await wait_until(settled, timeout=20, interval=0.05)
        return [g for g in await world.received("rotating") if g["id"] == eid][-1]

    # in the window: two signatures; a receiver with the old secret verifies, one with the new secret too
    for seq, secret in ((1, first), (2, second)):
        got = await deliver(seq, secret)
        assert (got["verified"], got["status"], got["signatures"]) == (True, 204, 2), (seq, got)

    # a rotation whose window has closed (its clock is set back past the overlap): the new secret alone signs
    overlap = world.service.webhooks.config.rotation_overlap
    past = clock_set_back(overlap + timedelta(seconds=5))
    later = Webhooks(world.service.store, world.service.webhooks.sealer, world.service.webhooks.config, past)
    third = (await later.rotate(sid))["secret"]
    got = await deliver(3, second)  # the receiver still holds the previous secret: refused, retried, dead
    assert (got["verified"], got["status"], got["signatures"]) == (False, 401, 1), got
    dead = await world.deliveries(str(sid), state="dead")
    assert len(dead) == 1
    async with httpx.AsyncClient() as c:
        assert (await c.put(f"{world.receiver}/control/rotating", json={"secret": third})).status_code == 204
    assert (await world.api.post(f"/subscriptions/{sid}/deliveries/{dead[0]['id']}/redrive", headers=ADMIN)).is_success
    await wait_until(lambda: received_at_least(world, "rotating", 6), timeout=20, interval=0.05)
    got = (await world.received("rotating"))[-1]
    assert (got["verified"], got["status"], got["signatures"], got["data"]["seq"]) == (True, 204, 1, 3), got

    # the housekeeping drops a previous secret whose window has closed
    assert await world.service.store.drop_expired_secrets(datetime.now(UTC)) >= 1
    stored = await world.service.store.get(sid)
    assert stored is not None and (stored.previous_sealed_secret, stored.previous_secret_until) == (None, None)
    await world.off(str(sid))


def clock_set_back(by: timedelta) -> Callable[[], datetime]:
    return lambda: datetime.now(UTC) - by
