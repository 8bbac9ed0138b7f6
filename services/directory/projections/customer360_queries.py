"""What the ``customer360`` read model answers: one organisation's 360, and the customer analytics (revenue from
repeat customers against new ones per period, seed S6; customers by segment and value).

Formulas, per currency (deals keep theirs; nothing is converted), over the organisation and every one merged into
it (``family``), its deals being those whose link names one of them:
- lifetime revenue = Σ value of its won deals; purchases = its won deals; first and last purchase = the earliest
  and latest ``won_at``;
- repeat-purchase share = the purchases after the first / all purchases (by count), and the revenue of the
  purchases after the first / lifetime revenue (by value, per currency);
- last contact = the latest activity logged on its deals or contact recorded in their follow-ups;
- satisfaction = the mean CSAT (1–5) and NPS (0–10) its follow-ups recorded, and how many answered;
- new vs repeat revenue in a period: a won deal is its customer's *new* revenue when it is the customer's first
  won deal ever (merged organisations counted as one), else *repeat*;
- value classes (ABC): customers by lifetime revenue in one currency, descending; class A while the cumulative
  share up to and including the customer is at most 80 %, B up to 95 %, C the rest (the first customer is A).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shared.store.db import Conn

MAX_LISTED = 100  # deals, orders and follow-ups listed per kind (newest first); the counts count them all
MAX_HOPS = 16
# Each organisation with the one it reads as (merges followed, at most MAX_HOPS deep).
ROOTS = f"""WITH RECURSIVE roots (organisation_id, root, depth) AS (
        SELECT organisation_id, organisation_id, 0 FROM c360_organisations WHERE merged_into IS NULL
        UNION ALL
        SELECT o.organisation_id, r.root, r.depth + 1 FROM c360_organisations o
        JOIN roots r ON o.merged_into = r.organisation_id WHERE r.depth < {MAX_HOPS})"""


def _json(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, uuid.UUID):
        return str(v)
    return v


def _rows(rows: Any) -> list[dict[str, Any]]:
    return [{k: _json(v) for k, v in dict(r).items()} for r in rows]


def _share(part: Decimal | int, whole: Decimal | int) -> float | None:
    return round(float(part) / float(whole), 6) if whole else None


DEAL_FIELDS = (
    "deal_id", "organisation_id", "title", "owner_id", "status", "value", "currency", "opened_at", "won_at", "lost_at",
    "lost_reason",
)  # fmt: skip
ORDER_FIELDS = (
    "order_id", "deal_id", "created_at", "due_date", "quantity", "shipments", "shipped", "first_shipped_at",
    "last_shipped_at", "delivered", "last_delivered_at", "late_deliveries", "cancelled",
)  # fmt: skip
FOLLOW_UP_FIELDS = (
    "follow_up_id",
    "deal_id",
    "kind",
    "due_on",
    "completed",
    "contacts",
    "csat",
    "nps",
    "last_contact_at",
)
ACTIVITY_FIELDS = ("activity_type", "n", "last_at")


def _records(fields: tuple[str, ...], alias: str) -> str:
    return f"({', '.join(f'{alias}.{f}' for f in fields)})"


# One statement (one round trip): the organisation's family (it and every one merged into it), then its deals, their
# orders, follow-ups and activities by type, each as an array of records in the order they are listed.
_360 = f"""WITH RECURSIVE fam (organisation_id, depth) AS (
        SELECT $1::uuid, 0
        UNION ALL
        SELECT o.organisation_id, f.depth + 1 FROM c360_organisations o
        JOIN fam f ON o.merged_into = f.organisation_id WHERE f.depth < {MAX_HOPS}),
    d AS (SELECT * FROM c360_deals WHERE organisation_id IN (SELECT organisation_id FROM fam))
    SELECT (SELECT array_agg(DISTINCT organisation_id ORDER BY organisation_id) FROM fam) AS orgs,
           (SELECT array_agg({_records(DEAL_FIELDS, "d")} ORDER BY coalesce(d.won_at, d.lost_at, d.opened_at) DESC,
                   d.deal_id) FROM d) AS deals,
           (SELECT array_agg({_records(ORDER_FIELDS, "o")} ORDER BY o.created_at DESC, o.order_id)
              FROM c360_orders o WHERE o.deal_id IN (SELECT deal_id FROM d)) AS orders,
           (SELECT array_agg({_records(FOLLOW_UP_FIELDS, "f")} ORDER BY f.due_on DESC, f.follow_up_id)
              FROM c360_follow_ups f WHERE f.deal_id IN (SELECT deal_id FROM d)) AS follow_ups,
           (SELECT array_agg((a.activity_type, a.n, a.last_at) ORDER BY a.activity_type) FROM (
               SELECT activity_type, count(*) AS n, max(at) AS last_at FROM c360_activities
               WHERE deal_id IN (SELECT deal_id FROM d) GROUP BY activity_type) a) AS activities"""


async def customer_360(conn: Conn, organisation_id: uuid.UUID) -> dict[str, Any]:
    """The organisation's 360 (see the module's formulas), in one statement."""
    row = await conn.fetchrow(_360, organisation_id)
    assert row is not None

    def listed(column: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
        return [dict(zip(fields, r, strict=True)) for r in row[column] or ()]

    deals, orders = listed("deals", DEAL_FIELDS), listed("orders", ORDER_FIELDS)
    follow_ups, activities = listed("follow_ups", FOLLOW_UP_FIELDS), listed("activities", ACTIVITY_FIELDS)
    contacts = [a["last_at"] for a in activities] + [f["last_contact_at"] for f in follow_ups if f["last_contact_at"]]
    return {
        "organisation_id": str(organisation_id),
        "organisations": [str(o) for o in row["orgs"]],
        **_deal_figures(deals),
        **_order_figures(orders),
        **_follow_up_figures(follow_ups),
        "activities": {
            "count": sum(a["n"] for a in activities),
            "by_type": {a["activity_type"]: a["n"] for a in activities},
        },
        "last_contact_at": _json(max(contacts, default=None)),
    }


def _deal_figures(deals: list[Any]) -> dict[str, Any]:
    won = sorted((d for d in deals if d["status"] == "won"), key=lambda d: (d["won_at"], d["deal_id"]))
    revenue: dict[str, Decimal] = {}
    repeat: dict[str, Decimal] = {}
    for i, d in enumerate(won):
        revenue[d["currency"]] = revenue.get(d["currency"], Decimal(0)) + d["value"]
        if i > 0:
            repeat[d["currency"]] = repeat.get(d["currency"], Decimal(0)) + d["value"]
    listed = {s: _rows([d for d in deals if d["status"] == s][:MAX_LISTED]) for s in ("open", "won", "lost")}
    return {
        "deals": {s: {"count": sum(1 for d in deals if d["status"] == s), "listed": listed[s]} for s in listed},
        "lifetime_revenue": {c: format(v, "f") for c, v in sorted(revenue.items())},
        "purchases": len(won),
        "first_purchase_at": _json(won[0]["won_at"]) if won else None,
        "last_purchase_at": _json(won[-1]["won_at"]) if won else None,
        "repeat_purchase_share": {
            "by_count": _share(len(won) - 1, len(won)) if won else None,
            "by_value": {c: _share(repeat.get(c, Decimal(0)), v) for c, v in sorted(revenue.items())},
        },
    }


def _order_figures(orders: list[Any]) -> dict[str, Any]:
    return {
        "orders": {
            "count": len(orders),
            "cancelled": sum(1 for o in orders if o["cancelled"]),
            "shipments": sum(o["shipments"] for o in orders),
            "late_deliveries": sum(o["late_deliveries"] for o in orders),
            "listed": _rows(orders[:MAX_LISTED]),
        }
    }


def _follow_up_figures(follow_ups: list[Any]) -> dict[str, Any]:
    csat = [f["csat"] for f in follow_ups if f["csat"] is not None]
    nps = [f["nps"] for f in follow_ups if f["nps"] is not None]
    return {
        "follow_ups": {
            "count": len(follow_ups),
            "open": sum(1 for f in follow_ups if not f["completed"]),
            "listed": _rows(follow_ups[:MAX_LISTED]),
        },
        "satisfaction": {
            "responses": len({f["follow_up_id"] for f in follow_ups if f["csat"] is not None or f["nps"] is not None}),
            "csat_mean": round(sum(csat) / len(csat), 4) if csat else None,
            "nps_mean": round(sum(nps) / len(nps), 4) if nps else None,
        },
    }


# ---------------------------------------------------------------------------------------------- analytics
# Won deals of the organisations in scope ($teams NULL: every team's), each with its customer (the organisation it
# reads as) and whether it was that customer's first won deal ever.
_PURCHASES = f"""{ROOTS},
    purchases AS (
        SELECT r.root, d.value, d.currency, d.won_at,
               row_number() OVER (PARTITION BY r.root ORDER BY d.won_at, d.deal_id) = 1 AS first
        FROM c360_deals d JOIN roots r ON r.organisation_id = d.organisation_id WHERE d.status = 'won')
    SELECT p.*, o.industry FROM purchases p JOIN c360_organisations o ON o.organisation_id = p.root
    WHERE ($1::text[] IS NULL OR o.team_id = ANY($1))"""


async def repeat_revenue(
    conn: Conn, *, start: datetime, end: datetime, tz: str, currency: str, teams: list[str] | None
) -> list[dict[str, Any]]:
    """Per month (business time zone) in [start, end): won revenue from new customers and from repeat ones."""
    rows = await conn.fetch(
        f"""SELECT to_char(won_at AT TIME ZONE $5, 'YYYY-MM') AS period,
                   coalesce(sum(value) FILTER (WHERE first), 0) AS new_revenue,
                   coalesce(sum(value) FILTER (WHERE NOT first), 0) AS repeat_revenue,
                   count(DISTINCT root) FILTER (WHERE first) AS new_customers,
                   count(DISTINCT root) FILTER (WHERE NOT first) AS repeat_customers
            FROM ({_PURCHASES}) x
            WHERE currency = $2 AND won_at >= $3 AND won_at < $4 GROUP BY period ORDER BY period""",
        teams,
        currency,
        start,
        end,
        tz,
    )
    return [
        {
            "period": r["period"],
            "currency": currency,
            "new_revenue": format(r["new_revenue"], "f"),
            "repeat_revenue": format(r["repeat_revenue"], "f"),
            "repeat_share": _share(r["repeat_revenue"], r["new_revenue"] + r["repeat_revenue"]),
            "new_customers": r["new_customers"],
            "repeat_customers": r["repeat_customers"],
        }
        for r in rows
    ]


async def segments(conn: Conn, *, currency: str, teams: list[str] | None) -> dict[str, Any]:
    """Customers by segment (industry) and by value class (ABC on lifetime revenue), in one currency."""
    rows = await conn.fetch(
        f"""{ROOTS}
            SELECT o.organisation_id, o.industry,
                   coalesce(sum(d.value) FILTER (WHERE d.status = 'won' AND d.currency = $2), 0) AS revenue,
                   count(d.deal_id) FILTER (WHERE d.status = 'won' AND d.currency = $2) AS purchases
            FROM c360_organisations o JOIN roots r ON r.root = o.organisation_id
            LEFT JOIN c360_deals d ON d.organisation_id = r.organisation_id
            WHERE o.merged_into IS NULL AND ($1::text[] IS NULL OR o.team_id = ANY($1))
            GROUP BY o.organisation_id, o.industry ORDER BY revenue DESC, o.organisation_id""",
        teams,
        currency,
    )
    by_segment: dict[str, dict[str, Any]] = {}
    for r in rows:
        s = by_segment.setdefault(r["industry"] or "", {"customers": 0, "buying": 0, "revenue": Decimal(0)})
        s["customers"] += 1
        s["buying"] += 1 if r["purchases"] else 0
        s["revenue"] += r["revenue"]
    total = sum((r["revenue"] for r in rows), Decimal(0))
    classes: dict[str, dict[str, Any]] = {c: {"customers": 0, "revenue": Decimal(0)} for c in "ABC"}
    running = Decimal(0)
    for r in (r for r in rows if r["revenue"] > 0):
        running += r["revenue"]
        share = running / total
        cls = "A" if share <= Decimal("0.8") or running == r["revenue"] else "B" if share <= Decimal("0.95") else "C"
        classes[cls]["customers"] += 1
        classes[cls]["revenue"] += r["revenue"]
    return {
        "currency": currency,
        "segments": [
            {"industry": k or None, **v, "revenue": format(v["revenue"], "f")} for k, v in sorted(by_segment.items())
        ],
        "value_classes": [{"class": c, **v, "revenue": format(v["revenue"], "f")} for c, v in classes.items()],
        "without_purchase": sum(1 for r in rows if not r["revenue"]),
    }
