"""A service's own process kinds beside api, relay and projector (the agenda's notifier, decision 0020): ``main``
accepts only the kinds the service names, and such a process answers /healthz, /readyz (its service's checks) and
/metrics on the ops port while the kind runs, and stops with it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from shared.edge.service import main, run_kind
from shared.ops.settings import Settings
from shared.ops.stack import free_port


async def never_built(settings: Settings) -> Any:
    raise AssertionError("a refused mode builds nothing")


@pytest.mark.parametrize(("kinds", "mode"), [(None, "notifier"), ({"notifier": None}, "mailer")])
def test_a_mode_the_service_does_not_name_is_refused_before_anything_starts(
    kinds: dict[str, Any] | None, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        main("agenda", never_built, [mode], kinds=kinds)
    assert refused.value.code == 2
    assert f"invalid choice: '{mode}'" in capsys.readouterr().err


async def test_the_kind_runs_beside_the_ops_port_until_it_returns() -> None:
    port = free_port()

    async def readiness() -> dict[str, str]:
        return {"postgresql": "ok", "kafka": "ok"}

    core = SimpleNamespace(
        name="agenda",
        settings=Settings(ops_port=port, api_host="127.0.0.1"),
        storage=SimpleNamespace(readiness=readiness),
    )
    answers: dict[str, Any] = {}

    async def kind(settings: Settings, stop: asyncio.Event) -> None:
        assert settings is core.settings
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(100):  # the ops server starts beside the kind
                try:
                    answers["healthz"] = (await http.get("/healthz")).status_code
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            ready = await http.get("/readyz")
            answers["readyz"] = ready.status_code, ready.json()
            answers["metrics"] = (await http.get("/metrics")).status_code
        assert not stop.is_set()

    stop = asyncio.Event()
    await asyncio.wait_for(run_kind(core, "notifier", kind, stop), timeout=20)
    assert answers["healthz"] == 200 and answers["metrics"] == 200
    status, body = answers["readyz"]
    assert status == 200 and body["checks"] == {"postgresql": "ok", "kafka": "ok"}, body
    assert stop.is_set(), "the kind's end stops the process's other parts"
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):  # and the ops port is closed
            await http.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
