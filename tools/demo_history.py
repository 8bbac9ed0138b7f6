"""A year of business history for the demo (issue 26 item 4): pure, seeded, no I/O.

``generate(today, months=12, scale=1.0, seed=2026)`` gives a ``History``: the rows of the batch contract
(``shared/edge/imports.py``: kind, key, facts with their occurred times and bodies) per service, and the scripts of
what cannot be an import row (decision 0021, the batch routes' as-built): a converted lead's deal is opened by the
deals service's reaction (its id ``deal_id_for_lead``), a won deal's order by production's reaction, so their later
facts are commands through the services' normal routes with ``X-Occurred-At`` (``tools/demo_load.py`` sends both).

What is in it, and from which distribution:

- Campaigns (Facebook, Google Ads, a landing page) with a daily spend shaped by the season: a peak in the weeks
  before Tết (×2.2 at its top), a summer low (×0.6 in June–August), noise ±25 %. Paid leads per day follow the
  spend (Poisson of spend ÷ a cost per lead drawn per campaign); referral, website and manual leads come at a
  steady rate with the same seasonality.
- A lead's journey: assigned; contacted after a lognormal delay (median 2 hours; 8 % never, so some recent leads
  wait past the response target); scored; about 35 % disqualified, the rest qualified (MQL), a share of those SQL
  and converted (about 15 % of all leads).
- A deal's time in each stage is lognormal (median 2–6 days by stage, σ 0.7); a quarter are won (about 26 % of the
  closed ones), the others lost at a stage drawn along the way with a reason from a list, or still open today; 12 %
  stall (a stage ×8) and 12 % never close (they sit in negotiation), so some open deals sit far past their stage's
  ``stuck_after_days``.
- Repeat customers: organisations in the directory with two to eight imported deals each over the year.
- Activities (calls, meetings, e-mails) on the imported deals, scheduled and done.
- A won deal's order: planned, materials, assembly, output, an inspection (18 % fail and are reworked), 6 % scrap
  part of the output, packed, shipped and delivered (some after their due date: late); orders whose steps would be
  after today stop there (work in progress).

Everything is in VND (no exchange rate needed). Times never after ``now`` (the generator's ``now``: today at the
hour given) and within one aggregate always increasing.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from shared.core.ids import import_id

SOURCE = "demo"  # the batch source: ids derive from it (import_id(SOURCE, kind, key))
TET = {  # the first day of the lunar new year
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
}
OWNERS = [("u-lan", "north"), ("u-binh", "north"), ("u-dung", "south")]  # as tools.simulate registers them
CAMPAIGNS = [  # name, channel, code, the lead source its leads come from, median cost per lead (VND)
    ("Facebook — khách hàng tiềm năng", "facebook", "demo-fb-leads", "facebook_lead_ads", 550_000),
    ("Google Ads — tìm kiếm tủ đông", "google_ads", "demo-gg-search", "google_ads_lead_form", 700_000),
    ("Landing page khuyến mãi", "landing_page", "demo-ladi-km", "landing_page", 450_000),
]
ORGANIC = [("referral", 0.3), ("website_form", 0.5), ("manual", 0.2)]  # leads per day (before the season)
STAGES = ["contacted", "needs_discussed", "quote_sent", "negotiation"]  # after target_identified, the first
STAGE_MEDIAN_DAYS = {"target_identified": 2.0, "contacted": 3.0, "needs_discussed": 5.0, "quote_sent": 4.0}
STAGE_MEDIAN_DAYS["negotiation"] = 6.0
STUCK_AFTER_DAYS = {"target_identified": 14, "contacted": 10, "needs_discussed": 14, "quote_sent": 10}
STUCK_AFTER_DAYS["negotiation"] = 14  # the default pipeline's (services/deals/domain/pipeline.py)
SIGMA = 0.7
LOST_REASONS = ["giá cao", "chọn đối thủ", "không có ngân sách", "dự án tạm hoãn", "không liên lạc được"]
PRODUCTS = [
    ("Tủ đông 500L", 18_000_000),
    ("Tủ mát 2 cánh", 14_500_000),
    ("Quầy bar inox", 22_000_000),
    ("Bếp công nghiệp", 9_800_000),
    ("Kho lạnh mini", 65_000_000),
]
ORG_NAMES = [
    "Tiệm bánh Hồng Phát",
    "Nhà hàng Sen Vàng",
    "Siêu thị Bình An",
    "Quán cà phê Mộc",
    "Khách sạn Biển Xanh",
    "Bếp Việt",
    "Chuỗi trà sữa Lá",
    "Nhà hàng Phố Cổ",
    "Khách sạn Hoa Mai",
    "Siêu thị Gia Đình",
    "Quán nướng Than Hồng",
    "Căng tin Trường Xanh",
]
FIRST = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi"]
MIDDLE = ["Văn", "Thị", "Minh", "Thu", "Quốc", "Ngọc", "Hữu"]
LAST = ["An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Khánh", "Lan", "Mai", "Nam", "Phương", "Quân"]
ACTIVITY_TITLES = {"phone": "Gọi lại khách hàng", "meeting": "Gặp khách tại cửa hàng", "email": "Gửi báo giá"}


@dataclass(frozen=True)
class Step:
    """A command through a service's normal route (``X-Occurred-At: at``): ``path`` under the aggregate's URL."""

    at: datetime
    path: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Script:
    """The later facts of an aggregate a reaction makes: a converted lead's deal (``deal_id`` derived by the deals
    service) and, once won, the order production makes for it (``order``: its steps; the order is found by deal)."""

    deal_id: uuid.UUID
    steps: tuple[Step, ...]  # the deal's (empty for an imported deal: its facts are in its row)
    order: tuple[Step, ...]  # the order's (empty: not won, or nothing done yet)
    won: bool = False


@dataclass(frozen=True)
class Campaign:
    name: str
    channel: str
    code: str
    created_at: datetime
    budget: int


@dataclass
class Figures:
    """What was generated, for the unit tests and the demo's summary."""

    leads: int = 0
    contacted: int = 0
    converted: int = 0
    deals: int = 0
    won: int = 0
    lost: int = 0
    open: int = 0
    stuck: int = 0  # open today and in its stage longer than its stuck_after_days
    orders: int = 0
    delivered: int = 0
    reworked: int = 0
    scrapped: int = 0
    spend: int = 0  # VND
    stage_days: list[float] = field(default_factory=list)  # every completed stage visit's length


