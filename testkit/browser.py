"""Headless Chromium (Debian's, installed by ``scripts/stack setup``) driven by Playwright, and what the board's
tests read off a page: each panel's cells with the value the API gave and the text shown."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from shared.ops.stack import ROOT

ARTEFACTS = Path(os.environ.get("PIPELINES_ARTEFACTS", ROOT / ".run" / "test-artefacts")) / "web"
# The flags a root process in a closed network needs (no sandbox, no calls home).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    path = os.environ.get("PIPELINES_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("no Chromium: `scripts/stack setup` installs Debian's chromium (or set PIPELINES_CHROMIUM)")
    return path


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Page, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


READ_PANELS = """() => [...document.querySelectorAll('section.panel')].map(el => {
  const cells = (scope) => [...scope.querySelectorAll('[data-key]')].map(c => ({
    key: c.dataset.key, value: c.dataset.value,
    text: (c.querySelector('small') ? c.textContent.replace(c.querySelector('small').textContent, '') : c.textContent).trim(),
  }));
  const rows = [...el.querySelectorAll('[data-row]')].map(r => el.dataset.kind === 'kanban'
    ? {cells: cells(r.querySelector('.colhead')), total: Number(r.dataset.total), cards: [...r.querySelectorAll('article')].map(a => ({id: a.dataset.id, hl: a.classList.contains('hl'), cells: cells(a)}))}
    : {cells: cells(r), cards: []});
  const scroll = el.querySelector('.scroll[data-total]');
  return {id: el.dataset.panel, page: el.dataset.page, state: el.dataset.state, source: el.dataset.source,
          total: scroll ? Number(scroll.dataset.total) : rows.length,
          kind: el.dataset.kind, text: el.querySelector('.msg') ? el.querySelector('.msg').textContent.trim() : '', rows};
})"""


async def panels(page: Page) -> list[dict[str, Any]]:
    """Every panel on the page: id, state, the API query it shows (``source``), and its rows' cells."""
    result: list[dict[str, Any]] = await page.evaluate(READ_PANELS)
    return result
