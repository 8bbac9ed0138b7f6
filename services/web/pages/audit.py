"""The audit page: a deal's whole story (the timeline, loaded by ``apis.timeline`` from several APIs: each event
when recorded and when it occurred) and the latest deals to choose one from."""

from __future__ import annotations

from services.web.panels import C, Page, Panel

RECENT_DEALS = Panel(
    "deals",
    "deal",
    "deals",
    "/deals",
    rows="items",
    columns=(
        C("title", "c_title"),
        C("customer", "c_customer"),
        C("owner_id", "c_owner"),
        C("stage_name", "c_stage"),
        C("status", "c_status"),
        C("value", "c_value", "money"),
        C("opened_at", "c_when", "datetime"),
    ),
    params=lambda f, p: {"limit": "25"},
    waits=True,
    link="deal_id",
    wide=True,
)
TIMELINE = Panel(
    "timeline",
    "p_timeline",
    "deals",
    "/deals/{deal}/history",
    kind="table",
    trigger="*",
    columns=(
        C("recorded_at", "c_recorded", "datetime"),  # the story in the order it was recorded
        C("occurred_at", "c_occurred", "datetime"),  # and when each fact happened (back-dated, imported: earlier)
        C("service", "c_service"),
        C("event", "c_event"),
        C("actor", "c_actor"),
        C("version", "c_version", "int"),
        C("reason", "c_reason"),
        C("data", "c_data", "json"),
    ),
    wide=True,
)
AUDIT = Page("audit", "audit", panels=(TIMELINE, RECENT_DEALS), filters=("deal",))
