"""The marketing and production pages' actions in Chromium, against the real APIs (the shared board world,
tests/e2e/web_world.py): a lead added, assigned, contacted, qualified and converted from the marketing page (the
leads API's state and the page change, a second browser sees the lead arrive, the deal appears); an order moved,
inspected with a defect, held, resumed and shipped in part from the production page; a marketer refused there."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from services.web import domain_words
from testkit.a11y import severe_violations
from testkit.waiting import wait_until
from tests.e2e.web_world import ADMIN, Board, signed_in, token

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]


async def api(board: Board, service: str, path: str, tok: str, body: Any = None) -> tuple[int, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        headers = {"Authorization": f"Bearer {tok}"}
        url = board.urls[service] + path
        r = await (http.get(url, headers=headers) if body is None else http.post(url, json=body, headers=headers))
    return r.status_code, r.json()


async def until(board: Board, service: str, path: str, tok: str, key: str, value: Any) -> dict[str, Any]:
    """The API's object once its ``key`` is ``value`` (a command's effect, or a reaction's, has arrived)."""
    found: dict[str, Any] = {}

    async def there() -> bool:
        status, body = await api(board, service, path, tok)
        found.update(body if status == 200 else {})
        return status == 200 and body.get(key) == value

    await wait_until(there, timeout=30, interval=0.3)
    return found


async def act(page: Page, action: str, fields: dict[str, str]) -> None:
    """Fill the action's form as a person does (by its labelled fields) and send it."""
    form = page.locator(f'form[action="/act/{action}"]')
    for name, value in fields.items():
        field = form.locator(f'[name="{name}"]')
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await form.locator("button[type=submit]").click()


async def test_a_lead_is_added_assigned_contacted_qualified_and_converted_from_the_marketing_page(board: Board) -> None:
    tok = token("u-mkt", "marketing", team="hq")
    name = f"Bích {uuid.uuid4().hex[:6]}"
    ctx, page = await signed_in(board, "u-mkt")
    other_ctx, other = await signed_in(board, "u-mkt")  # a second browser on the marketing page
    try:
        await other.goto(f"{board.urls['web']}/marketing")
        await other.wait_for_selector("body[data-live='1']")
        await page.goto(f"{board.urls['web']}/marketing")
        await page.click('#panel-inbox a.act-link[href^="/act/lead.capture"]')
        await act(page, "lead.capture", {"source": "fair", "name": name, "email": f"{name[-6:]}@pho.vn"})
        row = other.locator(f"#panel-inbox tr:has-text('{name}')")
        await row.wait_for(timeout=20_000)  # the other browser sees the new lead without a reload
        lead_id = (await row.locator("a").first.get_attribute("href") or "").removeprefix("/lead/")
        lead = await until(board, "leads", f"/leads/{lead_id}", tok, "status", "new")
        for action, fields, key, value in [
            ("lead.assign", {"owner_id": "u-mkt"}, "owner_id", "u-mkt"),
            ("lead.contact", {"channel": "zalo"}, "status", "contacted"),
            ("lead.qualify", {"level": "sql"}, "status", "sql"),
            ("lead.convert", {"customer": "Cà phê Phố", "title": "Máy rang 5 kg"}, "status", "converted"),
        ]:
            await page.goto(f"{board.urls['web']}/lead/{lead_id}")
            assert await page.get_attribute("#lead", "data-version") == str(lead["version"])
            await act(page, action, fields)
            lead = await until(board, "leads", f"/leads/{lead_id}", tok, key, value)
            await page.wait_for_selector(f"#lead[data-version='{lead['version']}']")  # the page shows it too
        deal = await until(
            board,
            "deals",
            f"/deals/{uuid.uuid5(DEALS_NS, lead_id)}",
            token("u-admin", "admin"),
            "source_lead_id",
            lead_id,
        )
        assert deal["title"] == "Máy rang 5 kg"
        await page.goto(f"{board.urls['web']}/lead/{lead_id}")
        assert await page.get_attribute(".deal-made", "data-deal") == deal["deal_id"]
        assert await severe_violations(page) == [], "/lead"  # axe-core: labelled forms, headings, contrast
    finally:
        await ctx.close()
        await other_ctx.close()


