"""The marketing page: the funnel by source and by campaign, the campaigns' returns and the leads' inbox."""

from __future__ import annotations

from services.web.i18n import N_
from services.web.panels import C, Page, Panel

FUNNEL = (
    C("captured", N_("Captured"), "int"),
    C("contacted", N_("Contacted"), "int"),
    C("mql", N_("MQL"), "int"),
    C("sql", N_("SQL"), "int"),
    C("opportunities", N_("Opportunities"), "int"),
    C("customers", N_("Customers"), "int"),
    C("revenue", N_("Revenue"), "money"),
    C("mql_rate", N_("MQL"), "pct"),
    C("sql_rate", N_("SQL"), "pct"),
    C("win_rate", N_("Win rate"), "pct"),
    C("lead_to_customer", N_("Lead → customer"), "pct"),
    C("median_minutes_to_contact", N_("Median minutes to contact"), "days"),
)


FUNNEL_SOURCE = Panel(
    "funnel_source",
    N_("Funnel by source"),
    "leads",
    "/funnel",
    waits=True,
    columns=(C("source", N_("Source"), "source"), *FUNNEL),
    params=lambda f, p: f.window() | {"by": "source"},
    wide=True,
)


FUNNEL_CAMPAIGN = Panel(
    "funnel_campaign",
    N_("Funnel by campaign"),
    "leads",
    "/funnel",
    waits=True,
    columns=(C("campaign", N_("Campaign")), *FUNNEL),
    params=lambda f, p: f.window() | {"by": "campaign"},
    wide=True,
)


CAMPAIGNS = Panel(
    "campaigns",
    N_("Campaign ROI and ROAS"),
    "leads",
    "/campaigns",
    waits=True,
    columns=(
        C("name", N_("Name")),
        C("channel", N_("Channel")),
        C("status", N_("Status"), "status"),
        C("spend", N_("Spend"), "money"),
        C("leads", N_("Leads"), "int"),
        C("cpl", N_("CPL"), "money"),
        C("customers", N_("Customers"), "int"),
        C("cac", N_("CAC"), "money"),
        C("revenue", N_("Revenue"), "money"),
        C("roi_pct", N_("ROI %"), "ratio"),
        C("roas", N_("ROAS"), "ratio"),
        C("currency", N_("Currency")),
    ),
    params=lambda f, p: f.window(),
    link="campaign_id",  # a day's spend of the campaign (services/web/actions/ops.py)
    href="/act/campaign.spend?back=/marketing&campaign_id=",
    wide=True,
)


FUNNEL_MONTH = Panel(  # the win rate over time (charts.py draws it)
    "funnel_month",
    N_("Funnel by month"),
    "leads",
    "/funnel",
    waits=True,
    columns=(C("month", N_("Month")), *FUNNEL),
    params=lambda f, p: f.window() | {"by": "month"},
    wide=True,
)


INBOX = Panel(
    "inbox",
    N_("Lead inbox"),
    "leads",
    "/leads",
    waits=True,
    rows="items",
    columns=(
        C("captured_at", N_("Captured at"), "datetime"),
        C("contact.name", N_("Contact")),
        C("source", N_("Source"), "source"),
        C("campaign_code", N_("Campaign")),
        C("status", N_("Status"), "status"),
        C("owner_id", N_("Owner")),
        C("score", N_("Score")),
        C("response_minutes", N_("Minutes to first contact"), "int"),
    ),
    params=lambda f, p: {"limit": "50"},
    link="lead_id",  # a lead's page: its actions (services/web/actions/ops.py)
    href="/lead/",
    act=("lead.capture", N_("Add a lead")),
    wide=True,
)


def marketing_page() -> Page:
    return Page(
        "marketing",
        N_("Marketing"),
        filters=("from", "to"),
        panels=(FUNNEL_SOURCE, FUNNEL_MONTH, FUNNEL_CAMPAIGN, CAMPAIGNS, INBOX),
    )
