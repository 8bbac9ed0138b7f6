"""The alerts page: each service's active alerts."""

from __future__ import annotations

from services.web.i18n import N_
from services.web.panels import C, Page, Panel

ALERT_COLUMNS = (
    C("kind", N_("Kind"), "alert_kind"),
    C("entity", N_("About")),
    C("summary", N_("Summary"), "alert"),  # from the kind and parameters, not the API's English
    C("raised_at", N_("Raised at"), "datetime"),
)


TITLES = {
    "deals": N_("Sales alerts"),
    "leads": N_("Marketing alerts"),
    "production": N_("Production alerts"),
}


def alerts_page() -> Page:
    return Page(
        "alerts",
        N_("Alerts"),
        panels=tuple(
            Panel(f"alerts_{s}", title, s, "/alerts", columns=ALERT_COLUMNS, trigger="alerts", wide=True)
            for s, title in TITLES.items()
        ),
    )
