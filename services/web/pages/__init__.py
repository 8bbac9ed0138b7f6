"""What each page of the board shows: one module per page, one constant per panel (``panels.py`` says what a panel
is), so a page reads as the list of its panels."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from services.web.pages.alerts import alerts_page
from services.web.pages.audit import AUDIT
from services.web.pages.marketing import marketing_page
from services.web.pages.production import production_page
from services.web.pages.sales import sales_page
from services.web.panels import Page

__all__ = ["AUDIT", "all_pages", "pages"]


def pages(tz: ZoneInfo) -> dict[str, Page]:
    """The pages made for the business's time zone, in the navigation's order; the audit page (``AUDIT``) needs none."""
    return {p.id: p for p in (sales_page(tz), marketing_page(), production_page(), alerts_page())}


def all_pages(tz: ZoneInfo) -> dict[str, Page]:
    """Every page the board serves, by id (its path)."""
    return pages(tz) | {AUDIT.id: AUDIT}
