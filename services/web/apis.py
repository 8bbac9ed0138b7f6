"""The board's calls to the three APIs, with the signed-in user's own token: what one panel shows (its rows, or
why there are none: the API's status and its problem's ``detail``), a deal's timeline across the APIs, and the
count of active alerts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.web.pages.audit import TIMELINE
from services.web.panels import CARDS_SHOWN, Filters, Panel, rows_of
from shared.edge.auth import Principal
from shared.ops.settings import PIPELINES, Settings


@dataclass
class Shown:
    """One panel as loaded: its rows exactly as the API answered, or why there are none."""

    panel: Panel
    source: str  # "<service> <path>?<query>": the API query the rows are from
    state: str = "ok"  # ok, choose, forbidden, not_found, invalid, unavailable, signed_out
    rows: list[dict[str, Any]] = field(default_factory=list)
    detail: str | None = None
    rule: str | None = None  # the problem's ``rule``: the page says its sentence (domain_words), the detail below
    hidden: list[str] = field(default_factory=list)  # parts the user's role may not read (the timeline's)


class Apis:
    """The three APIs, called with the user's token."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.urls = {s: settings.api_url(s) for s in PIPELINES}
        self.directory = settings.api_url("directory")  # the Team and Salesperson filters' lists (people.py)
        self.http = httpx.AsyncClient(timeout=10, transport=transport)

    async def get(self, service: str, path: str, params: dict[str, str], token: str) -> httpx.Response:
        return await self.http.get(
            self.urls[service] + path, params=params, headers={"Authorization": f"Bearer {token}"}
        )

    async def close(self) -> None:
        await self.http.aclose()


class OnePage(Apis):
    """The APIs for one page: panels that make the same query (the win rate beside the stage conversion, the target
    plan's figures beside its stages) share one call."""

    def __init__(self, apis: Apis) -> None:  # the board's client and addresses, not new ones
        self.urls, self.directory, self.http = apis.urls, apis.directory, apis.http
        self.calls: dict[tuple[str, str, tuple[tuple[str, str], ...], str], asyncio.Future[httpx.Response]] = {}

    async def get(self, service: str, path: str, params: dict[str, str], token: str) -> httpx.Response:
        key = (service, path, tuple(sorted(params.items())), token)
        if key not in self.calls:
            self.calls[key] = asyncio.ensure_future(super().get(service, path, params, token))
        return await asyncio.shield(self.calls[key])


def source_of(service: str, path: str, params: dict[str, str]) -> str:
    return f"{service} {path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")


async def fetch(apis: Apis, panel: Panel, path: str, params: dict[str, str], token: str) -> Shown:
    shown = Shown(panel, source_of(panel.service, path, params))
    try:
        r = await apis.get(panel.service, path, params, token)
    except httpx.HTTPError as exc:
        shown.state, shown.detail = "unavailable", type(exc).__name__
        return shown
    if r.status_code == 200:
        shown.rows = rows_of(r.json(), panel)
        return shown
    return refused(shown, r)


def refused(shown: Shown, r: httpx.Response) -> Shown:
    """Why an API did not give the rows: its status as the panel's state, its detail as the reason."""
    states = {401: "signed_out", 403: "forbidden", 404: "not_found", 422: "invalid"}
    shown.state = states.get(r.status_code, "unavailable")
    with contextlib.suppress(ValueError):  # a problem (RFC 9457): its ``detail`` is a sentence
        body = r.json()
        detail = body.get("detail") if isinstance(body, dict) else None
        shown.detail = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)[:300]
        rule = body.get("rule") if isinstance(body, dict) else None
        shown.rule = rule[:100] if isinstance(rule, str) else None
    return shown


