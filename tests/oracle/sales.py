"""The sales figures computed from first principles, from a generated plan (plain data), for checking the
read models row by row. Imports nothing from services/ or shared/: the stage table, the formulas and the
rounding are written out here (DOMAIN.md §2.5)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

# stage id → (order, probability, stuck after days): the default pipeline of seed 001
STAGES = {
    "target_identified": (10, Decimal("0.10"), 14),
    "contacted": (20, Decimal("0.20"), 10),
    "needs_discussed": (30, Decimal("0.40"), 14),
    "quote_sent": (40, Decimal("0.60"), 10),
    "negotiation": (50, Decimal("0.80"), 14),
}
DAY = 86400.0


def money(v: Decimal | int | float | None) -> str:
    return format(Decimal(v or 0).quantize(Decimal(1), ROUND_HALF_EVEN), "f")


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b else None


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class Deal:
    deal_id: str
    owner: str
    team: str
    opened_at: datetime
    value: Decimal
    close: date | None
    stage: str
    entered_stage_at: datetime
    status: str = "open"
    override: Decimal | None = None
    won_at: datetime | None = None
    lost_at: datetime | None = None
    lost_reason: str | None = None
    competitor: str | None = None
    stage_at_close: str | None = None
    pushes: int = 0

    @property
    def probability(self) -> Decimal:
        """Won 1, lost 0: a closed deal weighs what it brought; open: the override, else the stage's."""
        if self.status != "open":
            return Decimal(self.status == "won")
        return self.override if self.override is not None else STAGES[self.stage][1]

    @property
    def weighted_value(self) -> Decimal:
        return (self.value * self.probability).quantize(Decimal(1), ROUND_HALF_UP)  # PostgreSQL's round()


@dataclass
class Visit:
    deal_id: str
    stage: str
    entered: datetime
    exited: datetime | None = None
    kind: str | None = None
    skipped: list[str] = field(default_factory=list)


@dataclass
class Activity:
    deal_id: str
    stage: str
    owner: str
    kind: str
    channel: str
    at: datetime


