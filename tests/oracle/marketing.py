"""The marketing figures from first principles, from a generated plan (plain data). Imports nothing from
services/ or shared/ (DOMAIN.md §2.5)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tests.oracle.sales import percentile


def money(v: Decimal | int | None) -> str | None:
    return None if v is None else format(Decimal(v).quantize(Decimal(1), ROUND_HALF_EVEN), "f")


def ratio(a: Any, b: Any, places: int = 6) -> float | None:
    return round(float(a) / float(b), places) if b else None


@dataclass
class Lead:
    source: str
    code: str | None
    captured_at: datetime
    contacted_at: datetime | None = None
    mql: bool = False
    sql: bool = False
    converted: bool = False
    won_value: Decimal | None = None
    segments: tuple[str, ...] = ()


class Marketing:
    def __init__(self, actions: list[Any]) -> None:
        self.leads: dict[Any, Lead] = {}
        self.campaigns: dict[Any, dict[str, Any]] = {}
        self.emails: dict[str, dict[str, Any]] = {}  # message id → lead, step, opened, clicked
        for a in actions:
            p = a.params
            if a.kind == "campaign":
                self.campaigns[a.target] = {
                    "code": p["code"],
                    "channel": p["channel"],
                    "budget": Decimal(p["budget"]),
                    "spend": {},
                }
            elif a.kind == "spend":
                self.campaigns[a.target]["spend"][p["day"]] = (Decimal(p["amount"]), p["impressions"], p["clicks"])
            elif a.kind == "capture":
                self.leads[a.target] = Lead(p["source"], p["code"], a.at)
            elif a.kind == "contact":
                lead = self.leads[a.target]
                lead.contacted_at = lead.contacted_at or a.at
            elif a.kind == "qualify":
                lead = self.leads[a.target]
                lead.mql = True
                lead.sql = lead.sql or p["level"] == "sql"
            elif a.kind == "convert":
                lead = self.leads[a.target]
                lead.converted = lead.mql = lead.sql = True
            elif a.kind == "won":
                self.leads[a.target].won_value = Decimal(p["value"])
            elif a.kind == "segment":
                self.leads[a.target].segments = tuple(sorted(set(p["segments"])))
            elif a.kind == "email":
                self.emails[p["message"]] = {"lead": a.target, "step": p["step"], "opened": False, "clicked": False}
            elif a.kind in ("open", "click") and p["message"] in self.emails:
                self.emails[p["message"]]["opened" if a.kind == "open" else "clicked"] = True

    def funnel(self, by: str, start: datetime, end: datetime, tz: str) -> list[dict[str, Any]]:
        zone = ZoneInfo(tz)

        def key(lead: Lead) -> str:
            if by == "source":
                return lead.source
            if by == "campaign":
                return lead.code or "(none)"
            return lead.captured_at.astimezone(zone).strftime("%Y-%m")

        groups: dict[str, list[Lead]] = defaultdict(list)
        for lead in self.leads.values():
            if start <= lead.captured_at < end:
                groups[key(lead)].append(lead)
        rows = []
        for k, ls in sorted(groups.items()):
            mql = sum(1 for x in ls if x.mql)
            sql = sum(1 for x in ls if x.sql)
            opp = sum(1 for x in ls if x.converted)
            customers = sum(1 for x in ls if x.won_value is not None)
            minutes = [(x.contacted_at - x.captured_at).total_seconds() / 60 for x in ls if x.contacted_at]
            median = percentile(minutes, 0.5)
            rows.append(
                {
                    by: k,
                    "captured": len(ls),
                    "contacted": len(minutes),
                    "mql": mql,
                    "sql": sql,
                    "opportunities": opp,
                    "customers": customers,
                    "revenue": money(sum((x.won_value or Decimal(0) for x in ls), Decimal(0))),
                    "mql_rate": ratio(mql, len(ls)),
                    "sql_rate": ratio(sql, mql),
                    "opportunity_rate": ratio(opp, sql),
                    "win_rate": ratio(customers, opp),
                    "lead_to_customer": ratio(customers, len(ls)),
                    "median_minutes_to_contact": None if median is None else round(median, 2),
                }
            )
        return rows

    def campaign_performance(self, start: datetime, end: datetime, tz: str) -> list[dict[str, Any]]:
        zone = ZoneInfo(tz)
        first: date = start.astimezone(zone).date()
        last: date = end.astimezone(zone).date()
        rows = []
        for cid, c in sorted(self.campaigns.items(), key=lambda kv: (kv[1]["code"], str(kv[0]))):
            days = [v for d, v in c["spend"].items() if first <= d < last]
            spend = sum((v[0] for v in days), Decimal(0))
            impressions, clicks = sum(v[1] for v in days), sum(v[2] for v in days)
            ls = [x for x in self.leads.values() if x.code == c["code"] and start <= x.captured_at < end]
            customers = [x for x in ls if x.won_value is not None]
            revenue = sum((x.won_value or Decimal(0) for x in customers), Decimal(0))
            rows.append(
                {
                    "campaign_id": str(cid),
                    "code": c["code"],
                    "spend": money(spend),
                    "budget_used": ratio(spend, c["budget"]),
                    "impressions": impressions,
                    "clicks": clicks,
                    "ctr": ratio(clicks, impressions),
                    "cpc": money(spend / clicks) if clicks else None,
                    "leads": len(ls),
                    "cpl": money(spend / len(ls)) if ls else None,
                    "mql": sum(1 for x in ls if x.mql),
                    "customers": len(customers),
                    "cac": money(spend / len(customers)) if customers else None,
                    "revenue": money(revenue),
                    "roi_pct": round(float((revenue - spend) / spend * 100), 4) if spend else None,
                    "roas": ratio(revenue, spend, 4),
                }
            )
        return rows

    def nurture(self) -> list[dict[str, Any]]:
        steps: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for e in self.emails.values():
            steps[e["step"]].append(e)
        rows = []
        for step, es in sorted(steps.items()):
            opened, clicked = sum(e["opened"] for e in es), sum(e["clicked"] for e in es)
            converted = len({e["lead"] for e in es if self.leads[e["lead"]].converted})
            rows.append(
                {
                    "sequence_id": "welcome",
                    "step": step,
                    "sent": len(es),
                    "opened": opened,
                    "clicked": clicked,
                    "converted": converted,
                    "open_rate": ratio(opened, len(es)),
                    "click_rate": ratio(clicked, len(es)),
                }
            )
        return rows

    def segments(self) -> list[dict[str, Any]]:
        groups: dict[str, list[Lead]] = defaultdict(list)
        for lead in self.leads.values():
            for s in lead.segments:
                groups[s].append(lead)
        return [
            {
                "segment": s,
                "leads": len(ls),
                "mql": sum(x.mql for x in ls),
                "converted": sum(x.converted for x in ls),
                "customers": sum(x.won_value is not None for x in ls),
            }
            for s, ls in sorted(groups.items())
        ]
