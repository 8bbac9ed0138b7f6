"""The demo's simulation books each deal's next steps in the agenda (issue 25): the first when the deal is worked,
the step done and the next booked as it moves, the last completed when it is won, cancelled when it is lost; a
stalled deal keeps an open step or, now and then, none (the board's "no next step"). Without an agenda, none."""

from __future__ import annotations

import json
import uuid
from collections import Counter

import httpx

from testkit.apps import OPERATOR_SETTINGS as SETTINGS
from tools.simulate import NEXT_STEPS, Endpoints, Simulation

URLS = Endpoints("http://leads", "http://deals", "http://production", "http://directory", "http://agenda")


def served(agenda: list[tuple[str, str, dict[str, object], httpx.Headers]]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        if request.url.host == "agenda":
            agenda.append((request.method, request.url.path, body, request.headers))
            if request.url.path == "/activities":
                return httpx.Response(201, json={"id": str(uuid.uuid4()), "version": 1})
        return httpx.Response(200, json={})

    return httpx.MockTransport(answer)


async def built(*_: object, **__: object) -> None:
    return None


async def test_every_worked_deal_gets_its_next_steps_and_closes_them_as_it_ends() -> None:
    ends: Counter[str] = Counter()
    for seed, quality in [(s, q) for s in range(30) for q in (0.4, 0.55, 0.9)]:
        calls: list[tuple[str, str, dict[str, object], httpx.Headers]] = []
        sim = Simulation(URLS, SETTINGS, seed=seed, transport=served(calls))
        sim.build = built  # production's part is not what is tried here
        deal = str(uuid.uuid4())
        before = (sim.stats.won, sim.stats.lost)
        await sim.sell(deal, "Tủ mát", 14_500_000, quality, "u-lan")
        await sim.close()
        booked = [(b, h) for m, p, b, h in calls if (m, p) == ("POST", "/activities")]
        closed = [(p.rsplit("/", 1)[1], b) for m, p, b, _ in calls if p != "/activities"]
        assert booked, "the deal got its first next step"
        for body, headers in booked:
            assert body["subject_type"] == "deal" and body["subject_id"] == deal and body["owner_id"] == "u-lan"
            assert body["title"] == NEXT_STEPS[str(body["kind"])] and headers["X-Subject-After"] == f"deal-{deal}@1"
        assert len(closed) in (len(booked) - 1, len(booked)), "each step but the open one is closed once"
        assert all(what == "complete" and b.get("outcome") for what, b in closed[:-1])
        won, lost = sim.stats.won > before[0], sim.stats.lost > before[1]
        if won:
            assert closed[-1] == ("complete", {"outcome": "hợp đồng đã ký"}) and len(closed) == len(booked)
            ends["won"] += 1
        elif lost:
            assert closed[-1][0] == "cancel" and len(closed) == len(booked)
            ends["lost"] += 1
        else:
            ends["open" if len(closed) < len(booked) else "none booked"] += 1
    assert set(ends) == {"won", "lost", "open", "none booked"}, ends


async def test_without_an_agenda_no_activity_is_booked() -> None:
    calls: list[tuple[str, str, dict[str, object], httpx.Headers]] = []
    urls = Endpoints("http://leads", "http://deals", "http://production", "http://directory")
    sim = Simulation(urls, SETTINGS, seed=3, transport=served(calls))
    sim.build = built
    await sim.sell(str(uuid.uuid4()), "Tủ mát", 14_500_000, 0.9, "u-lan")
    await sim.close()
    assert calls == [] and sim.stats.errors == []
