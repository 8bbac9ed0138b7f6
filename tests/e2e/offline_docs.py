"""An API's Swagger UI 5 (``/docs``) and ReDoc (``/redoc``) in Chromium with every other host cut off
(shared/edge/docs.py): each operation of its OpenAPI 3.1 document is listed, and Swagger UI reads it as 3.1."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import Page

METHODS = ("get", "post", "put", "delete", "patch")


async def api_docs_offline(page: Page, api: str) -> None:
    """``/docs`` and ``/redoc`` of the API at ``api`` load with any request elsewhere aborted (none is made: the
    pages' CSP refuses ReDoc's logo from its CDN before any request), and list each of its operations."""
    elsewhere: list[str] = []

    async def only_the_api(route: Any) -> None:
        url = route.request.url
        if url.startswith((api + "/", "data:", "blob:")):
            await route.continue_()
        else:
            elsewhere.append(url)
            await route.abort()

    await page.route("**/*", only_the_api)
    async with httpx.AsyncClient(timeout=30) as http:
        document = (await http.get(api + "/openapi.json")).json()
    operations = [(m, p) for p, item in document["paths"].items() for m in item if m in METHODS]
    assert document["openapi"].startswith("3.1.")
    await page.goto(api + "/docs")
    await page.wait_for_selector(".opblock")
    assert await page.locator(".opblock").count() == len(operations)
    stamp = await page.locator(".info .version-stamp, .info pre.version").last.inner_text()
    assert stamp.strip().startswith("OAS 3.1"), stamp  # read as it is, no 3.0 relabel
    await page.goto(api + "/redoc")
    await page.wait_for_selector("[data-section-id^='operation/'], [id^='operation/']", timeout=30_000)
    assert await page.locator("[id^='operation/'], [data-section-id^='operation/']").count() >= len(operations)
    assert not elsewhere, elsewhere
    await page.unroute("**/*")
