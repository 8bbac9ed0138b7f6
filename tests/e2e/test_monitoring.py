"""Monitoring as code against the real thing (decision 0025): Debian's Prometheus scrapes every process (api, relay,
projector) of the lead flow's three services on the local stack and evaluates the shipped rules
(deploy/monitoring/rules.yaml, their waits shortened); every target is up, every rule loaded, every panel of the
Grafana dashboard returns a series, and the consumer-lag alert fires while the deals projector is stopped under load
and clears once it is back."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.ops.stack import Endpoints
from testkit.faults import ADMIN, Load, Processes, traffic
from testkit.prometheus import DASHBOARD, RULES, Prometheus, prometheus, quick_rules
from testkit.services import drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]

SERVICE = "deals"  # the one whose projector is stopped, whose errors and dead letters the panels show
SERVICES = ("leads", "deals", "production")  # the lead flow's services: each one's api, relay and projector scraped
LAG_ALERT = "PipelinesConsumerLagGrowing"


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


async def targets_up(prom: Prometheus) -> bool:
    active = (await prom.get("/api/v1/targets"))["activeTargets"]
    return len(active) == 3 * len(SERVICES) and all(t["health"] == "up" for t in active)


async def panels_without_a_series(prom: Prometheus) -> list[str]:
    return [query for query in dashboard_queries() if not await prom.query(query)]


async def lag_alert(prom: Prometheus, *, firing: bool) -> bool:
    """Is the consumer-lag alert firing for the service (or quiet, when ``firing`` is false)?"""
    services = {labels.get("service") for labels in await prom.firing(LAG_ALERT)}
    return (SERVICE in services) == firing


async def fires(prom: Prometheus, alertname: str) -> bool:
    return any(labels.get("service") == SERVICE for labels in await prom.firing(alertname))


async def bad_request_and_dead_letter(procs: Processes) -> None:
    """What the errors and dead-letter panels show: a 4xx answer, and a message no projector can read."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(f"{procs.urls[SERVICE]}/deals", json={"title": ""}, headers=ADMIN)
        assert answer.status_code == 422
    producer = AIOKafkaProducer(bootstrap_servers=procs.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(procs.settings.events_topic(SERVICE), b"not a CloudEvent", key=b"broken")
    finally:
        await producer.stop()


async def test_prometheus_scrapes_every_process_and_the_lag_alert_follows_a_stopped_projector(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    settings = isolated_settings(endpoints)
    procs = Processes(settings, SERVICES, tmp_path)
    jobs = {"pipelines-api": [f"127.0.0.1:{port}" for port in procs.ports.values()]}
    for (_, mode), port in procs.ops_ports.items():
        jobs.setdefault(f"pipelines-{mode}", []).append(f"127.0.0.1:{port}")
    rules = quick_rules(RULES, interval="1s", hold="3s", window="10s")
    try:
        procs.start_all()
        await procs.wait_started()
        with prometheus(tmp_path / "prometheus", jobs, rules) as prom:
            await wait_until(lambda: targets_up(prom), timeout=30, interval=0.5)
            loaded = {g["name"]: [r["name"] for r in g["rules"]] for g in (await prom.get("/api/v1/rules"))["groups"]}
            shipped = {g["name"]: [r.get("alert") or r["record"] for r in g["rules"]] for g in rules["groups"]}
            assert loaded == shipped
            load = Load({SERVICE: procs.urls[SERVICE]}, rate=15.0)
            async with traffic(load):
                await bad_request_and_dead_letter(procs)
                missing = dashboard_queries()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(40):
                        while missing := await panels_without_a_series(prom):
                            await asyncio.sleep(1)
                assert not missing, "every panel's query returns a series"
                await wait_until(lambda: fires(prom, "PipelinesDeadLetters"), timeout=20, interval=0.5)
                # quiet while the deals projector keeps up (the others' reactions to the load are not its)
                assert await lag_alert(prom, firing=False), "quiet while the projector keeps up"
                procs.kill(SERVICE, "projector")
                await wait_until(lambda: lag_alert(prom, firing=True), timeout=45, interval=0.5)
                procs.start(SERVICE, "projector")
                await wait_until(lambda: lag_alert(prom, firing=False), timeout=45, interval=0.5)
            assert load.total_acked() > 100, load.summary()
    finally:
        procs.stop_all()
        await drop_everything(settings)
