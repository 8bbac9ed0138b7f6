"""The sales page's actions in Chromium, against the real APIs (the shared board world, tests/e2e/web_world.py):
a deal created from its form and dragged to the next stage (the deals API's state changes, a second browser sees the
card move without a reload), an activity scheduled on it and marked done from the agenda, the deal won with a
delivery date; a move against a version someone else moved meanwhile shows what changed and a retry works; a
salesperson cannot move another's deal (the API refuses, the page says why)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Page

from services.web import i18n
from services.web.domain_words import RULES
from testkit.a11y import severe_violations
from testkit.browser import screenshot
from testkit.waiting import wait_until
from tests.e2e.web_world import ADMIN, Board, signed_in, token

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]
ADMIN_TOKEN = ADMIN["Authorization"].removeprefix("Bearer ")
NEW_DEAL = {"customer": "Nhà máy Bia Hạ Long", "product": "Máy nén 5HP", "quantity": "2", "unit_price": "44000000"}


async def api(board: Board, service: str, path: str, tok: str, body: Any = None) -> tuple[int, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        headers = {"Authorization": f"Bearer {tok}"}
        url = board.urls[service] + path
        r = await (http.get(url, headers=headers) if body is None else http.post(url, json=body, headers=headers))
    return r.status_code, r.json()


async def deal_when(board: Board, deal: str, tok: str, ok: Any) -> dict[str, Any]:
    """The deal as the deals API answers it, once ``ok(deal)`` holds (a command's effect has arrived)."""
    found: dict[str, Any] = {}

    async def there() -> bool:
        status, body = await api(board, "deals", f"/deals/{deal}", tok)
        found.clear()
        found.update(body if status == 200 else {})
        return status == 200 and bool(ok(body))

    await wait_until(there, timeout=30, interval=0.3)
    return found


async def open_stages(board: Board) -> list[str]:
    """The default pipeline's open stages, in their order (a new deal opens in the first)."""
    _, pipeline = await api(board, "deals", "/pipelines/default", ADMIN_TOKEN)
    found = sorted(pipeline["stages"], key=lambda s: s.get("order", 0))
    return [s["stage_id"] for s in found if s.get("kind", "open") == "open"]


async def act(page: Page, action: str, fields: dict[str, str], within: str = "body") -> None:
    """Fill the action's form as a person does (its labelled fields) and send it."""
    form = page.locator(f'{within} form[action="/act/{action}"]').first
    for name, value in fields.items():
        field = form.locator(f'[name="{name}"]')
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await form.locator("button[type=submit]").click()


async def tab_to(page: Page, selector: str, presses: int = 400) -> None:
    """Tab (the key) until the focus is on ``selector``: how a keyboard user gets there, no mouse."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


async def arrow_to(page: Page, value: str, presses: int = 30) -> None:
    """The focused list's choice moved with the arrow keys until it is ``value``."""
    for key in ("ArrowDown", "ArrowUp"):
        for _ in range(presses):
            if await page.evaluate("() => document.activeElement.value") == value:
                return
            await page.keyboard.press(key)
    raise AssertionError(f"no {value} in the focused list")


def local(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


async def test_a_deal_is_created_dragged_to_the_next_stage_won_and_its_activity_done(board: Board) -> None:
    tok = token("u-lan", "sales", team="north")
    title = f"Máy nén khí {uuid.uuid4().hex[:6]}"
    stages = await open_stages(board)
    ctx, page = await signed_in(board, "u-lan")
    other_ctx, other = await signed_in(board, "u-mgr")  # the manager's board, open meanwhile
    try:
        await other.goto(f"{board.urls['web']}/sales?more={stages[1]}")  # the whole column the deal goes to
        await other.wait_for_selector("body[data-live='1']")
        await page.click("#panel-board a.new-deal")
        await page.wait_for_url("**/act/deal.open**")
        async with page.expect_navigation(url=lambda url: urlsplit(url).path == "/sales"):  # back to the board
            await act(page, "deal.open", NEW_DEAL | {"title": title})
        await page.goto(f"{board.urls['web']}/sales?more={stages[0]}")  # the whole column it opens in
        await page.wait_for_selector("body[data-live='1']")
        card = page.locator(f"#panel-board .column[data-stage='{stages[0]}'] article.card:has-text('{title}')")
        await card.wait_for(timeout=30_000)
        deal = str(await card.get_attribute("data-id"))
        opened = await deal_when(board, deal, tok, lambda d: d["status"] == "open")
        assert opened["owner_id"] == "u-lan" and Decimal(opened["value"]["amount"]) == 88_000_000  # 2 × 44,000,000
        await card.drag_to(page.locator(f"#panel-board .column[data-stage='{stages[1]}']"))
        moved = await deal_when(board, deal, tok, lambda d: d["stage"]["stage_id"] == stages[1])
        assert moved["version"] == opened["version"] + 1
        on_other = f"#panel-board .column[data-stage='{stages[1]}'] article[data-id='{deal}']"
        await other.wait_for_selector(on_other, timeout=30_000)  # the second browser sees it, no reload
        await page.wait_for_selector(f"#panel-board .column[data-stage='{stages[1]}'] article[data-id='{deal}']")
        await screenshot(page, "sales-actions-1-dragged")

        # the keyboard's way, keys only (Tab, arrows, Space; no click): the column's "Move to…" list, then the
        # card's "Move" button (its id and version); the aria-live region tells a screen reader what was updated
        await page.goto(f"{board.urls['web']}/sales?more={stages[1]}")
        await page.wait_for_selector("body[data-live='1']")
        column = f"#panel-board .column[data-stage='{stages[1]}']"
        await tab_to(page, f"{column} select[name=stage_id]")
        await arrow_to(page, stages[2])
        await tab_to(page, f"{column} article[data-id='{deal}'] button.move")
        await page.keyboard.press("Space")
        moved = await deal_when(board, deal, tok, lambda d: d["stage"]["stage_id"] == stages[2])
        await page.wait_for_selector(f"#panel-board .column[data-stage='{stages[2]}'] article[data-id='{deal}']")
        await page.wait_for_function(  # "updated: Pipeline board, …" (app.js, after the refresh the move started)
            "() => (document.getElementById('announce').textContent || '').includes(':')", timeout=15_000
        )
        assert await page.get_attribute("#announce", "aria-live") == "polite"

        # an activity on the deal, then done from the agenda
        await page.goto(f"{board.urls['web']}/deal/{deal}")
        due = local(datetime.now(UTC) + timedelta(days=2))
        async with page.expect_navigation():  # the script goes back to the deal's page, as a plain form would
            await act(page, "activity.schedule", {"kind": "phone", "title": f"Gọi chốt giá {title}", "due_at": due})
        item = page.locator(f"article.activity:has-text('Gọi chốt giá {title}')")

        async def listed() -> bool:
            await page.goto(f"{board.urls['web']}/agenda")
            return await item.count() == 1

        await wait_until(listed, timeout=30, interval=0.5)
        activity = str(await item.get_attribute("data-activity"))
        # rescheduled from the agenda: the agenda API's due time moves, and the page shows the new one
        zone = ZoneInfo(board.settings.timezone)  # the form's time is the business's (no offset)
        later = datetime.now(zone).replace(second=0, microsecond=0) + timedelta(days=5)
        async with page.expect_navigation():  # back to the agenda
            await act(
                page,
                "activity.reschedule",
                {"due_at": later.strftime("%Y-%m-%dT%H:%M"), "reason": "Khách hẹn lại"},
                within=f"article[data-activity='{activity}']",
            )

        async def rescheduled() -> bool:
            status, body = await api(board, "agenda", f"/activities/{activity}", tok)
            return status == 200 and datetime.fromisoformat(body["due_at"]) == later

        await wait_until(rescheduled, timeout=30, interval=0.3)
        _, body = await api(board, "agenda", f"/activities/{activity}", tok)

        async def shown() -> bool:
            await page.goto(f"{board.urls['web']}/agenda")
            return await item.get_attribute("data-version") == str(body["version"])

        await wait_until(shown, timeout=30, interval=0.5)
        assert i18n.fmt(body["due_at"], "datetime", "en", zone) in await item.inner_text()
        async with page.expect_navigation():  # back to the agenda
            await act(
                page, "activity.complete", {"outcome": "Khách đồng ý"}, within=f"article[data-activity='{activity}']"
            )

        async def done() -> bool:
            status, body = await api(board, "agenda", f"/activities/{activity}", tok)
            return status == 200 and body["status"] == "done"

        await wait_until(done, timeout=30, interval=0.3)

        # won, with the delivery date asked for
        await page.goto(f"{board.urls['web']}/deal/{deal}")
        delivery = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
        await act(page, "deal.win", {"requested_delivery_date": delivery})
        won = await deal_when(board, deal, tok, lambda d: d["status"] == "won")
        assert won["version"] > moved["version"]
        await page.wait_for_selector("#deal[data-status='won']")
        await screenshot(page, "sales-actions-2-won")
    finally:
        await ctx.close()
        await other_ctx.close()


async def test_a_stale_move_shows_what_changed_and_a_retry_works_and_no_one_moves_anothers_deal(board: Board) -> None:
    tok = token("u-lan", "sales", team="north")
    stages = await open_stages(board)
    org, customer = await an_organisation(board)
    answer: dict[str, Any] = {}

    async def opened() -> bool:  # once the deals API's replica of the directory has the organisation
        status, body = await api(
            board, "deals", "/deals", tok,
            {"title": f"Tủ đông {uuid.uuid4().hex[:6]}", "customer": customer, "organisation_id": org,
             "owner_id": "u-lan", "team_id": "north"},
        )  # fmt: skip
        answer.update(body)
        assert status in (201, 422), body
        return status == 201

    await wait_until(opened, timeout=30, interval=0.5)
    deal = answer["id"]
    ctx, page = await signed_in(board, "u-lan")
    dung_ctx, dung = await signed_in(board, "u-dung")  # a salesperson of another team
    try:
        await page.goto(f"{board.urls['web']}/deal/{deal}")
        await page.wait_for_selector(f"#deal[data-version='{answer['version']}']")
        changed = {"value": {"amount": "150000000", "currency": "VND"}}  # someone else, meanwhile
        status, moved = await api(board, "deals", f"/deals/{deal}/change-value", ADMIN_TOKEN, changed)
        assert status == 200, moved
        await act(page, "deal.move", {"stage_id": stages[2]})
        refusal = page.locator(".act-result.refused[data-rule='stale_version']")
        await refusal.wait_for(timeout=15_000)
        assert f"(v{moved['version']})" in await refusal.inner_text()  # what it is now
        await screenshot(page, "sales-actions-3-conflict")
        await refusal.locator("button.retry").click()
        await deal_when(board, deal, tok, lambda d: d["stage"]["stage_id"] == stages[2])

        # another salesperson: the deal is not theirs to see, let alone move; the page says so and nothing moves
        await dung.goto(f"{board.urls['web']}/deal/{deal}")
        assert await dung.locator("section.missing").count() == 1
        await dung.goto(f"{board.urls['web']}/sales")
        await dung.evaluate(  # a crafted form: the board passes it to the API as the user, which refuses
            """(deal) => { const f = document.createElement('form'); f.className = 'action';
                 f.method = 'post'; f.action = '/act/deal.move'; f.dataset.action = 'deal.move';
                 const csrf = document.querySelector('input[name=csrf]').value;
                 for (const [k, v] of Object.entries({csrf, deal_id: deal, stage_id: 'quote_sent'})) {
                   const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.append(i); }
                 const b = document.createElement('button'); b.type = 'submit'; f.append(b);
                 document.querySelector('main').append(f); b.click(); }""",
            deal,
        )
        said = dung.locator(".act-result.refused")
        await said.wait_for(timeout=15_000)
        assert await said.get_attribute("data-rule") == "not_found"
        assert "Not found" in await said.inner_text() or RULES["not_found"] in await said.inner_text()
        still = await deal_when(board, deal, tok, lambda d: True)
        assert still["stage"]["stage_id"] == stages[2]
        await deal_edited_lost_and_reopened(board, page, deal, tok, stages)
        await customer_360(board, page, deal, org, tok)
    finally:
        await ctx.close()
        await dung_ctx.close()


async def an_organisation(board: Board) -> tuple[str, str]:
    """A customer in the directory (u-lan's, north): its id and name."""
    name = f"Công ty Lạnh {uuid.uuid4().hex[:6]}"
    body = {"name": name, "owner_id": "u-lan", "team_id": "north"}
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{board.urls['directory']}/organisations", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return str(r.json()["id"]), name


async def deal_edited_lost_and_reopened(board: Board, page: Page, deal: str, tok: str, stages: list[str]) -> None:
    """On the deal's page: its value changed with the keyboard only (Tab, typing, Enter), its close date, then lost
    with a reason and reopened; after each, the deals API has it and the page shows it."""
    base = f"{board.urls['web']}/deal/{deal}"
    await page.goto(base)
    await tab_to(page, 'form[action="/act/deal.value"] [name=amount]')
    await page.keyboard.press("ControlOrMeta+a")
    await page.keyboard.type("175000000")
    await page.keyboard.press("Enter")  # submits the form, as a click on its button would
    now = await deal_when(board, deal, tok, lambda d: Decimal(d["value"]["amount"]) == 175_000_000)
    await page.wait_for_selector(f"#deal[data-version='{now['version']}'] dd[data-key=value][data-value='175000000']")
    close = (datetime.now(UTC) + timedelta(days=45)).date().isoformat()
    await act(page, "deal.close_date", {"expected_close_date": close, "reason": "Khách lùi ngân sách"})
    now = await deal_when(board, deal, tok, lambda d: d.get("expected_close_date") == close)
    await page.wait_for_selector(f"#deal[data-version='{now['version']}']")
    shown = page.locator("#deal dd[data-key=expected_close_date]")  # the day as the page's language writes it
    assert await shown.get_attribute("data-value") == close and await shown.inner_text() != close
    await act(page, "deal.lose", {"reason": "Giá cao hơn đối thủ", "competitor": "Điện lạnh Á Châu"})
    now = await deal_when(board, deal, tok, lambda d: d["status"] == "lost")
    assert now["lost_reason"] == "Giá cao hơn đối thủ", now
    await page.wait_for_selector("#deal[data-status='lost'] dd[data-key=status][data-value=lost]")
    await act(page, "deal.reopen", {"reason": "Khách quay lại", "stage_id": stages[1]})
    now = await deal_when(board, deal, tok, lambda d: d["status"] == "open")
    assert now["stage"]["stage_id"] == stages[1]
    await page.wait_for_selector(f"#deal[data-status='open'][data-version='{now['version']}']")
    await screenshot(page, "sales-actions-4-reopened")


async def customer_360(board: Board, page: Page, deal: str, org: str, tok: str) -> None:
    """The deal's customer links to its 360 page, which lists the deal as the directory's 360 answers it."""

    async def listed() -> bool:
        status, view = await api(board, "directory", f"/organisations/{org}/360", tok)
        return status == 200 and deal in str(view.get("deals"))

    await wait_until(listed, timeout=30, interval=0.5)
    await page.goto(f"{board.urls['web']}/deal/{deal}")
    async with page.expect_navigation():
        await page.click(f"#deal dd[data-key=customer] a[href='/customers/{org}']")
    await page.wait_for_selector(f"#c360[data-organisation='{org}'] tr[data-deal='{deal}']")
    _, view = await api(board, "directory", f"/organisations/{org}/360", tok)
    shown = await page.locator("#c360 dd[data-key=purchases]").inner_text()
    assert shown == i18n.fmt(view.get("purchases"), "int", "en"), (shown, view)
    assert await severe_violations(page) == [], "/customers"
