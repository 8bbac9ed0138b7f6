"""The servers fail under traffic, on the test's own single-node stack (never the shared one), with the three services
running (each as api, relay and projector processes, started once for the module):

- PostgreSQL stopped twice and started again: first cleanly (``pg_ctl stop -m fast``: every session is told to go),
  then abruptly (``-m immediate``: a crash, recovered from the WAL at the next start). A command of each service is
  in flight when it stops (its append waits for a lock the test holds on the events table), and answers 503 with
  Retry-After, as do the commands sent while it is down; every process's ``/readyz`` says not ready; every process
  reconnects by itself (none dies, none is restarted) and says ready again; nothing acknowledged is lost.
- The Kafka broker paused (SIGSTOP) for 30 seconds, then resumed: the APIs go on acknowledging (they need only
  PostgreSQL); a query that reads its own write answers it, or answers 503 with Retry-After, never without it;
  every process's ``/readyz`` says not ready while the broker is paused, and ready again after; the relays and
  projectors resume by themselves.

Then the checker: the store holds every acknowledged event, the topics every stored one in order and none twice,
the reactions caught up, and every read model equals its recomputation from the stores."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from shared.ops.settings import PIPELINES  # the lead flow's services: the directory is not in it
from shared.ops.stack import Endpoints, LocalStack
from testkit.checker import Checker
from testkit.faults import (
    ADMIN,
    Load,
    Processes,
    Readiness,
    ReadYourWrites,
    WritesHeld,
    kafka_pid,
    own_stack,
    pg_ctl,
    traffic,
    watching,
)
from testkit.services import drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]
RATE = 30.0  # commands a second, across the three APIs
WRITES = {  # a command each API takes (what it answers while PostgreSQL is down)
    "leads": ("/leads", {"source": "manual", "contact": {"phone": "0905123456"}}),
    "deals": ("/deals", {"title": "Đơn", "customer": "Khách", "owner_id": "u-lan"}),
    "production": (
        "/orders",
        {"customer": "Quán", "lines": [{"product": "Tủ mát", "quantity": "1"}], "due_date": "2027-01-10"},
    ),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Endpoints]]:
    with own_stack(tmp_path_factory.mktemp("faults-stack")) as s:
        yield s, s.up()


@pytest.fixture(scope="module")
async def procs(
    stack: tuple[LocalStack, Endpoints], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Processes]:
    """The three services' processes on the module's stack, started once for both scenarios."""
    settings = isolated_settings(stack[1])
    running = Processes(settings, tuple(PIPELINES), tmp_path_factory.mktemp("faults-logs"))
    try:
        running.start_all()
        await running.wait_started(timeout=180)
        yield running
    finally:
        running.stop_all()
        await drop_everything(settings)


def statuses(answers: dict[str, Counter[str]]) -> dict[str, set[str]]:
    """Per process, the statuses of its /readyz answers (the failed checks left out)."""
    return {what: {o.split(" ")[0] if o[0].isdigit() else o for o in seen} for what, seen in answers.items()}


async def test_postgresql_stopped_cleanly_then_abruptly_and_restarted(
    stack: tuple[LocalStack, Endpoints], procs: Processes
) -> None:
    began = time.monotonic()
    local, _ = stack
    down_answers: list[tuple[str, str, int, str | None]] = []
    outages: list[tuple[str, float, float]] = []  # mode, when it stopped, when its restart began
    ready = Readiness(procs.readiness_urls)
    load = Load(procs.urls, rate=RATE)
    acked: list[int] = []
    events = {s: [f"{procs.settings.schema_name(s)}.events"] for s in PIPELINES}
    in_flight: list[tuple[str, str, int | str, str | None]] = []

    async def write(mode: str, service: str) -> None:
        path, body = WRITES[service]
        try:
            r = await http.post(
                procs.urls[service] + path, json=body, headers=ADMIN | {"Idempotency-Key": str(uuid.uuid4())}
            )
            in_flight.append((mode, service, r.status_code, r.headers.get("retry-after")))
            if r.status_code < 300:  # it got through after all (the server came back in time): it must be kept
                a = r.json()
                load.acked.setdefault(service, set()).add((a["stream_id"], a["version"]))
        except httpx.HTTPError as exc:
            in_flight.append((mode, service, type(exc).__name__, None))

    async with traffic(load), watching(ready), httpx.AsyncClient(timeout=30) as http:
        await ready.all_say("200", since=time.monotonic(), timeout=30)
        for mode, down_s in (("fast", 8.0), ("immediate", 5.0)):
            await asyncio.sleep(3)
            # a command of each service in flight when it stops: its append waits for a lock the test holds
            async with WritesHeld(procs.settings, events) as held:
                writes = [asyncio.create_task(write(mode, s)) for s in PIPELINES]

                async def appends_wait() -> bool:
                    return all([await held.waiting(s) for s in PIPELINES])

                await wait_until(appends_wait, timeout=30, interval=0.1)
                await asyncio.sleep(1.0)  # the load's commands wait there too: give the test's time to get there
                stopped = time.monotonic()
                await asyncio.to_thread(pg_ctl, local, "stop", "-m", mode, "-w")
            await asyncio.gather(*writes)
            try:
                while time.monotonic() < stopped + down_s:
                    for service, url in procs.urls.items():
                        path, body = WRITES[service]
                        r = await http.post(url + path, json=body, headers=ADMIN)
                        down_answers.append((mode, service, r.status_code, r.headers.get("retry-after")))
                    await asyncio.sleep(1.0)
            finally:
                restarting = time.monotonic()  # down until here: once `pg-up` runs, a probe may find it back
                await asyncio.to_thread(local._run, "pg-up")
            restarted = time.monotonic()
            outages.append((mode, stopped, restarting))
            acked.append(load.total_acked())
            await ready.all_say("200", since=restarted, timeout=60)  # every process reconnected by itself
        await asyncio.sleep(3)  # traffic goes on after the restarts
    while_down = {mode: ready.between(stopped + 1.0, restarting) for mode, stopped, restarting in outages}
    t0 = outages[0][1]
    print(
        f"\n[postgresql stopped] {time.monotonic() - began:.1f} s; outages (s after the first) "
        f"{[(m, round(a - t0, 1), round(b - t0, 1)) for m, a, b in outages]}; /readyz while down {while_down}; "
        f"writes while down {Counter(down_answers)}, in flight when it stopped {in_flight}; {load.summary()}; failed tries (s after the first outage) "
        f"{[(round(t - t0, 1), s, what) for t, s, what in load.failed if what != '503']}"
    )
    assert {(m, c) for m, _, c, _ in down_answers} == {("fast", 503), ("immediate", 503)}, down_answers
    assert all(ra for *_, ra in down_answers), f"every 503 says when to retry: {down_answers}"
    assert {s for _, s, _, _ in down_answers} == set(PIPELINES)
    for mode, seen in while_down.items():
        assert all(seen.values()), f"{mode}: every process answered /readyz while PostgreSQL was down: {seen}"
        assert all(s == {"503"} for s in statuses(seen).values()), f"{mode}: not ready while down: {seen}"
    assert not procs.dead(), f"no process dies: {procs.dead()}"
    assert all(n == 1 for n in procs.started.values()), "none was restarted"
    assert load.given_up == 0 and load.total_acked() > acked[-1] > acked[0] > 30, load.summary()
    async with Checker(procs.settings, PIPELINES) as checker:
        report = await checker.check(load.acked)  # events after the restarts: the relays and projectors reconnected
    print(f"[postgresql stopped] {time.monotonic() - began:.1f} s with the checker: {report}")
    # a command in flight when the server goes answers as one sent while it is down (503, retry later), unless it
    # gets through once the server is back (2xx, and kept: the checker has it among the acknowledged); never a 500
    wrong = [(m, s, c, ra) for m, s, c, ra in in_flight if not ((c == 503 and ra) or (isinstance(c, int) and c < 300))]
    assert not wrong, f"commands in flight when PostgreSQL stopped: {in_flight}"
    assert not [k for k in load.statuses if k.endswith(" 500")], load.summary()


async def test_broker_paused_for_thirty_seconds(stack: tuple[LocalStack, Endpoints], procs: Processes) -> None:
    began = time.monotonic()
    local, _ = stack
    ready = Readiness(procs.readiness_urls)
    reads = ReadYourWrites(procs.urls)
    load = Load(procs.urls, rate=RATE)
    broker = kafka_pid(local, 1)
    async with traffic(load), watching(ready, reads):
        await ready.all_say("200", since=time.monotonic(), timeout=30)
        acked_at_pause = load.total_acked()
        paused = time.monotonic()
        os.kill(broker, signal.SIGSTOP)
        try:
            await asyncio.sleep(30)
        finally:
            os.kill(broker, signal.SIGCONT)
        resumed = time.monotonic()
        acked_while_paused = load.total_acked()
        await ready.all_say("200", since=resumed, timeout=60)
        ready_again = time.monotonic()

        async def fresh_again() -> bool:
            return all(reads.of(s, began=resumed)["fresh"] for s in procs.urls)

        try:
            await wait_until(fresh_again, timeout=60, interval=0.5)
        except TimeoutError:
            raise AssertionError(f"no process reads its writes after the resume: {reads.outcomes()}") from None
        fresh = time.monotonic()
    while_paused = ready.between(paused + 4.0, resumed)  # the Kafka check gives up after 3 s
    print(
        f"\n[broker paused] {time.monotonic() - began:.1f} s; ready again {ready_again - resumed:.1f} s and reading "
        f"its writes {fresh - resumed:.1f} s after the resume; /readyz while paused {while_paused}, answered ready in "
        f"{ready.seconds('200')}, not ready in {ready.seconds('503')}; "
        f"read-your-writes {dict(reads.outcomes())}; {load.summary()}"
    )
    assert not [a for a in reads.answers if a.outcome not in ("fresh", "behind", "timeout")], reads.answers
    assert all(reads.of(s, paused + 1.0, resumed)["behind"] for s in procs.urls), "a read of its write waits: 503"
    assert all(while_paused.values()), f"every process answered /readyz while the broker was paused: {while_paused}"
    not_ready = {w: s for w, s in statuses(while_paused).items() if s != {"503"}}
    assert not not_ready, f"/readyz says ready while the broker is paused: {not_ready}"
    assert not procs.dead(), f"no process dies: {procs.dead()}"
    assert all(n == 1 for n in procs.started.values()), "none was restarted"
    # the APIs need only PostgreSQL: they acknowledge on while the broker is paused
    assert acked_while_paused > acked_at_pause + RATE * 20, load.summary()
    assert load.given_up == 0 and load.total_acked() > acked_while_paused, load.summary()
    async with Checker(procs.settings, PIPELINES) as checker:
        report = await checker.check(load.acked)  # waits for the relays to publish what was held back
    relay_logs = "".join(procs.log(s, "relay").read_text() for s in PIPELINES)
    print(
        f"[broker paused] {time.monotonic() - began:.1f} s with the checker: {report}, relay errors "
        f"{relay_logs.count('relay.error')}"
    )
