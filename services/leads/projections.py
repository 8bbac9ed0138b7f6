"""The marketing read models: one projection of facts and the queries that read it.

No personal data is copied in plaintext: the inbox keeps the sealed contact token and opens it at query time
for callers allowed to see it, so an erasure leaves it unreadable here too.

Formulas (DOMAIN.md §2.5), over the leads captured in a window:
- reached MQL = qualified MQL or SQL, or converted; reached SQL = qualified SQL or converted;
  opportunity = converted; customer = the deal was won;
- rates: MQL / captured, SQL / MQL, opportunity / SQL, customer / opportunity, lead-to-customer = customer /
  captured; speed to lead = median minutes from capture to first contact;
- campaign: spend (days in the window), CTR = clicks / impressions, CPC = spend / clicks, CPL = spend / leads,
  CAC = spend / customers, revenue = won value of its leads, ROI = (revenue − spend) / spend × 100,
  ROAS = revenue / spend.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.alerts.scanner import Condition
from services.leads.marketing_model import DDL, apply_marketing
from shared.messaging.projections import Projection
from shared.store.db import Conn


def marketing(leads_topic: str) -> Projection:
    return Projection(
        name="marketing",
        topics=(leads_topic,),
        ddl=DDL,
        apply=apply_marketing,
        accepts=("pipelines.leads.",),
        tables=("leads", "campaigns", "spend", "nurture_emails"),
    )


# ---------------------------------------------------------------------------------------------- queries
def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, uuid.UUID):
        return str(v)
    return v


def _ratio(a: Any, b: Any, places: int = 6) -> float | None:
    return round(float(a) / float(b), places) if b else None


def _money(v: Any) -> str | None:
    return None if v is None else format(Decimal(v).quantize(Decimal(1)), "f")


async def inbox(
    conn: Conn, *, status: str | None, source: str | None, unassigned: bool | None, offset: int, limit: int
) -> list[dict[str, Any]]:
    """Leads newest first, with their sealed contact token (opened by the API for allowed callers)."""
    rows = await conn.fetch(
        """SELECT lead_id, source, channel, campaign_code, captured_at, status, owner_id, team_id, contact_token,
                  first_contacted_at, round(extract(epoch FROM first_contacted_at - captured_at) / 60)::bigint
                      AS response_minutes, fit, score, scored_at, segments, nurture, duplicate_of, merged_into, erased
           FROM leads WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR source = $2)
             AND ($3::bool IS NULL OR (owner_id IS NULL) = $3)
           ORDER BY captured_at DESC, lead_id OFFSET $4 LIMIT $5""",
        status,
        source,
        unassigned,
        offset,
        limit + 1,
    )
    return [{k: _plain(v) for k, v in dict(r).items()} for r in rows]


FUNNEL_DIMENSIONS = {
    "source": "source",
    "campaign": "coalesce(campaign_code, '(none)')",
    "month": "to_char(captured_at AT TIME ZONE $3, 'YYYY-MM')",
}


async def funnel(conn: Conn, *, by: str, start: datetime, end: datetime, tz: str) -> list[dict[str, Any]]:
    dimension = FUNNEL_DIMENSIONS[by]
    rows = await conn.fetch(
        f"""SELECT {dimension} AS key, count(*) AS captured,
                   count(*) FILTER (WHERE first_contacted_at IS NOT NULL) AS contacted,
                   count(*) FILTER (WHERE mql_at IS NOT NULL OR sql_at IS NOT NULL OR converted_at IS NOT NULL) AS mql,
                   count(*) FILTER (WHERE sql_at IS NOT NULL OR converted_at IS NOT NULL) AS sql,
                   count(*) FILTER (WHERE converted_at IS NOT NULL) AS opportunities,
                   count(*) FILTER (WHERE won_at IS NOT NULL) AS customers,
                   coalesce(sum(won_value), 0) AS revenue,
                   percentile_cont(0.5) WITHIN GROUP
                       (ORDER BY extract(epoch FROM first_contacted_at - captured_at) / 60) AS median_minutes_to_contact
            FROM leads WHERE captured_at >= $1 AND captured_at < $2 AND status <> 'merged'
            GROUP BY 1 ORDER BY 1""",
        *([start, end, tz] if by == "month" else [start, end]),
    )
    return [
        {
            by: r["key"],
            "captured": r["captured"],
            "contacted": r["contacted"],
            "mql": r["mql"],
            "sql": r["sql"],
            "opportunities": r["opportunities"],
            "customers": r["customers"],
            "revenue": _money(r["revenue"]),
            "mql_rate": _ratio(r["mql"], r["captured"]),
            "sql_rate": _ratio(r["sql"], r["mql"]),
            "opportunity_rate": _ratio(r["opportunities"], r["sql"]),
            "win_rate": _ratio(r["customers"], r["opportunities"]),
            "lead_to_customer": _ratio(r["customers"], r["captured"]),
            "median_minutes_to_contact": None
            if r["median_minutes_to_contact"] is None
            else round(float(r["median_minutes_to_contact"]), 2),
        }
        for r in rows
    ]


async def campaign_performance(conn: Conn, *, start: datetime, end: datetime, tz: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """WITH s AS (SELECT campaign_id, sum(amount) AS spend, sum(impressions) AS impressions, sum(clicks) AS clicks
                     FROM spend WHERE day >= ($1 AT TIME ZONE $3)::date AND day < ($2 AT TIME ZONE $3)::date
                     GROUP BY campaign_id),
                l AS (SELECT c.campaign_id, count(x.lead_id) AS leads,
                             count(x.lead_id) FILTER (WHERE x.mql_at IS NOT NULL OR x.sql_at IS NOT NULL
                                                       OR x.converted_at IS NOT NULL) AS mql,
                             count(x.lead_id) FILTER (WHERE x.won_at IS NOT NULL) AS customers,
                             coalesce(sum(x.won_value), 0) AS revenue
                      FROM campaigns c LEFT JOIN leads x
                        ON (x.campaign_code = c.code OR x.campaign_code = c.campaign_id::text)
                       AND x.captured_at >= $1 AND x.captured_at < $2 AND x.status <> 'merged'
                      GROUP BY c.campaign_id)
           SELECT c.campaign_id, c.name, c.channel, c.code, c.currency, c.budget, c.status,
                  coalesce(s.spend, 0) AS spend, coalesce(s.impressions, 0) AS impressions,
                  coalesce(s.clicks, 0) AS clicks, l.leads, l.mql, l.customers, l.revenue
           FROM campaigns c JOIN l USING (campaign_id) LEFT JOIN s USING (campaign_id)
           ORDER BY c.name, c.campaign_id""",
        start,
        end,
        tz,
    )
    out = []
    for r in rows:
        spend, revenue = Decimal(r["spend"]), Decimal(r["revenue"])
        out.append(
            {
                "campaign_id": str(r["campaign_id"]),
                "name": r["name"],
                "channel": r["channel"],
                "code": r["code"],
                "status": r["status"],
                "currency": r["currency"],
                "budget": _money(r["budget"]),
                "spend": _money(spend),
                "budget_used": _ratio(spend, r["budget"]),
                "impressions": r["impressions"],
                "clicks": r["clicks"],
                "ctr": _ratio(r["clicks"], r["impressions"]),
                "cpc": _money(spend / r["clicks"]) if r["clicks"] else None,
                "leads": r["leads"],
                "cpl": _money(spend / r["leads"]) if r["leads"] else None,
                "mql": r["mql"],
                "customers": r["customers"],
                "cac": _money(spend / r["customers"]) if r["customers"] else None,
                "revenue": _money(revenue),
                "roi_pct": round(float((revenue - spend) / spend * 100), 4) if spend else None,
                "roas": _ratio(revenue, spend, 4),
            }
        )
    return out


async def nurture_performance(conn: Conn) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT n.sequence_id, n.step, count(*) AS sent, count(*) FILTER (WHERE n.opened) AS opened,
                  count(*) FILTER (WHERE n.clicked) AS clicked,
                  count(DISTINCT n.lead_id) FILTER (WHERE l.converted_at IS NOT NULL) AS converted
           FROM nurture_emails n JOIN leads l USING (lead_id)
           GROUP BY n.sequence_id, n.step ORDER BY n.sequence_id, n.step"""
    )
    return [
        {
            "sequence_id": r["sequence_id"],
            "step": r["step"],
            "sent": r["sent"],
            "opened": r["opened"],
            "clicked": r["clicked"],
            "converted": r["converted"],
            "open_rate": _ratio(r["opened"], r["sent"]),
            "click_rate": _ratio(r["clicked"], r["sent"]),
        }
        for r in rows
    ]


