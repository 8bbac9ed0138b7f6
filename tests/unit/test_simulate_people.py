"""The demo's simulation registers its teams and people in the directory before anything names them, sends their
answers with the first commands that do (``X-Directory-After``), and finds them there on a second run (409)."""

from __future__ import annotations

import json

import httpx

from testkit.apps import OPERATOR_SETTINGS as SETTINGS
from tools.simulate import PEOPLE, TEAMS, Endpoints, Simulation


async def test_people_are_registered_once_and_named_with_their_answers() -> None:
    seen: list[tuple[str, dict[str, object]]] = []
    registered: set[str] = set()

    def directory(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        key = str(body.get("user_id") or body.get("team_id"))
        seen.append((request.url.path, body))
        if key in registered:
            return httpx.Response(409, json={"rule": "exists"})
        registered.add(key)
        kind = "user" if request.url.path == "/users" else "team"
        return httpx.Response(201, json={"stream_id": f"directory-{kind}-{key}", "version": 1})

    urls = Endpoints("http://leads", "http://deals", "http://production", "http://directory")
    for run in range(2):
        sim = Simulation(urls, SETTINGS, transport=httpx.MockTransport(directory))
        await sim.people()
        assert sim.stats.errors == []
        if run == 0:
            assert sim.waits("directory-user-u-lan", "directory-team-north") == {
                "X-Directory-After": "directory-user-u-lan@1, directory-team-north@1"
            }
        else:  # already there: nothing to wait for
            assert sim.waits("directory-user-u-lan") == {}
        await sim.close()
    first = seen[: len(TEAMS) + len(PEOPLE)]
    assert [p for p, _ in first] == ["/teams"] * len(TEAMS) + ["/users"] * len(PEOPLE)
    assert {(b["user_id"], b["team_id"]) for p, b in first if p == "/users"} == set(PEOPLE)


async def test_without_a_directory_nothing_is_registered() -> None:
    def nowhere(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected: {request.url}")

    sim = Simulation(
        Endpoints("http://leads", "http://deals", "http://production"), SETTINGS, transport=httpx.MockTransport(nowhere)
    )
    await sim.people()
    assert sim.waits("directory-user-u-lan") == {} and sim.stats.errors == []
    await sim.close()
