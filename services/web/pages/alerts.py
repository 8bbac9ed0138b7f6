"""The alerts page: each service's active alerts."""

from __future__ import annotations

from services.web.panels import C, Page, Panel

ALERT_COLUMNS = (
    C("kind", "c_kind"),
    C("entity", "c_entity"),
    C("summary", "c_summary"),
    C("raised_at", "c_raised_at", "datetime"),
)


def alerts_page() -> Page:
    return Page(
        "alerts",
        "alerts",
        panels=tuple(
            Panel(f"alerts_{s}", f"p_alerts_{s}", s, "/alerts", columns=ALERT_COLUMNS, trigger="alerts", wide=True)
            for s in ("deals", "leads", "production")
        ),
    )