@dataclass
class History:
    now: datetime
    start: datetime
    campaigns: list[Campaign]
    rows: dict[str, list[dict[str, Any]]]  # service → its rows, in the order to send them
    scripts: list[Script]  # converted leads' deals and every won deal's order
    figures: Figures


def fact(command: str, at: datetime, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"command": command, "occurred_at": at.isoformat(), "body": body or {}}


def ref(kind: str, key: str) -> dict[str, Any]:
    return {"$import": {"kind": kind, "key": key}}


def money(amount: int) -> dict[str, str]:
    return {"amount": str(amount), "currency": "VND"}


def season(day: date) -> float:
    """The demand of a day relative to an ordinary one: a peak in the three weeks before Tết, a summer low."""
    tet = TET.get(day.year + (1 if day.month >= 6 else 0)) or date(day.year + (day.month >= 6), 2, 5)
    peak = 1.2 * math.exp(-((((tet - day).days - 14) / 12) ** 2))
    summer = -0.4 if day.month in (6, 7, 8) else 0.0
    return max(0.3, 1.0 + peak + summer)


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's: enough for the small means of a day's leads."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def lognormal_days(rng: random.Random, median: float, sigma: float = SIGMA) -> timedelta:
    return timedelta(days=rng.lognormvariate(math.log(median), sigma))


