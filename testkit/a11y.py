"""Accessibility and layout checks the board's browser tests run on a page: axe-core (bundled with
axe-playwright-python, so no network) and what a screen's size must not break."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Page

AXE = Axe()
SEVERE = {"serious", "critical"}


async def severe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it stands: rule, impact, help and where."""
    results = await AXE.run(page)
    return [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in results.response["violations"]
        if v.get("impact") in SEVERE
    ]


WRAPPED_FIGURES = """() => [...document.querySelectorAll(
  'td.int, td.money, td.pct, td.ratio, td.days, .kpi dd, .colhead .fig, .card .fig')]
  .filter(el => el.textContent.trim() && el.getClientRects().length)
  .filter(el => {
    const r = document.createRange(); r.selectNodeContents(el);
    const rects = [...r.getClientRects()].filter(x => x.width > 0);  // a second line starts below the first's bottom
    return rects.some(a => rects.some(b => b.top >= a.bottom - 1));
  }).map(el => (el.closest('section.panel') || {}).id + ' ' + (el.dataset.key || '') + ': ' + el.textContent.trim())"""


async def wrapped_figures(page: Page) -> list[str]:
    """Figures whose text breaks over more than one line (a number must never wrap)."""
    found: list[str] = await page.evaluate(WRAPPED_FIGURES)
    return found


async def page_scrolls_sideways(page: Page) -> bool:
    wide: bool = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
    return wide


async def top_of(page: Page, selector: str) -> float:
    """Where the element's box begins, from the top of the page (the first screen is 0 to the viewport's height)."""
    top: float = await page.evaluate(
        "(s) => document.querySelector(s).getBoundingClientRect().top + window.scrollY", selector
    )
    return top
