"""The audit page: a deal's whole story (the timeline, loaded by ``apis.timeline`` from several APIs: each event
when recorded and when it occurred) and the latest deals to choose one from."""

from __future__ import annotations

from services.web.i18n import N_
from services.web.panels import C, Page, Panel

RECENT_DEALS = Panel(
    "deals",
    N_("Deal"),
    "deals",
    "/deals",
    rows="items",
    columns=(
        C("title", N_("Deal")),
        C("customer", N_("Customer")),
        C("owner_id", N_("Owner")),
        C("stage_name", N_("Stage"), "stage"),
        C("status", N_("Status"), "status"),
        C("value", N_("Value"), "money"),
        C("opened_at", N_("When"), "datetime"),
    ),
    params=lambda f, p: {"limit": "25"},
    waits=True,
    link="deal_id",
    wide=True,
)
TIMELINE = Panel(
    "timeline",
    N_("Timeline: lead → deal → order → shipment"),
    "deals",
    "/deals/{deal}/history",
    kind="table",
    trigger="*",
    columns=(
        C("recorded_at", N_("Recorded"), "datetime"),  # the story in the order it was recorded
        C("occurred_at", N_("Occurred"), "datetime"),  # and when each fact happened (back-dated, imported: earlier)
        C("service", N_("Service"), "service"),
        C("event", N_("Event"), "event"),
        C("actor", N_("Who")),
        C("version", N_("Version"), "int"),
        C("reason", N_("Why")),
        C("data", N_("Details"), "json"),
    ),
    wide=True,
)
AUDIT = Page("audit", N_("Audit"), panels=(TIMELINE, RECENT_DEALS), filters=("deal",))