class Sales:
    """Replays a plan's actions (each with .at, .deal, .kind, .params) up to a time."""

    def __init__(self, actions: list[Any], until: datetime | None = None) -> None:
        self.deals: dict[str, Deal] = {}
        self.visits: list[Visit] = []
        self.activities: list[Activity] = []
        self.opened_as: dict[str, tuple[str, str]] = {}  # each deal's owner and team when it was opened
        for a in actions:
            if until is not None and a.at > until:
                break
            self._apply(a)

    def _open_visit(self, deal_id: str) -> Visit:
        return next(v for v in reversed(self.visits) if v.deal_id == deal_id and v.exited is None)

    def _apply(self, a: Any) -> None:
        d_id, p = str(a.deal), a.params
        if a.kind == "open":
            value = sum((Decimal(q) * price for _, q, price in p["lines"]), Decimal(0))
            self.deals[d_id] = Deal(d_id, p["owner"], p["team"], a.at, value, p["close"], "target_identified", a.at)
            self.opened_as[d_id] = (p["owner"], p["team"])
            self.visits.append(Visit(d_id, "target_identified", a.at))
            return
        d = self.deals[d_id]
        if a.kind == "move":
            forward = STAGES[p["stage"]][0] > STAGES[d.stage][0]
            lo, hi = sorted((STAGES[d.stage][0], STAGES[p["stage"]][0]))
            skipped = [s for s, (o, _, _) in STAGES.items() if lo < o < hi] if forward else []
            v = self._open_visit(d_id)
            v.exited, v.skipped = a.at, skipped
            v.kind = ("skipped_forward" if skipped else "advanced") if forward else "regressed"
            self.visits.append(Visit(d_id, p["stage"], a.at))
            self.deals[d_id] = replace(d, stage=p["stage"], entered_stage_at=a.at)
        elif a.kind == "activity":
            self.activities.append(Activity(d_id, d.stage, d.owner, p["type"], p["channel"], a.at))
        elif a.kind == "close_date":
            if p["close"] != d.close:
                pushed = d.close is not None and p["close"] > d.close
                self.deals[d_id] = replace(d, close=p["close"], pushes=d.pushes + pushed)
        elif a.kind == "lines":
            self.deals[d_id] = replace(d, value=sum((Decimal(q) * price for _, q, price in p["lines"]), Decimal(0)))
        elif a.kind == "override":
            self.deals[d_id] = replace(d, override=p["p"])
        elif a.kind == "clear_override":
            self.deals[d_id] = replace(d, override=None)
        elif a.kind == "reassign":
            self.deals[d_id] = replace(d, owner=p["owner"], team=p["team"])
        elif a.kind == "win":
            v = self._open_visit(d_id)
            v.exited, v.kind = a.at, "won"
            self.deals[d_id] = replace(d, status="won", won_at=a.at, stage_at_close=d.stage)
        elif a.kind == "lose":
            v = self._open_visit(d_id)
            v.exited, v.kind = a.at, "lost"
            self.deals[d_id] = replace(
                d,
                status="lost",
                lost_at=a.at,
                lost_reason=p["reason"],
                competitor=p["competitor"],
                stage_at_close=d.stage,
            )
        elif a.kind == "reopen":
            self.visits.append(Visit(d_id, p["stage"], a.at))
            self.deals[d_id] = replace(
                d,
                status="open",
                lost_at=None,
                lost_reason=None,
                competitor=None,
                stage_at_close=None,
                stage=p["stage"],
                entered_stage_at=a.at,
            )

    # ------------------------------------------------------------------ board
    def board(self, now: datetime) -> dict[str, dict[str, Any]]:
        out = {}
        for stage, (_, _, stuck_days) in STAGES.items():
            deals = [d for d in self.deals.values() if d.status == "open" and d.stage == stage]
            out[stage] = {
                "count": len(deals),
                "value": money(sum((d.value for d in deals), Decimal(0))),
                "weighted_value": money(sum((d.value * d.probability for d in deals), Decimal(0))),
                "stuck_count": sum(1 for d in deals if (now - d.entered_stage_at).total_seconds() > stuck_days * DAY),
            }
        return out

    # ------------------------------------------------------------------ forecast
    def forecast(self, tz: str) -> list[dict[str, Any]]:
        zone = ZoneInfo(tz)
        rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(
            lambda: {"won": Decimal(0), "open_count": 0, "potential": Decimal(0), "weighted": Decimal(0)}
        )
        for d in self.deals.values():
            if d.status == "won":
                assert d.won_at is not None
                rows[(d.won_at.astimezone(zone).strftime("%Y-%m"), d.owner)]["won"] += d.value
            elif d.status == "open":
                r = rows[(d.close.strftime("%Y-%m") if d.close else "unscheduled", d.owner)]
                r["open_count"] += 1
                r["potential"] += d.value
                r["weighted"] += d.value * d.probability
        return [
            {
                "period": period,
                "owner_id": owner,
                "currency": "VND",
                "won": money(r["won"]),
                "open_count": r["open_count"],
                "potential": money(r["potential"]),
                "weighted": money(r["weighted"]),
                "expected": money(r["won"] + r["weighted"]),
            }
            for (period, owner), r in sorted(rows.items())
        ]

    def changes_since(self, before: Sales) -> dict[str, dict[str, Any]]:
        """Each deal now against itself before (a deal opened since: against nothing, and against how it was
        opened for its status and its owner), everyone's: created, won, lost, reopened, pulled in, pushed out,
        value up or down, reassigned."""
        kinds = ("created", "won", "lost", "reopened", "pulled_in", "pushed_out", "value_up", "value_down")
        out: dict[str, dict[str, Any]] = {k: {"count": 0, "value": Decimal(0)} for k in (*kinds, "reassigned")}
        for d_id, now in self.deals.items():
            was = before.deals.get(d_id)
            changes = []
            if was is None:
                changes.append(("created", now.value))
                if now.status != "open":
                    changes.append((now.status, now.value))
                if (now.owner, now.team) != self.opened_as[d_id]:
                    changes.append(("reassigned", now.value))
            else:
                if was.status != now.status:
                    changes.append(({"won": "won", "lost": "lost", "open": "reopened"}[now.status], now.value))
                if was.close and now.close and was.close != now.close:
                    changes.append(("pulled_in" if now.close < was.close else "pushed_out", now.value))
                if now.value != was.value:
                    changes.append(("value_up" if now.value > was.value else "value_down", now.value - was.value))
                if (now.owner, now.team) != (was.owner, was.team):
                    changes.append(("reassigned", now.value))
            for kind, value in changes:
                out[kind]["count"] += 1
                out[kind]["value"] += value
        return {k: {"count": v["count"], "value": money(v["value"])} for k, v in out.items()}

    # ------------------------------------------------------------------ stages
    def stage_analytics(self, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
        stages = []
        for stage, (order, _, _) in STAGES.items():
            first: dict[str, datetime] = {}
            for v in self.visits:
                if v.stage == stage and (v.deal_id not in first or v.entered < first[v.deal_id]):
                    first[v.deal_id] = v.entered
            cohort = {d: t for d, t in first.items() if start <= t < end}
            advanced = lost = still = 0
            for d_id, t in cohort.items():
                d = self.deals[d_id]
                adv = any(
                    v.deal_id == d_id and STAGES[v.stage][0] > order and t < v.entered <= now for v in self.visits
                ) or (d.won_at is not None and d.won_at <= now)
                if adv:
                    advanced += 1
                elif d.lost_at is not None and d.lost_at <= now:
                    lost += 1
                else:
                    still += 1
            ended = [v for v in self.visits if v.stage == stage and v.exited and start <= v.exited < end]
            days = [(v.exited - v.entered).total_seconds() / DAY for v in ended if v.exited]
            stages.append(
                {
                    "stage_id": stage,
                    "entered": len(cohort),
                    "advanced": advanced,
                    "lost": lost,
                    "still_open": still,
                    "conversion_rate": ratio(advanced, advanced + lost),
                    "visits_ended": len(ended),
                    "mean_days": sum(days) / len(days) if days else None,
                    "median_days": percentile(days, 0.5),
                    "p90_days": percentile(days, 0.9),
                    "backward_moves": sum(1 for v in ended if v.kind == "regressed"),
                    "skipped": sum(
                        1 for v in self.visits if v.exited and start <= v.exited < end and stage in v.skipped
                    ),
                }
            )
        won = [d for d in self.deals.values() if d.won_at and start <= d.won_at < end]
        lost_n = sum(1 for d in self.deals.values() if d.lost_at and start <= d.lost_at < end)
        cycles = [(d.won_at - d.opened_at).total_seconds() / DAY for d in won if d.won_at]
        won_value = sum((d.value for d in won), Decimal(0))
        win_rate = ratio(len(won), len(won) + lost_n)
        avg = won_value / len(won) if won else None
        open_now = sum(1 for d in self.deals.values() if d.status == "open")
        mean_cycle = sum(cycles) / len(cycles) if cycles else None
        velocity = None
        if avg is not None and win_rate is not None and mean_cycle:
            velocity = float(open_now * avg) * win_rate / mean_cycle
        return {
            "stages": stages,
            "won": len(won),
            "lost": lost_n,
            "win_rate": win_rate,
            "won_value": money(won_value),
            "average_deal_size": money(avg) if avg is not None else None,
            "mean_cycle_days": mean_cycle,
            "median_cycle_days": percentile(cycles, 0.5),
            "open_now": open_now,
            "velocity_per_day": velocity,
        }

    # ------------------------------------------------------------------ people
    def scorecard(self, start: datetime, end: datetime, now: datetime, targets: dict[str, Decimal]) -> list[dict]:
        rows = []
        for owner in sorted({d.owner for d in self.deals.values()}):
            mine = [d for d in self.deals.values() if d.owner == owner]
            opened = [d for d in mine if start <= d.opened_at < end]
            won = [d for d in mine if d.won_at and start <= d.won_at < end]
            lost = [d for d in mine if d.lost_at and start <= d.lost_at < end]
            won_value = sum((d.value for d in won), Decimal(0))
            cycles = [(d.won_at - d.opened_at).total_seconds() / DAY for d in won if d.won_at]
            open_now = [d for d in mine if d.status == "open"]
            acts: dict[str, int] = defaultdict(int)
            for a in self.activities:
                if a.owner == owner and start <= a.at < end:
                    acts[a.kind] += 1
            target = targets.get(owner)
            rows.append(
                {
                    "owner_id": owner,
                    "opened": len(opened),
                    "won": len(won),
                    "lost": len(lost),
                    "win_rate": ratio(len(won), len(won) + len(lost)),
                    "won_value": money(won_value),
                    "average_deal_size": money(won_value / len(won)) if won else None,
                    "mean_cycle_days": sum(cycles) / len(cycles) if cycles else None,
                    "open_now": len(open_now),
                    "weighted_pipeline_now": money(sum((d.value * d.probability for d in open_now), Decimal(0))),
                    "stuck_now": sum(
                        1 for d in open_now if (now - d.entered_stage_at).total_seconds() > STAGES[d.stage][2] * DAY
                    ),
                    "activities": dict(sorted(acts.items())),
                    "avg_close_date_pushes": sum(d.pushes for d in opened) / len(opened) if opened else 0.0,
                    "target": money(target) if target is not None else None,
                    "attainment": ratio(float(won_value), float(target)) if target else None,
                }
            )
        return rows

    def lost_reasons(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        groups: dict[tuple[Any, ...], list[Deal]] = defaultdict(list)
        for d in self.deals.values():
            if d.lost_at and start <= d.lost_at < end:
                groups[(d.lost_reason, d.stage_at_close, d.competitor)].append(d)
        rows = [
            {
                "reason": k[0],
                "stage_at_loss": k[1],
                "competitor": k[2],
                "count": len(v),
                "value": money(sum((d.value for d in v), Decimal(0))),
            }
            for k, v in groups.items()
        ]
        return sorted(
            rows,
            key=lambda r: (
                -r["count"],
                r["reason"],
                r["stage_at_loss"],
                r["competitor"] is not None,
                r["competitor"] or "",
            ),
        )

    # ------------------------------------------------------------------ planning
    def p_win(self) -> dict[str, float | None]:
        out = {}
        for stage in STAGES:
            entered = {v.deal_id for v in self.visits if v.stage == stage}
            won = sum(1 for d in entered if self.deals[d].status == "won")
            resolved = sum(1 for d in entered if self.deals[d].status in ("won", "lost"))
            out[stage] = ratio(won, resolved)
        return out

    def target_plan(self, owner: str, target: Decimal, start: datetime, end: datetime) -> dict[str, Any]:
        mine = [d for d in self.deals.values() if d.owner == owner]
        won_so_far = sum((d.value for d in mine if d.won_at and start <= d.won_at < end), Decimal(0))
        won_all = [d for d in mine if d.status == "won"]
        avg = sum((d.value for d in won_all), Decimal(0)) / len(won_all) if won_all else None
        remaining = max(target - won_so_far, Decimal(0))
        wins_needed = math.ceil(remaining / avg) if avg and remaining > 0 else 0
        p = self.p_win()
        open_by_stage: dict[str, int] = defaultdict(int)
        for d in mine:
            if d.status == "open":
                open_by_stage[d.stage] += 1
        expected = sum(n * (p.get(s) or 0.0) for s, n in open_by_stage.items())
        gap = max(0.0, wins_needed - expected)
        return {
            "won_so_far": money(won_so_far),
            "average_deal_size": money(avg) if avg else None,
            "wins_needed": wins_needed,
            "expected_wins_from_open": round(expected, 4),
            "gap": round(gap, 4),
            "stages": [
                {
                    "stage_id": s,
                    "p_win": p[s],
                    "open_now": open_by_stage.get(s, 0),
                    "new_entries_needed": needed(gap, p[s]),
                }
                for s in STAGES
            ],
        }

    def success_factors(self, by: str = "activity_type") -> list[dict[str, Any]]:
        def factor(a: Activity) -> str:
            return a.kind if by == "activity_type" else a.channel

        types = sorted({factor(a) for a in self.activities})
        rows = []
        for stage, (order, _, _) in STAGES.items():
            first: dict[str, datetime] = {}
            for v in self.visits:
                if v.stage == stage and (v.deal_id not in first or v.entered < first[v.deal_id]):
                    first[v.deal_id] = v.entered
            fates = {}
            for d_id, t in first.items():
                later = any(v.deal_id == d_id and STAGES[v.stage][0] > order and v.entered > t for v in self.visits)
                d = self.deals[d_id]
                if d.status in ("won", "lost") or later:
                    fates[d_id] = d.status == "won" or later
            if not fates:
                continue
            for kind in types:
                has = {a.deal_id for a in self.activities if a.stage == stage and factor(a) == kind}
                w = [c for d, c in fates.items() if d in has]
                wo = [c for d, c in fates.items() if d not in has]
                rw, rwo = ratio(sum(w), len(w)), ratio(sum(wo), len(wo))
                rows.append(
                    {
                        "stage_id": stage,
                        by: kind,
                        "deals_with": len(w),
                        "conversion_with": rw,
                        "deals_without": len(wo),
                        "conversion_without": rwo,
                        "lift": round(rw / rwo, 6) if rw is not None and rwo else None,
                    }
                )
        return rows


def needed(gap: float, p_win: float | None) -> int | None:
    """New entries a stage needs to close the gap: none without a gap, unknown without a win probability."""
    if gap <= 0:
        return 0
    return math.ceil(round(gap / p_win, 9)) if p_win else None
