"""The deals' figures on real PostgreSQL and Kafka, on a few deals whose every figure is known: what moved the
forecast inside a window (opened and closed in it, reassigned in it), and what a closed deal weighs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.deals import main as deals_main
from testkit.services import Serve, applied_everything, bearer
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

LAN = bearer("u-lan", "sales")
MANAGER = bearer("u-mai", "sales_manager")
AUDITOR = bearer("u-audit", "auditor", team=None)
LINE = {"product": "Kho lạnh", "quantity": "2", "unit_price": {"amount": "25000000", "currency": "VND"}}  # 50,000,000
START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


async def post(http: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str] = LAN) -> Any:
    response = await http.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def open_deal(http: httpx.AsyncClient, title: str, stage: str | None = None) -> str:
    body = {"title": title, "customer": "Chuỗi siêu thị Đông Á", "owner_id": "u-lan", "team_id": "north"}
    deal = await post(http, "/deals", body | {"lines": [LINE]})
    if stage:
        await post(http, f"/deals/{deal['id']}/move-stage", {"stage_id": stage})
    return str(deal["id"])


async def recorded_instant(service: Any) -> datetime:
    """Once both read models hold every event so far: a recorded time after all of them and before any next."""

    async def settled() -> bool:
        return await applied_everything(service, "board") and await applied_everything(service, "analytics")

    await wait_until(settled, timeout=60, interval=0.2)
    await asyncio.sleep(0.05)
    at = datetime.now(UTC)
    await asyncio.sleep(0.05)
    return at


async def test_forecast_changes_count_what_opened_closed_and_moved_inside_the_window(serve: Serve) -> None:
    served = await serve(deals_main.build, start=START, projections={"board", "analytics"})
    http, service = served.http, served.service
    existing = await open_deal(http, "Đã có trước", stage="quote_sent")
    since = await recorded_instant(service)

    won = await open_deal(http, "Mở và thắng", stage="negotiation")
    await post(http, f"/deals/{won}/win", {})
    lost = await open_deal(http, "Mở và thua", stage="quote_sent")
    await post(http, f"/deals/{lost}/lose", {"reason": "giá cao", "competitor": "Rival"})
    handed = await open_deal(http, "Mở rồi giao lại")
    await post(http, f"/deals/{handed}/reassign", {"owner_id": "u-binh", "team_id": "north"}, MANAGER)
    await post(http, f"/deals/{existing}/reassign", {"owner_id": "u-binh", "team_id": "north"}, MANAGER)
    until = await recorded_instant(service)
    await post(http, f"/deals/{existing}/win", {}, bearer("u-binh", "sales"))  # after the window: not in it
    await open_deal(http, "Mở sau")
    await recorded_instant(service)

    window = {"since": since.isoformat(), "until": until.isoformat()}
    changes = (await http.get("/forecast/changes", params=window, headers=AUDITOR)).json()
    assert changes["summary"] == {
        "created": {"count": 3, "value": "150000000"},
        "won": {"count": 1, "value": "50000000"},
        "lost": {"count": 1, "value": "50000000"},
        "reopened": {"count": 0, "value": "0"},
        "pulled_in": {"count": 0, "value": "0"},
        "pushed_out": {"count": 0, "value": "0"},
        "value_up": {"count": 0, "value": "0"},
        "value_down": {"count": 0, "value": "0"},
        "reassigned": {"count": 2, "value": "100000000"},
    }
    assert {d["deal_id"]: d["changes"] for d in changes["deals"]} == {
        existing: ["reassigned"],
        won: ["created", "won"],
        lost: ["created", "lost"],
        handed: ["created", "reassigned"],
    }
    reassigned = {d["deal_id"]: d for d in changes["deals"] if "reassigned" in d["changes"]}
    assert {(d["previous_owner_id"], d["owner_id"]) for d in reassigned.values()} == {("u-lan", "u-binh")}

    # one salesperson's view: a deal handed over leaves the one who had it and reaches the one who has it
    def by_deal(body: dict[str, Any]) -> dict[str, list[str]]:
        return {d["deal_id"]: d["changes"] for d in body["deals"]}

    lan = (await http.get("/forecast/changes", params=window | {"owner_id": "u-lan"}, headers=AUDITOR)).json()
    assert by_deal(lan) == {
        existing: ["reassigned"],
        won: ["created", "won"],
        lost: ["created", "lost"],
        handed: ["reassigned"],
    }
    binh = (await http.get("/forecast/changes", params=window | {"owner_id": "u-binh"}, headers=AUDITOR)).json()
    assert by_deal(binh) == {existing: ["reassigned"], handed: ["created", "reassigned"]}
    assert binh["summary"]["reassigned"] == {"count": 2, "value": "100000000"}


async def test_a_won_deal_weighs_its_value_and_a_lost_one_nothing_in_the_lists(serve: Serve) -> None:
    served = await serve(deals_main.build, start=START, projections={"board", "analytics"})
    http, service = served.http, served.service
    won = await open_deal(http, "Thắng", stage="negotiation")
    lost = await open_deal(http, "Thua", stage="negotiation")
    still = await open_deal(http, "Còn mở", stage="negotiation")
    await post(http, f"/deals/{won}/win", {})
    await post(http, f"/deals/{lost}/lose", {"reason": "giá cao"})
    await recorded_instant(service)

    listed = {d["deal_id"]: d for d in (await http.get("/deals", headers=LAN)).json()["items"]}
    got = {
        deal: (listed[deal]["status"], listed[deal]["probability"], listed[deal]["weighted_value"]) for deal in listed
    }
    assert got == {
        won: ("won", "1", "50000000"),
        lost: ("lost", "0", "0"),
        still: ("open", "0.80", "40000000"),
    }
    for deal in (won, lost, still):
        one = (await http.get(f"/deals/{deal}", headers=LAN)).json()
        assert (one["probability"], one["weighted_value"]["amount"]) == got[deal][1:], deal

    board = (await http.get("/board", headers=LAN)).json()
    assert board["weighted_value"] == {"VND": "40000000"}, "only open deals are on the board"
    forecast = (await http.get("/forecast", headers=AUDITOR)).json()["rows"]
    assert sum(int(r["won"]) for r in forecast) == 50_000_000
    assert sum(int(r["weighted"]) for r in forecast) == 40_000_000
    assert sum(int(r["expected"]) for r in forecast) == 90_000_000
