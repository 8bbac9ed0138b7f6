"""The marketing page: the funnel by source and by campaign, the campaigns' returns and the leads' inbox."""

from __future__ import annotations

from services.web.panels import C, Page, Panel

FUNNEL = (
    C("captured", "c_captured", "int"),
    C("contacted", "c_contacted", "int"),
    C("mql", "c_mql", "int"),
    C("sql", "c_sql", "int"),
    C("opportunities", "c_opportunities", "int"),
    C("customers", "c_customers", "int"),
    C("revenue", "c_revenue", "money"),
    C("mql_rate", "c_mql", "pct"),
    C("sql_rate", "c_sql", "pct"),
    C("win_rate", "c_win_rate", "pct"),
    C("lead_to_customer", "c_lead_to_customer", "pct"),
    C("median_minutes_to_contact", "c_minutes_to_contact", "days"),
)


FUNNEL_SOURCE = Panel(
    "funnel_source",
    "p_funnel_source",
    "leads",
    "/funnel",
    waits=True,
    columns=(C("source", "c_source"), *FUNNEL),
    params=lambda f, p: f.window() | {"by": "source"},
    wide=True,
)


FUNNEL_CAMPAIGN = Panel(
    "funnel_campaign",
    "p_funnel_campaign",
    "leads",
    "/funnel",
    waits=True,
    columns=(C("campaign", "c_campaign"), *FUNNEL),
    params=lambda f, p: f.window() | {"by": "campaign"},
    wide=True,
)


CAMPAIGNS = Panel(
    "campaigns",
    "p_campaigns",
    "leads",
    "/campaigns",
    waits=True,
    columns=(
        C("name", "c_name"),
        C("channel", "c_channel"),
        C("status", "c_status"),
        C("spend", "c_spend", "money"),
        C("leads", "c_leads", "int"),
        C("cpl", "c_cpl", "money"),
        C("customers", "c_customers", "int"),
        C("cac", "c_cac", "money"),
        C("revenue", "c_revenue", "money"),
        C("roi_pct", "c_roi", "ratio"),
        C("roas", "c_roas", "ratio"),
        C("currency", "c_currency"),
    ),
    params=lambda f, p: f.window(),
    wide=True,
)


INBOX = Panel(
    "inbox",
    "p_inbox",
    "leads",
    "/leads",
    waits=True,
    rows="items",
    columns=(
        C("captured_at", "c_captured_at", "datetime"),
        C("contact.name", "c_contact"),
        C("source", "c_source"),
        C("campaign_code", "c_campaign"),
        C("status", "c_status"),
        C("owner_id", "c_owner"),
        C("score", "c_score"),
        C("response_minutes", "c_response_minutes", "int"),
    ),
    params=lambda f, p: {"limit": "50"},
    wide=True,
)


def marketing_page() -> Page:
    return Page(
        "marketing", "marketing", filters=("from", "to"), panels=(FUNNEL_SOURCE, FUNNEL_CAMPAIGN, CAMPAIGNS, INBOX)
    )
