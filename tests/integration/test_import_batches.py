"""The deals' ``POST /imports/batches`` on PostgreSQL (issue 26, decision 0021): a batch of rows, each a deal opened
and moved back-dated, lands one append per row with per-event occurred times; the same batch sent twice at once
and then again creates each deal exactly once (the store's version check on a new stream decides the race), and
the events stored do not change."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.deals import main as deals_main
from shared.core.ids import import_id
from shared.ops.stack import Endpoints
from testkit.services import bearer, client_for, drop_schemas, isolated_settings

pytestmark = pytest.mark.pg

IMPORTER = bearer("u-import", "importer", team=None)
ROWS = 60


def batch() -> dict[str, Any]:
    rows = []
    for n in range(ROWS):
        opening = {"title": f"Đơn {n}", "customer": f"Khách {n}", "owner_id": "u-lan", "team_id": "north"}
        rows.append(
            {
                "row": n + 2,
                "kind": "deal",
                "key": str(1000 + n),
                "facts": [
                    {"command": "open_deal", "occurred_at": "2025-03-01T09:00:00+07:00", "body": opening},
                    {
                        "command": "move_stage",
                        "occurred_at": "2025-03-09T10:00:00+07:00",
                        "body": {"stage_id": "contacted"},
                    },
                ],
            }
        )
    rows[7]["facts"][1]["body"] = {"stage_id": "nowhere"}  # refused: the others land
    return {"source": "pipedrive", "rows": rows}


@pytest.fixture
async def http(endpoints: Endpoints) -> AsyncIterator[tuple[httpx.AsyncClient, deals_main.DealsService]]:
    settings = isolated_settings(endpoints)
    service = await deals_main.build(settings)
    client = client_for(service.app())
    try:
        yield client, service
    finally:
        await client.aclose()
        await service.close()
        await drop_schemas(settings)


async def test_a_batch_lands_once_however_often_it_is_sent(
    http: tuple[httpx.AsyncClient, deals_main.DealsService],
) -> None:
    client, service = http
    first, second = await asyncio.gather(
        *(client.post("/imports/batches", json=batch(), headers=IMPORTER, timeout=60) for _ in range(2))
    )
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    pairs = list(zip(first.json()["results"], second.json()["results"], strict=True))
    refused = [a for a, _ in pairs if a["status"] == "refused"]
    assert [r["row"] for r in refused] == [9] and refused[0]["errors"][0]["field"] == "facts[1]"
    # each other row created by exactly one of the two sends
    assert Counter(tuple(sorted((a["status"], b["status"]))) for a, b in pairs if a["row"] != 9) == {
        ("created", "exists"): ROWS - 1
    }
    store = service.storage.store
    events = await store.read_streams("deal-")
    per_deal = Counter(e.stream_id for e in events)
    assert len(per_deal) == ROWS - 1 and set(per_deal.values()) == {2}
    deal = [e for e in events if e.stream_id == f"deal-{import_id('pipedrive', 'deal', '1000')}"]
    assert [e.occurred_at for e in deal] == [datetime(2025, 3, 1, 2, tzinfo=UTC), datetime(2025, 3, 9, 3, tzinfo=UTC)]
    assert deal[0].recorded_at == deal[1].recorded_at  # one append

    again = await client.post("/imports/batches", json=batch(), headers=IMPORTER, timeout=60)
    assert Counter(r["status"] for r in again.json()["results"]) == {"exists": ROWS - 1, "refused": 1}
    assert [(e.stream_id, e.version, e.event_id) for e in await store.read_streams("deal-")] == [
        (e.stream_id, e.version, e.event_id) for e in events
    ]