async def load(
    apis: Apis, panel: Panel, f: Filters, p: Principal, token: str, position: int | None = None, whole: bool = False
) -> Shown:
    """The panel's rows; a kanban whose API can list each column's first cards only asks for those (what the page
    shows: ``CARDS_SHOWN``, all of the column ``f.more``), unless ``whole`` (the CSV export: every card)."""
    if panel is TIMELINE:
        return await timeline(apis, f, token)
    params = panel.params(f, p)
    if params is None:
        return Shown(panel, "", state="choose")
    if panel.first_cards and not whole:
        params = params | {"cards": str(CARDS_SHOWN)} | ({"whole_stage": f.more} if f.more else {})
    if position is not None and panel.waits:
        params = params | {"position": str(position)}
    return await fetch(apis, panel, panel.path, params, token)


async def history(apis: Apis, service: str, path: str, token: str) -> tuple[int, list[dict[str, Any]]]:
    """Every event of one aggregate's audit trail, following the pages (status, items)."""
    items: list[dict[str, Any]] = []
    params: dict[str, str] = {"limit": "200"}
    for _ in range(50):  # 10,000 events at most on one page of the board
        r = await apis.get(service, path, params, token)
        if r.status_code != 200:
            return r.status_code, items
        body = r.json()
        items += body["items"]
        if not body.get("next_cursor"):
            break
        params = {"limit": "200", "cursor": body["next_cursor"]}
    return 200, items


async def timeline(apis: Apis, f: Filters, token: str) -> Shown:
    """A deal's whole story: the lead it came from, the deal, the order it made and its shipments, in the order
    they were recorded, each event with its details."""
    shown = Shown(TIMELINE, source_of("deals", f"/deals/{f.deal}/history", {}))
    if f.deal is None:
        shown.state = "choose"
        return shown
    try:
        deal = await apis.get("deals", f"/deals/{f.deal}", {}, token)
        if deal.status_code != 200:  # no such deal, or not one the user may see: say why, without asking again
            return refused(shown, deal)
        parts = [("deals", f"/deals/{f.deal}/history")]
        lead = deal.json().get("source_lead_id")
        if lead:
            parts.append(("leads", f"/leads/{lead}/history"))
        order = await apis.get("production", f"/orders/for-deal/{f.deal}", {}, token)
        if order.status_code == 200:
            parts.append(("production", f"/orders/{order.json()['order_id']}/history"))
        elif order.status_code in (401, 403):  # e.g. a salesperson may not read orders: say so, show the rest
            shown.hidden.append("production")
        answers = await asyncio.gather(*(history(apis, s, path, token) for s, path in parts))
    except httpx.HTTPError as exc:
        shown.state, shown.detail = "unavailable", type(exc).__name__
        return shown
    for (service, _), (status, items) in zip(parts, answers, strict=True):
        for e in items:
            shown.rows.append(
                {
                    "recorded_at": e["recorded_at"],
                    "occurred_at": e["occurred_at"],
                    "service": service,
                    "event": e["type"].rsplit(".", 1)[-1],
                    "actor": e.get("actor"),
                    "version": e["version"],
                    "reason": e.get("reason"),
                    "correlation_id": e.get("correlation_id"),
                    "causation_id": e.get("causation_id"),
                    "data": e["data"],
                }
            )
        if status != 200:
            shown.hidden.append(service)
    shown.rows.sort(key=lambda r: (r["recorded_at"], r["service"], r["version"]))
    return shown


ALERTS_PAGE = 500  # the most one /alerts answer lists


async def alert_count(apis: Apis, token: str) -> str:
    """How many active alerts the three APIs show this user ("" when none may be seen; "500+" past a page)."""
    answers = await asyncio.gather(
        *(apis.get(s, "/alerts", {"limit": str(ALERTS_PAGE)}, token) for s in PIPELINES), return_exceptions=True
    )
    lists = [r.json() for r in answers if isinstance(r, httpx.Response) and r.status_code == 200]
    if not lists:
        return ""
    total = sum(len(x) for x in lists if isinstance(x, list))
    return f"{total}+" if any(isinstance(x, list) and len(x) >= ALERTS_PAGE for x in lists) else str(total)