async def segments(conn: Conn) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT s AS segment, count(*) AS leads,
                  count(*) FILTER (WHERE mql_at IS NOT NULL OR sql_at IS NOT NULL OR converted_at IS NOT NULL) AS mql,
                  count(*) FILTER (WHERE converted_at IS NOT NULL) AS converted,
                  count(*) FILTER (WHERE won_at IS NOT NULL) AS customers
           FROM leads, unnest(segments) AS s WHERE status <> 'merged' GROUP BY s ORDER BY s"""
    )
    return [dict(r) for r in rows]


async def leads_not_contacted(conn: Conn, now: datetime, minutes: int) -> list[Condition]:
    """New leads nobody has contacted within the response target: one alert per lead."""
    rows = await conn.fetch(
        """SELECT lead_id, source, owner_id, captured_at,
                  floor(extract(epoch FROM $1::timestamptz - captured_at) / 60)::bigint AS waiting
           FROM leads WHERE status = 'new' AND first_contacted_at IS NULL AND NOT erased
             AND captured_at < $1::timestamptz - make_interval(mins => $2)""",
        now,
        minutes,
    )
    return [
        Condition(
            kind="lead_not_contacted",
            entity=f"lead-{r['lead_id']}",
            occurrence="first contact",
            summary=f"a {r['source']} lead has waited {r['waiting']} minutes (target {minutes})",
            details={"owner_id": r["owner_id"] or "", "source": r["source"]},
            concerns=(r["owner_id"],) if r["owner_id"] else (),  # else: the sales managers (its kind's role)
        )
        for r in rows
    ]
