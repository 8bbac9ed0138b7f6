"""The poison event of issue 19, with the three services running under load.

1. The attack's requests — a 1.1 MB X-Correlation-ID on a deal's log-activity, a 900 KB ``raw_payload`` on a
   lead — are refused before anything is stored.
2. An event Kafka cannot take is stored anyway (as one stored before the size check existed would be: appended
   here under a higher limit, beside the load's commands). The deals relay publishes everything before it and stops
   there: its ``/readyz`` says stuck and ``pipelines_relay_stuck`` is 1, while the other services' relays go on.
3. The operator raises the deals topic's ``max.message.bytes`` and the relay's producer limit and restarts the
   relay: it publishes the event and everything after it.

Then the checker: nothing acknowledged is lost, each topic holds its store without a duplicate, every read model
equals its recomputation from the stores (the large event applied in its place)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.deals.events import ActivityLogged
from shared.edge.service import Storage
from shared.messaging.kafka import admin_client
from shared.ops.settings import PIPELINES  # the lead flow's services: the directory is not in it
from shared.ops.stack import Endpoints
from shared.store import ConcurrencyError, EventTooLargeError, NewEvent
from testkit.checker import Checker
from testkit.faults import Load, Processes, traffic
from testkit.services import bearer, drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]

RATE = 40.0
SALES = bearer("u-lan", "sales")
MARKETING = bearer("u-mkt", "marketing")
ADMIN = bearer("u-admin", "admin", team=None)


async def store_too_large_an_event(storage: Storage, deal: str) -> tuple[str, int]:
    """A 1.2 MB note on an existing deal, appended past the store's limit; returns (stream, version)."""
    stream = f"deal-{deal}"
    event = ActivityLogged(
        deal_id=uuid.UUID(deal),
        activity_id=uuid.uuid4(),
        activity_type="call",
        channel="phone",
        direction="outbound",
        stage_id="target_identified",
        note="n" * 1_200_000,
    )
    with pytest.raises(EventTooLargeError):  # what the API's command would meet
        await storage.store.append(
            stream, [NewEvent(event)], expected_version=await storage.store.stream_version(stream)
        )
    storage.store.max_event_bytes = 50_000_000
    storage.store.states = None
    for _ in range(20):  # the load writes to the same deal now and then
        try:
            version = await storage.store.stream_version(stream)
            result = await storage.store.append(stream, [NewEvent(event)], expected_version=version)
            return stream, result.version
        except ConcurrencyError:
            await asyncio.sleep(0.05)
    raise AssertionError("could not append to the deal")


async def readiness(http: httpx.AsyncClient, url: str) -> tuple[int, str]:
    try:
        answer = await http.get(url)
        return answer.status_code, answer.text
    except httpx.HTTPError as exc:
        return 0, repr(exc)


async def test_an_event_kafka_cannot_take_stops_only_its_relay_until_the_limit_is_raised(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    began = time.monotonic()
    settings = isolated_settings(endpoints)
    services = tuple(PIPELINES)
    procs = Processes(settings, services, tmp_path)
    storage = await Storage.open(settings, "deals")
    try:
        procs.start_all()
        await procs.wait_started()
        async with Checker(settings, services) as checker, httpx.AsyncClient(timeout=30) as http:
            load = Load(procs.urls, rate=RATE)
            async with traffic(load):
                await wait_until(lambda: _true(len(load.deals) > 0), timeout=30)
                deal = load.deals[0]
                # 1. the attack's requests, refused before anything is stored
                # (a head over the server's bound is answered 431 and the connection closed, which a client still
                # sending it may see as the connection going away: either way nothing is read or stored)
                headers = SALES | {"X-Correlation-ID": "c" * 1_100_000}
                try:
                    answer = await http.post(
                        f"{procs.urls['deals']}/deals/{deal}/log-activity",
                        headers=headers,
                        json={"activity_type": "call", "channel": "phone"},
                    )
                    assert answer.status_code in (400, 431) and len(answer.content) < 10_000
                except httpx.TransportError:
                    pass
                lead = {
                    "source": "website",
                    "contact": {"full_name": "Nguyễn Văn An", "email": "an@example.vn"},
                    "raw_payload": {"blob": "x" * 900_000},
                }
                answer = await http.post(f"{procs.urls['leads']}/leads", headers=MARKETING, json=lead)
                assert answer.status_code in (413, 422), answer.text[:300]

                # 2. a stored event Kafka cannot take: the deals relay stops before it, the others go on
                stream, version = await store_too_large_an_event(storage, deal)
                relay_ready = procs.readiness_urls["deals relay"]

                async def deals_relay_stuck() -> bool:
                    status, text = await readiness(http, relay_ready)
                    return status == 503 and "stuck" in text and f"stream {stream} version {version}" in text

                await wait_until(deals_relay_stuck, timeout=60, interval=0.5)
                metrics = (await http.get(relay_ready.replace("/readyz", "/metrics"))).text
                assert 'pipelines_relay_stuck{service="deals"} 1.0' in metrics
                for other in ("leads", "production"):
                    assert (await readiness(http, procs.readiness_urls[f"{other} relay"]))[0] == 200
                assert await checker.unpublished("deals") > 0
                await asyncio.sleep(3)  # the load goes on meanwhile

                # 3. the operator raises the limits together and restarts the relay
                topic = settings.events_topic("deals")
                async with admin_client(settings.kafka_bootstrap_servers) as admin:
                    await admin.alter_configs(
                        [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": "3000000"})]
                    )
                procs.env = procs.env | {"PIPELINES_KAFKA_MAX_REQUEST_SIZE": "3000000"}
                procs.kill("deals", "relay")
                procs.start("deals", "relay")
                await procs.wait_started()

                async def deals_relay_ready() -> bool:
                    return (await readiness(http, relay_ready))[0] == 200

                await wait_until(deals_relay_ready, timeout=60, interval=0.5)
                await asyncio.sleep(2)
            assert not procs.dead(), f"no process dies: {procs.dead()}"
            assert load.given_up == 0, load.summary()
            report = await checker.check(load.acked)
        print(f"\n[poison event] {time.monotonic() - began:.1f} s; load {load.summary()}; {report}")
        duplicates = {k: v for k, v in report.items() if k.endswith(".duplicates")}
        assert all(n == 0 for n in duplicates.values()), report
    finally:
        procs.stop_all()
        await storage.close()
        await drop_everything(settings)


async def _true(value: bool) -> bool:
    return value