class _Generator:
    def __init__(self, now: datetime, months: int, scale: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.start = now - timedelta(days=round(months * 365 / 12))
        self.scale = scale
        self.rows: dict[str, list[dict[str, Any]]] = {s: [] for s in ("directory", "leads", "deals", "agenda")}
        self.scripts: list[Script] = []
        self.figures = Figures()
        self.campaigns = [
            Campaign(name, channel, code, self.start - timedelta(days=1), 400_000_000)
            for name, channel, code, _, _ in CAMPAIGNS
        ]

    def row(self, service: str, kind: str, key: str, facts: list[dict[str, Any]]) -> None:
        rows = self.rows[service]
        rows.append({"row": len(rows) + 1, "kind": kind, "key": key, "facts": facts})

    def days(self) -> Iterator[date]:
        day = self.start.date()
        while day < self.now.date():
            yield day
            day += timedelta(days=1)

    def moment(self, day: date) -> datetime:
        """A time in the working day (08:00–18:00 Vietnam, 01:00–11:00 UTC)."""
        return datetime.combine(day, time(1), UTC) + timedelta(minutes=self.rng.randrange(600))

    def person(self) -> dict[str, str]:
        rng = self.rng
        return {
            "name": f"{rng.choice(FIRST)} {rng.choice(MIDDLE)} {rng.choice(LAST)}",
            "phone": f"09{rng.randrange(10**7, 10**8)}",
            "email": f"{uuid.UUID(int=rng.getrandbits(128)).hex[:10]}@example.vn",
        }

    # ---------------------------------------------------------------------------------------------- marketing
    def marketing(self) -> None:
        cpl = {code: median * self.rng.uniform(0.8, 1.25) for _, _, code, _, median in CAMPAIGNS}
        for day in self.days():
            s = season(day)
            for _, _, code, source, _ in CAMPAIGNS:
                spend = round(600_000 * self.scale * s * self.rng.uniform(0.75, 1.25), -3)
                self.figures.spend += int(spend)
                self.row(
                    "leads",
                    "spend",
                    f"{code}/{day}",
                    [
                        fact(
                            "record_spend",
                            min(datetime.combine(day, time(16), UTC), self.now),
                            {
                                "campaign": code,
                                "day": str(day),
                                "amount": money(int(spend)),
                                "impressions": int(spend / 300),
                                "clicks": int(spend / 6000),
                            },
                        )
                    ],
                )
                for _ in range(poisson(self.rng, spend / cpl[code])):
                    self.lead(day, source, code)
            for source, per_day in ORGANIC:
                for _ in range(poisson(self.rng, per_day * self.scale * s)):
                    self.lead(day, source, None)

    def lead(self, day: date, source: str, campaign: str | None) -> None:
        rng, f = self.rng, self.figures
        f.leads += 1
        key = f"lead-{f.leads}"
        at = self.moment(day)
        owner, team = rng.choice(OWNERS)
        attribution = {"source": source} | ({"campaign_id": campaign} if campaign else {})
        facts = [
            fact("capture", at, {"source": source, "contact": self.person(), "attribution": attribution}),
            fact("assign", at + timedelta(minutes=rng.randrange(1, 30)), {"owner_id": owner, "team_id": team}),
        ]
        t = datetime.fromisoformat(facts[-1]["occurred_at"])
        if rng.random() < 0.92:  # contacted: most within hours, a tail of days
            t = max(t, at + timedelta(hours=rng.lognormvariate(math.log(2), 1.2)))
            if t > self.now:
                self.row("leads", "lead", key, facts)
                return
            facts.append(fact("contact", t, {"channel": rng.choice(["phone", "zalo", "email"])}))
            f.contacted += 1
        facts.append(fact("score", t + timedelta(minutes=5)))
        t += timedelta(minutes=5) + lognormal_days(rng, 1.5)
        quality = rng.random() + (0.05 if campaign else 0.0)
        if t > self.now or quality < 0.35:
            if t <= self.now and rng.random() < 0.7:
                reason = rng.choice(["no_budget", "wrong_fit", "unreachable"])
                facts.append(fact("disqualify", t, {"reason": reason}))
            self.row("leads", "lead", key, facts)
            return
        facts.append(fact("qualify", t, {"level": "mql"}))
        t += lognormal_days(rng, 2.0)
        if quality < 0.88 or t > self.now:
            self.row("leads", "lead", key, facts)
            return
        facts.append(fact("qualify", t, {"level": "sql"}))
        t += lognormal_days(rng, 1.0)
        if t > self.now:
            self.row("leads", "lead", key, facts)
            return
        product, price = rng.choice(PRODUCTS)
        qty = rng.randint(1, 5)
        body = {
            "customer": rng.choice(ORG_NAMES),
            "title": f"{product} — {key}",
            "estimated_value": money(price * qty),
            "expected_close_date": str((t + timedelta(days=rng.randint(20, 60))).date()),
        }
        facts.append(fact("convert", t, body))
        f.converted += 1
        self.row("leads", "lead", key, facts)
        from services.deals.events import deal_id_for_lead  # the deals' contract: the id its reaction opens

        deal_id = deal_id_for_lead(import_id(SOURCE, "lead", key))
        steps, won_at, due = self.journey(t, product, price, qty, imported=False)
        self.scripts.append(
            Script(deal_id, tuple(steps), self.order(won_at, due, product, qty), won=won_at is not None)
        )

    # ---------------------------------------------------------------------------------------------- a deal
    def journey(
        self, opened: datetime, product: str, price: int, qty: int, *, imported: bool
    ) -> tuple[list[Step], datetime | None, date | None]:
        """A deal's stage moves and its end from ``opened`` (in the first stage): the steps (``path`` is the route's
        last segment), the won time and promised delivery date (None: lost or open)."""
        rng, f = self.rng, self.figures
        f.deals += 1
        outcome = rng.random()
        won, lost_at = outcome < 0.25, rng.randrange(5) if outcome < 0.88 else None
        stall = rng.randrange(5) if rng.random() < 0.12 else None
        steps: list[Step] = []
        t, here = opened, ["target_identified", *STAGES]
        for i, stage in enumerate(here):
            length = lognormal_days(rng, STAGE_MEDIAN_DAYS[stage]) * (8 if stall == i else 1)
            if t + length > self.now:
                f.open += 1
                f.stuck += self.now - t > timedelta(days=STUCK_AFTER_DAYS[stage])
                return steps, None, None
            f.stage_days.append(length / timedelta(days=1))
            t += length
            if not won and lost_at == i:
                steps.append(Step(t, "lose", {"reason": rng.choice(LOST_REASONS), "competitor": "Rival Co"}))
                f.lost += 1
                return steps, None, None
            if i + 1 < len(here):
                steps.append(Step(t, "move-stage", {"stage_id": here[i + 1]}))
        if not won:  # undecided past negotiation: it went quiet there (stuck once past its days)
            f.open += 1
            f.stuck += self.now - t > timedelta(days=STUCK_AFTER_DAYS["negotiation"])
            return steps, None, None
        if not imported:  # a converted lead's deal has no lines yet: a win needs them
            line = {"product": product, "quantity": str(qty), "unit_price": money(price)}
            steps.append(Step(t - timedelta(hours=1), "change-lines", {"lines": [line]}))
        due = (t + timedelta(days=7) + lognormal_days(rng, 14.0, 0.4)).date()
        steps.append(Step(t, "win", {"requested_delivery_date": str(due)}))
        f.won += 1
        return steps, t, due

    def order(self, won_at: datetime | None, due: date | None, product: str, qty: int) -> tuple[Step, ...]:
        """The steps of the order production makes for a deal won at ``won_at``, up to today."""
        if won_at is None or due is None:
            return ()
        rng, f = self.rng, self.figures
        f.orders += 1
        materials = [{"component": "thép không gỉ", "quantity": str(qty)}]
        t = won_at + lognormal_days(rng, 1.0)
        start = t.date()
        plan = {"planned_start": str(start), "planned_end": str(max(start + timedelta(days=3), due))}
        plan_steps: list[tuple[float, str, dict[str, Any]]] = [
            (0.0, "plan", plan),
            (0.1, "request-materials", {"materials": materials}),
            (3.0, "receive-materials", {"materials": materials}),
            (0.5, "start-assembly", {}),
            (4.0, "record-output", {"product": product, "quantity": str(qty)}),
        ]
        if rng.random() < 0.06:
            f.scrapped += 1
            plan_steps += [
                (0.2, "scrap", {"product": product, "quantity": "1", "cause": "lỗi hàn"}),
                (1.0, "record-output", {"product": product, "quantity": "1"}),
            ]
        plan_steps.append((0.3, "complete-assembly", {}))
        if rng.random() < 0.18:
            f.reworked += 1
            defects = [{"code": "xước sơn", "quantity": 1}]
            plan_steps += [
                (0.5, "record-inspection", {"passed": False, "inspected_quantity": str(qty), "defects": defects}),
                (2.0, "complete-rework", {"quantity": "1"}),
            ]
        shipment = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        plan_steps += [
            (0.5, "record-inspection", {"passed": True, "inspected_quantity": str(qty)}),
            (0.5, "pack", {"packages": 1}),
            (1.0, "ship", {"shipment_id": shipment, "carrier": "GHN", "quantity": str(qty)}),
            (2.0, "confirm-delivery", {"shipment_id": shipment}),
        ]
        steps: list[Step] = []
        for median, path, body in plan_steps:
            if median:
                t += lognormal_days(rng, median, 0.6)
            if t > self.now:
                break
            steps.append(Step(t, path, body))
        f.delivered += bool(steps) and steps[-1].path == "confirm-delivery"
        return tuple(steps)

    # ---------------------------------------------------------------------------------------------- repeat customers
    def customers(self) -> None:
        """Organisations with several imported deals each over the year (and activities on them)."""
        rng = self.rng
        count = max(2, round(len(ORG_NAMES) * min(1.0, self.scale)))
        for n, name in enumerate(ORG_NAMES[:count]):
            owner, team = OWNERS[n % len(OWNERS)]
            org = f"org-{n + 1}"
            registered = self.start - timedelta(days=rng.randrange(2, 60))
            body = {"name": name, "owner_id": owner, "team_id": team, "industry": "food_service"}
            self.row("directory", "organisation", org, [fact("register", registered, body)])
            deals = rng.randint(2, 8)  # each buys again during the year
            for d in range(max(1, round(deals * min(1.0, self.scale)))):
                opened = self.moment(self.start.date() + timedelta(days=rng.randrange((self.now - self.start).days)))
                self.imported_deal(f"{org}/deal-{d + 1}", org, name, owner, team, opened)

    def imported_deal(self, key: str, org: str, name: str, owner: str, team: str, opened: datetime) -> None:
        rng = self.rng
        product, price = rng.choice(PRODUCTS)
        qty = rng.randint(1, 4)
        line = {"product": product, "quantity": str(qty), "unit_price": money(price)}
        body = {
            "title": f"{product} — {name}",
            "customer": name,
            "organisation_id": ref("organisation", org),
            "owner_id": owner,
            "team_id": team,
            "lines": [line],
            "source": "referral",
            "expected_close_date": str((opened + timedelta(days=rng.randint(20, 60))).date()),
        }
        steps, won_at, due = self.journey(opened, product, price, qty, imported=True)
        facts = [fact("open_deal", opened, body)]
        facts += [fact(s.path.replace("-", "_"), s.at, s.body) for s in steps]
        self.row("deals", "deal", key, facts)
        self.activities(key, owner, opened, [s.at for s in steps])
        if won_at is not None:
            self.scripts.append(
                Script(import_id(SOURCE, "deal", key), (), self.order(won_at, due, product, qty), won=True)
            )

    def activities(self, deal: str, owner: str, opened: datetime, moves: list[datetime]) -> None:
        """A call, meeting or e-mail before each of the deal's first moves, scheduled the day before, done on time."""
        for n, at in enumerate([opened + timedelta(hours=2), *moves[:2]]):
            kind = self.rng.choice(list(ACTIVITY_TITLES))
            scheduled = max(opened, at - timedelta(days=1))
            due = scheduled + timedelta(hours=self.rng.randint(2, 20))
            body = {
                "kind": kind,
                "subject_type": "deal",
                "subject_id": ref("deal", deal),
                "owner_id": owner,
                "title": ACTIVITY_TITLES[kind],
                "due_at": due.isoformat(),
            }
            facts = [fact("schedule", scheduled, body)]
            if due <= self.now:
                facts.append(fact("complete", due, {"outcome": "khách quan tâm, hẹn bước tiếp"}))
            self.row("agenda", "activity", f"{deal}/activity-{n + 1}", facts)


def generate(today: datetime | None = None, *, months: int = 12, scale: float = 1.0, seed: int = 2026) -> History:
    """``months`` of history ending at ``today`` (default: now, UTC; give it for a reproducible history), about
    ``scale`` × the default volume (1.0: some 1,500 leads, 450 deals, 110 orders). Deterministic for a seed and a
    ``today``."""
    now = (today or datetime.now(UTC)).astimezone(UTC)
    g = _Generator(now, months, scale, seed)
    g.customers()
    g.marketing()
    return History(now, g.start, g.campaigns, g.rows, g.scripts, g.figures)
