"""What operators do, on real servers: a deal's timeline and past state (asked of the deals API, served on a port
here), read-model positions and lag, a rebuild with progress, dead letters listed and sent back, the live event
stream; and the CLI over them."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from services.deals import main as deals_main
from shared.edge.service import serve
from shared.ops.stack import Endpoints, free_port
from testkit.services import (
    TEST_JWKS,
    TEST_KEYS,
    bearer,
    client_for,
    drop_everything,
    isolated_settings,
    operator_settings,
    start_parts,
)
from testkit.waiting import wait_until
from tools import cli, history, ops

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
SALES = bearer("u-lan", "sales")


async def test_operations_on_a_running_service(endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = isolated_settings(endpoints)
    core = await deals_main.build(settings)
    await core.ensure_topics()
    stop = asyncio.Event()
    tasks = await start_parts(core, stop)
    app = core.app()
    http = client_for(app)
    port = free_port()  # the deals API on a port: `history` asks it, as the CLI does
    tasks.append(asyncio.create_task(serve(app, "127.0.0.1", port, stop)))
    settings = operator_settings(settings.model_copy(update={"deals_port": port}))
    try:
        deal = (
            await http.post(
                "/deals",
                headers=SALES,
                json={"title": "Tủ đông", "customer": "Sen Vàng", "owner_id": "u-lan", "team_id": "north"},
            )
        ).json()["id"]
        await asyncio.sleep(0.05)
        before_move = datetime.now(UTC)
        await asyncio.sleep(0.05)
        await http.post(f"/deals/{deal}/move-stage", headers=SALES, json={"stage_id": "contacted"})
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        await producer.start()
        try:  # a message no projection can read
            await producer.send_and_wait(settings.events_topic("deals"), b"not an event", key=b"junk")
        finally:
            await producer.stop()

        async def serving() -> bool:
            async with httpx.AsyncClient() as client:
                try:
                    return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

        await wait_until(serving, timeout=30, interval=0.1)
        h = await history.history(settings, "deal", uuid.UUID(deal), None)
        assert [e.event_type.rsplit(".", 1)[1] for e in h.events] == ["DealOpened", "StageChanged"]
        assert [e.actor for e in h.events] == ["u-lan", "u-lan"]
        assert h.state is not None and h.state["stage"]["stage_id"] == "contacted"
        then = await history.history(settings, "deal", uuid.UUID(deal), before_move)
        assert [e.version for e in then.events] == [1]
        assert then.state is not None and then.state["stage"]["stage_id"] == "target_identified"
        assert (await history.history(settings, "deal", uuid.UUID(deal), before_move - timedelta(days=1))).events == []
        assert (await history.history(settings, "deal", uuid.uuid4(), None)).events == []

        async def settled() -> bool:
            rows = await ops.projections(settings)
            board = [r for r in rows if r["service"] == "deals" and r["projection"] == "board"]
            return board == [{"service": "deals", "projection": "board", "generation": 1, "state": "active", "lag": 0}]

        await wait_until(settled, timeout=60, interval=0.5)

        letters = await ops.dead_letters(settings, "deals")
        assert {d["key"] for d in letters} == {"junk"}
        assert all(d["reason"].startswith("not a CloudEvent") for d in letters)
        sent_back = await ops.redrive(settings, "deals", [letters[0]["offset"]])
        assert sent_back == 1

        async def redriven() -> bool:  # it is back, and dead-lettered again (nothing fixed it)
            return len(await ops.dead_letters(settings, "deals")) == len(letters) * 2

        await wait_until(redriven, timeout=60, interval=0.5)

        progress: list[tuple[int, int, float]] = []
        generation = await ops.rebuild(
            settings, "deals", "board", lambda *p: progress.append(p), poll_s=0.2, wait_s=120
        )
        assert generation == 2
        assert progress

        seen = []

        async def take() -> None:
            async for e in ops.tail(settings, "deals", from_beginning=True):
                seen.append(e.type)
                if len(seen) >= 3:
                    return

        await asyncio.wait_for(take(), 60)
        assert "pipelines.deals.DealOpened" in seen

        for key in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
            monkeypatch.setenv(key, getattr(settings, key.lower()))
        monkeypatch.setenv("PIPELINES_SCHEMA_PREFIX", settings.schema_prefix)
        monkeypatch.setenv("PIPELINES_TOPIC_PREFIX", settings.topic_prefix)
        monkeypatch.setenv("PIPELINES_PII_SCHEMA", settings.pii_schema)
        monkeypatch.setenv("PIPELINES_PII_MASTER_KEY", settings.pii_master_key.get_secret_value())
        monkeypatch.setenv("PIPELINES_KEYRING_DIR", str(settings.keyring_dir))
        monkeypatch.setenv("PIPELINES_JWT_SIGNING_KEYS", json.dumps(TEST_KEYS.seeds()))  # the operator's keys
        monkeypatch.setenv("PIPELINES_JWT_ACTIVE_KID", "test")
        monkeypatch.setenv("PIPELINES_JWT_PUBLIC_KEYS", TEST_JWKS)
        monkeypatch.setenv("PIPELINES_DEALS_PORT", str(port))
        monkeypatch.setenv("PIPELINES_LEADS_PORT", str(free_port()))  # where no leads service runs
        for service in ("DEALS", "LEADS"):
            monkeypatch.delenv(f"PIPELINES_{service}_API_URL", raising=False)
        runner = CliRunner()
        result = await asyncio.to_thread(runner.invoke, cli.app, ["history", "deal", deal])
        assert result.exit_code == 0, result.output
        assert "DealOpened" in result.output and "StageChanged" in result.output and '"contacted"' in result.output
        result = await asyncio.to_thread(runner.invoke, cli.app, ["history", "lead", str(uuid.uuid4())])
        assert result.exit_code == 2 and "does not answer" in result.output  # no leads service answers there
        result = await asyncio.to_thread(runner.invoke, cli.app, ["history", "order", "not-a-uuid"])
        assert result.exit_code != 0
        result = await asyncio.to_thread(runner.invoke, cli.app, ["dlq", "list", "deals"])
        assert result.exit_code == 0 and "junk" in result.output
        result = await asyncio.to_thread(runner.invoke, cli.app, ["dlq", "list", "deals", "--json"])
        letters = json.loads(result.output)
        junk = next(d for d in letters if "junk" in json.dumps(d))
        result = await asyncio.to_thread(
            runner.invoke, cli.app, ["dlq", "show", "deals", "--offset", str(junk["offset"]), "--json"]
        )
        assert result.exit_code == 0 and json.loads(result.output)["reason"] == junk["reason"]
        result = await asyncio.to_thread(runner.invoke, cli.app, ["dlq", "show", "deals", "--offset", "999999"])
        assert result.exit_code == 1 and result.output == "error: no dead letter at offset 999999 of deals\n"
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await http.aclose()
        await core.close()
        await drop_everything(settings)