DEALS_NS = uuid.UUID("6f1f3c8e-2f4e-5b7a-9d0c-1a2b3c4d5e01")  # the contract's (services/deals/events.py)


async def an_order_assembled(board: Board, tok: str) -> str:
    """An order made through the production API up to assembling, with its 10 units produced."""
    today = datetime.now(UTC).date()
    body = {
        "customer": "Cà phê Phố",
        "lines": [{"product": "Máy rang", "quantity": "10"}],
        "due_date": str(today + timedelta(days=30)),
    }
    status, created = await api(board, "production", "/orders", tok, body)
    assert status == 201, created
    order = created["id"]
    for step, step_body in [
        ("plan", {"planned_start": str(today), "planned_end": str(today + timedelta(days=20))}),
        ("start-design", {}),
        ("approve-design", {}),
        ("start-assembly", {}),
        ("record-output", {"product": "Máy rang", "quantity": "10"}),
    ]:
        status, answer = await api(board, "production", f"/orders/{order}/{step}", tok, step_body)
        assert status == 200, (step, answer)
    return str(order)


async def test_an_order_is_moved_inspected_held_resumed_and_shipped_in_part_from_the_production_page(
    board: Board,
) -> None:
    tok = token("u-prod", "production", team="hq")
    order = await an_order_assembled(board, tok)
    ctx, page = await signed_in(board, "u-prod")
    other_ctx, other = await signed_in(board, "u-prod")
    try:
        await other.goto(f"{board.urls['web']}/production")
        await other.wait_for_selector("body[data-live='1']")
        steps = [
            ("order.step", {"step": "complete-assembly"}, "quality_check"),
            (
                "order.inspect",
                {"passed": "true", "inspected_quantity": "10", "defect_kind_0": "scratch", "defect_count_0": "1"},
                "packing",
            ),
            ("order.hold", {"reason": "chờ khách xác nhận màu"}, "on_hold"),
            ("order.resume", {}, "packing"),
            ("order.step", {"step": "pack", "packages": "2"}, "ready_to_ship"),
            ("order.ship", {"quantity": "4", "carrier": "Viettel Post"}, "shipped"),
        ]
        for action, fields, stage in steps:
            await page.goto(f"{board.urls['web']}/order/{order}")
            await act(page, action, fields)
            now = await until(board, "production", f"/orders/{order}", tok, "stage", stage)
            await page.wait_for_selector(f"#order[data-stage='{stage}'][data-version='{now['version']}']")
        assert now["shipped"] == "4" and now["packed"] == "10" and now["inspections"] == 1
        assert await severe_violations(page) == [], "/order"
        card = other.locator(f'#panel-floor .column[data-stage="shipped"] article a[href="/order/{order}"]')
        await card.wait_for(timeout=20_000)  # the other browser's floor moved the card without a reload
    finally:
        await ctx.close()
        await other_ctx.close()


async def test_a_marketer_cannot_act_on_production(board: Board) -> None:
    tok = token("u-prod", "production", team="hq")
    order = await an_order_assembled(board, tok)
    ctx, page = await signed_in(board, "u-mkt", lang="vi")
    try:
        r = await page.goto(f"{board.urls['web']}/order/{order}")
        assert r is not None and r.status == 403  # the production API does not show a marketer its orders
        await page.goto(f"{board.urls['web']}/act/order.hold?order_id={order}&back=/production")
        await act(page, "order.hold", {"reason": "thử"})
        refused = page.locator(".act-result.refused, .action-result")
        await refused.first.wait_for()
        assert await refused.first.get_attribute("data-rule") == "forbidden"
        said = await refused.first.inner_text()
        assert said.startswith(domain_words.refusal("forbidden", None, "vi")), said  # the API's refusal, in Vietnamese
        status, now = await api(board, "production", f"/orders/{order}", tok)
        assert status == 200 and now["stage"] == "assembling"
    finally:
        await ctx.close()
    status, _ = await api(board, "production", f"/orders/{order}", token("u-mkt", "marketing", team="hq"))
    assert status == 403 and ADMIN
