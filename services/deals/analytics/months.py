"""The analytics by month: the forecast beside the month's target, and the win rate by month of close.

- Forecast against target: the forecast's rows (per month and owner) summed per month, beside the target of the same
  scope for that month: a month's targets summed, and a quarter's target spread over its three months (equal parts
  in the currency's smallest unit, its last month taking what rounding leaves, so the three add up to it). Whose
  targets: an owner's own for an owner's figures, the team's for a team's; for everyone's, the teams' targets, or,
  in a month no team has one, the salespeople's (never both: a salesperson's target is part of their team's).
  Targets are as set now (they keep no history), also beside a forecast as recorded on a past date.
- Win rate over time: per month of close in the business time zone, won / (won + lost) among the deals won or lost
  in it (every deal, whatever its source; counted as ``stage_analytics``' totals count them, so the months of a
  window add up to its won and lost), with the won value; from the first to the last month with a closed deal in
  the window, months without one included (no rate).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from services.deals.analytics.pipeline import _money, _ratio
from shared.store.db import Conn


def _quantum(currency: str) -> Decimal:
    return Decimal(1) if currency in ("VND", "JPY", "KRW") else Decimal("0.01")


def spread(period: str, amount: Decimal, currency: str) -> list[tuple[str, Decimal]]:
    """A target's months and their parts: a month's all of it, a quarter's in three parts adding up to it."""
    if "Q" not in period:
        return [(period, amount)]
    year, first = period[:4], (int(period[6]) - 1) * 3 + 1
    part = (amount / 3).quantize(_quantum(currency), rounding=ROUND_DOWN)
    return [
        (f"{year}-{first:02d}", part),
        (f"{year}-{first + 1:02d}", part),
        (f"{year}-{first + 2:02d}", amount - 2 * part),
    ]


async def month_targets(
    conn: Conn, *, currency: str, owner_id: str | None, team_id: str | None
) -> dict[str, dict[str, Decimal]]:
    """Per month: the scope's target (``target``) and how much of it is a quarter's spread (``from_quarters``)."""
    rows = await conn.fetch(
        """SELECT owner_id, team_id, period, amount FROM targets WHERE currency = $1
             AND (CASE WHEN $2::text IS NOT NULL THEN owner_id = $2
                       WHEN $3::text IS NOT NULL THEN team_id = $3 ELSE true END)
           ORDER BY period, target_id""",
        currency,
        owner_id,
        team_id,
    )
    by_kind: dict[str, dict[str, dict[str, Decimal]]] = {"team": {}, "owner": {}}
    for r in rows:
        kind = "team" if r["team_id"] is not None else "owner"
        for month, part in spread(r["period"], Decimal(r["amount"]), currency):
            slot = by_kind[kind].setdefault(month, {"target": Decimal(0), "from_quarters": Decimal(0)})
            slot["target"] += part
            if "Q" in r["period"]:
                slot["from_quarters"] += part
    if owner_id is not None:
        return by_kind["owner"]
    if team_id is not None:
        return by_kind["team"]
    return {
        m: by_kind["team"].get(m) or by_kind["owner"][m]
        for m in sorted(by_kind["team"].keys() | by_kind["owner"].keys())
    }


def forecast_months(
    rows: list[dict[str, Any]], targets: dict[str, dict[str, Decimal]], currency: str
) -> list[dict[str, Any]]:
    """The forecast's rows summed per month (as the rows give them), each with its target; months with a target and
    no forecast row too; the deals without a close date last, with no target."""
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in rows:
        for key in ("won", "potential", "weighted", "expected"):
            sums[r["period"]][key] += Decimal(r[key])
        sums[r["period"]]["open_count"] += r["open_count"]
    months = sorted((sums.keys() | targets.keys()) - {"unscheduled"}) + (
        ["unscheduled"] if "unscheduled" in sums else []
    )
    out = []
    for month in months:
        s, t = sums.get(month, {}), targets.get(month)
        target = t["target"] if t else None
        expected = s.get("expected", Decimal(0))
        out.append(
            {
                "period": month,
                "currency": currency,
                "won": _money(s.get("won"), currency),
                "open_count": int(s.get("open_count", 0)),
                "weighted": _money(s.get("weighted"), currency),
                "expected": _money(expected, currency),
                "target": _money(target, currency) if target is not None else None,
                "target_from_quarters": _money(t["from_quarters"], currency) if t else None,
                "expected_of_target": _ratio(float(expected), float(target)) if target else None,
            }
        )
    return out


async def win_rates(
    conn: Conn,
    *,
    start: datetime,
    end: datetime,
    tz: str,
    currency: str = "VND",
    owner_id: str | None = None,
    team_id: str | None = None,
    organisations: list[uuid.UUID] | None = None,
) -> list[dict[str, Any]]:
    """Per month of close (business time zone) in [start, end): won, lost, won / (won + lost), won value."""
    rows = await conn.fetch(
        """WITH scoped AS (
               SELECT won_at, lost_at, value FROM deals
               WHERE currency = $4 AND ($5::text IS NULL OR owner_id = $5) AND ($6::text IS NULL OR team_id = $6)
                 AND ($7::uuid[] IS NULL OR organisation_id = ANY($7))),
           closed AS (
               SELECT to_char(won_at AT TIME ZONE $3, 'YYYY-MM') AS month, true AS won, value FROM scoped
               WHERE won_at >= $1 AND won_at < $2
               UNION ALL
               SELECT to_char(lost_at AT TIME ZONE $3, 'YYYY-MM'), false, value FROM scoped
               WHERE lost_at >= $1 AND lost_at < $2),
           months AS (
               SELECT to_char(m, 'YYYY-MM') AS month
               FROM generate_series((SELECT to_date(min(month), 'YYYY-MM') FROM closed),
                                    (SELECT to_date(max(month), 'YYYY-MM') FROM closed), interval '1 month') AS m)
           SELECT m.month, count(c.month) FILTER (WHERE c.won) AS won,
                  count(c.month) FILTER (WHERE NOT c.won) AS lost,
                  coalesce(sum(c.value) FILTER (WHERE c.won), 0) AS won_value
           FROM months m LEFT JOIN closed c USING (month) GROUP BY m.month ORDER BY m.month""",
        start,
        end,
        tz,
        currency,
        owner_id,
        team_id,
        organisations,
    )
    return [
        {
            "month": r["month"],
            "currency": currency,
            "won": r["won"],
            "lost": r["lost"],
            "win_rate": _ratio(r["won"], r["won"] + r["lost"]),
            "won_value": _money(r["won_value"], currency),
        }
        for r in rows
    ]
