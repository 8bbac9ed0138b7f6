"""Scaling on the local stack: three projector processes in one consumer group while traffic flows, one killed,
the others take its partitions, and the read model ends complete and equal to a rebuild; two relay processes,
the leader killed, the standby takes over and nothing is lost or out of order."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import pytest

from services.deals import domain
from services.deals import main as deals_main
from shared.ops.stack import Endpoints
from shared.store.commands import Context
from testkit.kafka import by_stream, read_topic
from testkit.services import applied_everything, drop_everything, isolated_settings, process_env, spawn, stop_processes
from testkit.waiting import wait_until
from tools import ops

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]


async def test_projectors_and_relays_scale_out_and_survive_a_kill(endpoints: Endpoints, tmp_path: Path) -> None:
    settings = isolated_settings(endpoints)
    core = await deals_main.build(settings)
    await core.ensure_topics()
    env = process_env(settings)
    relays = [spawn(("-m", "services.deals", "relay"), env, tmp_path / f"relay-{i}.log") for i in range(2)]
    projectors = [spawn(("-m", "services.deals", "projector"), env, tmp_path / f"projector-{i}.log") for i in range(3)]
    processes = relays + projectors
    ctx = Context(actor="load")
    deals = [uuid.uuid4() for _ in range(60)]
    try:

        async def traffic(start: int, stop: int) -> None:
            for i in range(start, stop):
                d = deals[i % len(deals)]
                if i < len(deals):
                    await core.deals.handle(
                        d, domain.OpenDeal(title=f"Đơn {i}", customer="Khách", owner_id="u-lan"), ctx
                    )
                else:
                    await core.deals.handle(
                        d, domain.LogActivity(activity_id=uuid.uuid4(), activity_type="call", channel="phone"), ctx
                    )

        def logs(kind: str, n: int) -> list[str]:
            return [(tmp_path / f"{kind}-{i}.log").read_text() for i in range(n)]

        async def started() -> bool:  # one relay leads, every projector runs
            return any("relay.leading" in t for t in logs("relay", 2)) and all(
                "service.started" in t for t in logs("projector", 3)
            )

        await wait_until(started, timeout=120, interval=0.5)
        await traffic(0, 200)
        await asyncio.sleep(3)  # the group has formed and is consuming
        projectors[0].send_signal(signal.SIGKILL)  # one projector dies mid-traffic
        leader_killed = False
        for chunk in range(200, 600, 100):
            await traffic(chunk, chunk + 100)
            if not leader_killed:
                # the leading relay dies; the standby takes the lock when its session ends
                (leader,) = [
                    r for i, r in enumerate(relays) if "relay.leading" in (tmp_path / f"relay-{i}.log").read_text()
                ]
                leader.send_signal(signal.SIGKILL)
                standby = next(r for r in relays if r is not leader)
                leader_killed = True

        async def caught_up() -> bool:
            return await applied_everything(core, "board") and await applied_everything(core, "analytics")

        await wait_until(caught_up, timeout=180, interval=1)
        assert standby.poll() is None and all(p.poll() is None for p in projectors[1:]), "the survivors run on"
        assert any(
            "relay.leading" in (tmp_path / f"relay-{i}.log").read_text() and r is standby for i, r in enumerate(relays)
        ), "the standby took over"

        # the topic holds every event in each stream's order (a re-send after the kill is allowed)
        messages = await read_topic(settings.kafka_bootstrap_servers, settings.events_topic("deals"))
        stored = {}
        async with core.storage.pool.acquire() as conn:
            for r in await conn.fetch(
                f"SELECT stream_id, version FROM {core.storage.store.schema}.events "
                "WHERE stream_id LIKE 'deal-%' ORDER BY stream_id, version"
            ):
                stored.setdefault(r["stream_id"], []).append(r["version"])
        published = by_stream(messages)
        for stream, versions in stored.items():
            got = published[stream]
            assert sorted(set(got)) == versions
            firsts = []
            for v in got:
                if not firsts or v > firsts[-1]:
                    firsts.append(v)
            assert firsts == versions

        async def board() -> list:
            async with core.storage.read_models.connection("board") as conn:
                rows = await conn.fetch("SELECT deal_id, activities, version FROM board ORDER BY deal_id")
            return [tuple(r) for r in rows]

        live = await board()
        assert len(live) == len(deals)
        assert sum(r[1] for r in live) == 600 - len(deals)
        await ops.rebuild(settings, "deals", "board", lambda *_: None, poll_s=0.5, wait_s=180)
        assert await board() == live, "the read model equals a rebuild"
    finally:
        stop_processes(processes)
        await core.close()
        await drop_everything(settings)
