"""The marketing and production pages' actions in Chromium, against the real APIs (the shared board world,
tests/e2e/web_world.py): a lead added, assigned, contacted, qualified and converted from the marketing page (the
leads API's state and the page change, a second browser sees the lead arrive, the deal appears); an order moved,
inspected with a defect, held, resumed and shipped in part from the production page; a marketer refused there."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Page

from services.web import domain_words
from services.web.actions import ops_calls as calls
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
        await a_lead_disqualified(board, page, tok)
        await a_days_campaign_spend(board, page, tok)
    finally:
        await ctx.close()
        await other_ctx.close()


async def a_lead_disqualified(board: Board, page: Page, tok: str) -> None:
    """A lead (captured through the API) disqualified from its page, with a reason and a note."""
    tag = uuid.uuid4().hex[:6]
    call = calls.capture_lead(None, {"source": "fair", "name": f"Spam {tag}", "email": f"spam{tag}@pho.vn"})
    status, answer = await api(board, "leads", call.path, tok, call.body)
    assert status == 201, answer
    lead_id = answer["id"]
    await until(board, "leads", f"/leads/{lead_id}", tok, "status", "new")
    await page.goto(f"{board.urls['web']}/lead/{lead_id}")
    await act(page, "lead.disqualify", {"reason": "spam", "note": "gửi hàng loạt"})
    lead = await until(board, "leads", f"/leads/{lead_id}", tok, "status", "disqualified")
    await page.wait_for_selector(f"#lead[data-status='disqualified'][data-version='{lead['version']}']")


async def a_days_campaign_spend(board: Board, page: Page, tok: str) -> None:
    """A day's spend recorded from a campaign's row of the marketing page: the campaign's spend has that day."""
    await page.goto(f"{board.urls['web']}/marketing")
    link = page.locator('#panel-campaigns a[href^="/act/campaign.spend"]').first
    campaign = parse_qs(urlsplit(await link.get_attribute("href") or "").query)["campaign_id"][0]
    _, before = await api(board, "leads", f"/campaigns/{campaign}", tok)
    day = next(
        str(d) for n in range(40, 400) if str(d := datetime.now(UTC).date() - timedelta(days=n)) not in before["spend"]
    )
    # the campaigns panel (the ROI read model, this year) counts it too: the page shows what its API now answers
    source = str(await page.get_attribute("#panel-campaigns", "data-source")).partition(" ")[2]
    cell = page.locator(f'#panel-campaigns tr:has(a[href$="campaign_id={campaign}"]) [data-key=spend]')
    spent = Decimal(str(json.loads(str(await cell.get_attribute("data-value"))) or 0))
    async with page.expect_navigation(url=lambda url: urlsplit(url).path == "/marketing"):  # back, once recorded
        await link.click()
        await page.wait_for_url("**/act/campaign.spend**")
        await act(page, "campaign.spend", {"day": day, "amount": "2500000", "currency": "VND"})
    _, after = await api(board, "leads", f"/campaigns/{campaign}", tok)
    assert Decimal(after["spend"][day]["amount"]) == 2_500_000 and after["spend"][day]["currency"] == "VND", after
    row: dict[str, Any] = {}

    async def counted() -> bool:
        _, rows = await api(board, "leads", source, tok)
        row.update(next(r for r in rows if r["campaign_id"] == campaign))
        return Decimal(str(row["spend"])) == spent + 2_500_000

    async def shown() -> bool:
        await page.reload()
        return json.loads(str(await cell.get_attribute("data-value"))) == row["spend"]

    await wait_until(counted, timeout=30, interval=0.5)
    await wait_until(shown, timeout=30, interval=1)


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
        # the 4 shipped arrive: the delivery confirmed from the order's page (its shipment chosen from the list)
        await page.goto(f"{board.urls['web']}/order/{order}")
        shipment = now["shipments"][0]["shipment_id"]
        await act(page, "order.deliver", {"shipment_id": shipment})
        now = await until(board, "production", f"/orders/{order}", tok, "delivered", "4")
        assert [s["delivered"] for s in now["shipments"]] == [True]
        await page.wait_for_selector(f"#order[data-version='{now['version']}'] dd[data-key=delivered][data-value='4']")
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
