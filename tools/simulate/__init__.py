"""Realistic traffic through the whole flow, over the three services' HTTP APIs only.

Campaigns with daily spend; leads from several sources (signed website forms, Ladipage, manual entries) of
varying quality; some are qualified and converted; the deals they open move forward, skip, go back, stall,
are lost or won; won deals become production orders that are built, sometimes fail inspection and are
reworked, are shipped and delivered (a rushed promise is due the day the deal is won). Deterministic for a seed.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from shared.edge.auth import issue_token
from shared.edge.keys import SigningKeys
from shared.ops.settings import Settings
from tools.simulate import sources

FIRST = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi"]
MIDDLE = ["Văn", "Thị", "Minh", "Thu", "Quốc", "Ngọc", "Hữu"]
LAST = ["An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Khánh", "Lan", "Mai", "Nam", "Phương", "Quân"]
NEXT_STEPS = {  # an activity kind → the title a salesperson gives such a next step
    "phone": "Gọi lại khách hàng",
    "meeting": "Gặp khách tại cửa hàng",
    "email": "Gửi báo giá chi tiết",
    "zalo": "Nhắn Zalo xác nhận nhu cầu",
}
OUTCOMES = ["khách quan tâm, hẹn bước tiếp", "đã gửi báo giá", "khách cần thêm thời gian"]
COMPANIES = ["Tiệm bánh Hồng Phát", "Nhà hàng Sen Vàng", "Siêu thị Bình An", "Quán cà phê Mộc", "Khách sạn Biển Xanh"]
PRODUCTS = [
    ("Tủ đông 500L", 18_000_000),
    ("Tủ mát 2 cánh", 14_500_000),
    ("Quầy bar inox", 22_000_000),
    ("Bếp công nghiệp", 9_800_000),
]
CAMPAIGNS = [
    ("Tết 2027 — Facebook", "facebook", "tet-2027"),
    ("Hè — Google Ads", "google_ads", "he-2026"),
    ("Landing page tủ đông", "landing_page", "ladi-tu-dong"),
]
OWNERS = [("u-lan", "north"), ("u-binh", "north"), ("u-dung", "south")]
# the people the demo's tokens name (`pipelines token … --user`), registered in the directory before anything names them
PEOPLE = [*OWNERS, ("u-mgr", "north")]
TEAMS = {"north": "Miền Bắc", "south": "Miền Nam"}
ADMIN = "u-admin"  # the demo's administrator, in the directory (the admin tokens' sub)


@dataclass
class Endpoints:
    leads: str
    deals: str
    production: str
    directory: str | None = None  # registers its people there first (none: a stack that checks no references)
    agenda: str | None = None  # schedules each deal's next steps there (none: no activities)


@dataclass
class Stats:
    leads: int = 0
    converted: int = 0
    won: int = 0
    lost: int = 0
    orders_delivered: int = 0
    late_deliveries: int = 0
    rework: int = 0
    errors: list[str] = field(default_factory=list)


def tokens(settings: Settings) -> dict[str, dict[str, str]]:
    """Bearer headers per role, signed with the active key (12 hours)."""
    keys = SigningKeys.from_settings(settings)

    def header(user: str, *roles: str, team: str | None = None) -> dict[str, str]:
        token = issue_token(
            keys,
            user_id=user,
            roles=roles,
            team=team,
            ttl=timedelta(hours=12),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        return {"Authorization": f"Bearer {token}"}

    return {
        "marketing": header("u-mkt", "marketing"),
        "admin": header(ADMIN, "admin"),
        "production": header("u-prod", "production"),
        "auditor": header("u-audit", "auditor"),
    }


class Simulation:
    def __init__(
        self,
        endpoints: Endpoints,
        settings: Settings,
        *,
        seed: int = 2026,
        progress: Callable[[Stats], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.urls = endpoints
        self.settings = settings
        self.rng = random.Random(seed)
        self.auth = tokens(settings)
        self.stats = Stats()
        self.progress = progress or (lambda _: None)
        self.http = httpx.AsyncClient(timeout=30, transport=transport)
        # the directory answers the people step got: leads and deals wait for their replica to have them (0017)
        self.after: dict[str, str] = {}

    async def close(self) -> None:
        await self.http.aclose()

    async def call(self, method: str, url: str, role: str = "admin", **kw: Any) -> httpx.Response:
        r = await self.http.request(method, url, headers=self.auth[role] | kw.pop("headers", {}), **kw)
        if r.status_code >= 400:
            self.stats.errors.append(f"{method} {url.split('//')[1]}: {r.status_code} {r.text[:200]}")
        return r

    async def eventually(self, check: Callable[[], Awaitable[bool]], wait_s: float = 30) -> bool:
        """Wait for another service's reaction (it travels through Kafka)."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while asyncio.get_running_loop().time() < deadline:
            if await check():
                return True
            await asyncio.sleep(0.3)
        return False

    # ------------------------------------------------------------------ the directory
    async def people(self) -> None:
        """The teams and salespeople the journeys name, registered in the directory (once: a second run finds
        them there, 409). Their answers go with the first commands that name them (``X-Directory-After``)."""
        if self.urls.directory is None:
            return
        answers = []
        for team, name in TEAMS.items():
            r = await self.http.post(
                f"{self.urls.directory}/teams", json={"team_id": team, "name": name}, headers=self.auth["admin"]
            )
            answers.append(r)
        for user, team in PEOPLE:
            body = {
                "user_id": user,
                "name": f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}",
                "email": f"{user.removeprefix('u-')}@demo.pipelines.vn",
                "team_id": team,
                "roles": ["sales_manager"] if user == "u-mgr" else ["sales"],
                "reason": "the demo's sales team",
            }
            answers.append(await self.http.post(f"{self.urls.directory}/users", json=body, headers=self.auth["admin"]))
        # the demo's administrator: the first to get a password (`pipelines signin reset-link u-admin`, decision 0022)
        admin: dict[str, Any] = {"user_id": ADMIN, "name": "Quản Trị Viên", "email": "admin@demo.pipelines.vn"}
        admin |= {"team_id": "north", "roles": ["admin"], "reason": "the demo's administrator"}
        answers.append(await self.http.post(f"{self.urls.directory}/users", json=admin, headers=self.auth["admin"]))
        for r in answers:
            if r.status_code == 201:
                self.after[r.json()["stream_id"]] = f"{r.json()['stream_id']}@{r.json()['version']}"
            elif r.status_code != 409:
                self.stats.errors.append(f"POST {r.request.url.path}: {r.status_code} {r.text[:200]}")

    def waits(self, *streams: str) -> dict[str, str]:
        """``X-Directory-After`` for the directory answers of these streams the people step got."""
        seen = [self.after[s] for s in streams if s in self.after]
        return {"X-Directory-After": ", ".join(seen)} if seen else {}

    # ------------------------------------------------------------------ marketing
    async def campaigns(self) -> None:
        today = datetime.now(UTC).date()
        for name, channel, code in CAMPAIGNS:
            r = await self.call(
                "POST",
                f"{self.urls.leads}/campaigns",
                json={
                    "name": name,
                    "channel": channel,
                    "code": code,
                    "budget": {"amount": str(self.rng.randrange(50, 300) * 1_000_000), "currency": "VND"},
                },
            )
            if r.status_code != 201:
                continue
            cid = r.json()["id"]
            await self.call("POST", f"{self.urls.leads}/campaigns/{cid}/status", json={"status": "active"})
            for d in range(14):
                day = today - timedelta(days=d)
                await self.call(
                    "PUT",
                    f"{self.urls.leads}/campaigns/{cid}/spend/{day}",
                    json={
                        "amount": {"amount": str(self.rng.randrange(5, 40) * 100_000), "currency": "VND"},
                        "impressions": self.rng.randrange(2000, 30000),
                        "clicks": self.rng.randrange(20, 600),
                    },
                )

    async def targets(self) -> None:
        """This month's revenue target for each team (what the target plan works back from, seed S2)."""
        period = f"{datetime.now(ZoneInfo(self.settings.timezone)):%Y-%m}"  # the month as the business counts it
        for team in sorted({t for _, t in OWNERS}):
            target = uuid.uuid5(uuid.NAMESPACE_URL, f"pipelines-demo-target/{team}/{period}")
            amount = str(self.rng.randrange(5, 15) * 100_000_000)
            await self.call(
                "PUT",
                f"{self.urls.deals}/targets/{target}",
                json={"team_id": team, "period": period, "amount": {"amount": amount, "currency": "VND"}},
                headers=self.waits(f"directory-team-{team}"),
            )

    def person(self) -> dict[str, str]:
        name = f"{self.rng.choice(FIRST)} {self.rng.choice(MIDDLE)} {self.rng.choice(LAST)}"
        phone = f"09{self.rng.randrange(10**7, 10**8)}"
        return {
            "name": name,
            "phone": phone,
            "email": f"{uuid.UUID(int=self.rng.getrandbits(128)).hex[:10]}@example.vn",
            "company": self.rng.choice(COMPANIES),
        }

    async def capture(self) -> str | None:
        """A lead as one of the sources really delivers it (the ones whose credentials are set), else by hand."""
        person, campaign = self.person(), self.rng.choice(CAMPAIGNS)[2]
        kind, ids = self.rng.random(), sources.Ids(self.rng)
        lead = self.urls.leads
        if kind < 0.4 and self.settings.website_form_secret:
            r = await sources.website(self.http, lead, self.settings.website_form_secret, person, campaign, ids)
        elif kind < 0.55 and self.settings.facebook_app_secret and sources.graph_stub(self.settings):
            r = await sources.facebook(self.http, lead, self.settings, person, campaign, ids)
        elif kind < 0.62 and self.settings.google_ads_webhook_key:
            r = await sources.google_ads(self.http, lead, self.settings.google_ads_webhook_key, person, campaign, ids)
        elif kind < 0.7 and self.settings.ladipage_token:
            r = await sources.ladipage(self.http, lead, self.settings.ladipage_token, person, campaign)
        else:
            source = self.rng.choice(["referral", "manual"])
            r = await self.call(
                "POST",
                f"{lead}/leads",
                role="marketing",
                json={"source": source, "contact": person, "attribution": {"source": source, "campaign_id": campaign}},
            )
        if r.status_code not in (200, 201):
            self.stats.errors.append(f"capture: {r.status_code} {r.text[:200]}")
            return None
        self.stats.leads += 1
        answer = r.json()
        return str((answer["captured"][0] if "captured" in answer else answer)["id"])

    # ------------------------------------------------------------------ one lead's journey
    async def journey(self) -> None:
        lead = await self.capture()
        if lead is None:
            return
        leads, quality = f"{self.urls.leads}/leads/{lead}", self.rng.random()
        owner, team = self.rng.choice(OWNERS)
        wait = self.waits(f"directory-user-{owner}", f"directory-team-{team}")
        await self.call("POST", f"{leads}/assign", json={"owner_id": owner, "team_id": team}, headers=wait)
        if self.rng.random() < 0.8:
            await self.call("POST", f"{leads}/contact", json={"channel": self.rng.choice(["phone", "zalo", "email"])})
        await self.call("POST", f"{leads}/score", json={})
        if quality < 0.35:
            if self.rng.random() < 0.5:
                await self.call(
                    "POST", f"{leads}/disqualify", json={"reason": self.rng.choice(["no_budget", "wrong_fit"])}
                )
            return
        await self.call("POST", f"{leads}/qualify", json={"level": "mql"})
        if quality < 0.5:
            return
        await self.call("POST", f"{leads}/qualify", json={"level": "sql"})
        product, price = self.rng.choice(PRODUCTS)
        r = await self.call(
            "POST",
            f"{leads}/convert",
            json={
                "customer": self.rng.choice(COMPANIES),
                "title": product,
                "estimated_value": {"amount": str(price * 3), "currency": "VND"},
                "expected_close_date": str(datetime.now(UTC).date() + timedelta(days=self.rng.randint(10, 60))),
            },
        )
        if r.status_code != 200:
            return
        self.stats.converted += 1
        deal_id = await self.deal_of(lead)
        if deal_id:
            await self.sell(deal_id, product, price, quality, owner)

    async def deal_of(self, lead: str) -> str | None:
        """The deal the deals service opened for this lead (uuid5 of it), once it arrives."""
        from services.deals.events import deal_id_for_lead

        deal_id = str(deal_id_for_lead(uuid.UUID(lead)))

        async def opened() -> bool:
            return (
                await self.http.get(f"{self.urls.deals}/deals/{deal_id}", headers=self.auth["admin"])
            ).status_code == 200

        return deal_id if await self.eventually(opened) else None

    async def next_step(
        self, deal_id: str, owner: str, previous: str | None, *, outcome: str | None, then: bool
    ) -> str | None:
        """The deal's next step in the agenda, when it runs: ``previous`` completed with ``outcome`` (cancelled
        without one), then, if ``then``, a new one scheduled a few days ahead; its id."""
        if self.urls.agenda is None:
            return None
        agenda = f"{self.urls.agenda}/activities"
        if previous is not None:
            done = {"outcome": outcome} if outcome else {"reason": "the deal was lost"}
            await self.call("POST", f"{agenda}/{previous}/{'complete' if outcome else 'cancel'}", json=done)
        if not then:
            return None
        kind = self.rng.choice(list(NEXT_STEPS))
        due = datetime.now(UTC) + timedelta(days=self.rng.randint(0, 6), hours=self.rng.randint(1, 8))
        body = {
            "kind": kind,
            "subject_type": "deal",
            "subject_id": deal_id,
            "owner_id": owner,
            "title": NEXT_STEPS[kind],
            "due_at": due.isoformat(),
        }
        r = await self.call("POST", agenda, json=body, headers={"X-Subject-After": f"deal-{deal_id}@1"})
        return str(r.json()["id"]) if r.status_code == 201 else None

    async def sell(self, deal_id: str, product: str, price: int, quality: float, owner: str) -> None:
        deal = f"{self.urls.deals}/deals/{deal_id}"
        next_id = await self.next_step(deal_id, owner, None, outcome=None, then=True)
        stages = ["contacted", "needs_discussed", "quote_sent", "negotiation"]
        i = -1
        for _ in range(self.rng.randint(1, 5)):
            step = 2 if self.rng.random() < 0.15 else 1
            if i > 0 and self.rng.random() < 0.1:
                step = -1
            moved = max(0, min(len(stages) - 1, i + step))
            if moved != i:
                i = moved
                await self.call("POST", f"{deal}/move-stage", json={"stage_id": stages[i]})
                if self.rng.random() < 0.7:  # the step done, the next one booked
                    outcome = self.rng.choice(OUTCOMES)
                    next_id = await self.next_step(deal_id, owner, next_id, outcome=outcome, then=True)
            await self.call(
                "POST",
                f"{deal}/log-activity",
                json={"activity_type": self.rng.choice(["call", "meeting", "demo", "offer"]), "channel": "phone"},
            )
        qty = self.rng.randint(1, 6)
        await self.call(
            "POST",
            f"{deal}/change-lines",
            json={
                "lines": [
                    {"product": product, "quantity": str(qty), "unit_price": {"amount": str(price), "currency": "VND"}}
                ]
            },
        )
        if quality < 0.62:
            if self.rng.random() < 0.6:
                await self.call(
                    "POST",
                    f"{deal}/lose",
                    json={"reason": self.rng.choice(["giá cao", "chọn đối thủ"]), "competitor": "Rival Co"},
                )
                self.stats.lost += 1
                await self.next_step(deal_id, owner, next_id, outcome=None, then=False)
            elif self.rng.random() < 0.3:  # a stalled deal whose last step was done and none booked
                await self.next_step(deal_id, owner, next_id, outcome=self.rng.choice(OUTCOMES), then=False)
            return  # the rest stall
        # a rushed customer needs it the day the deal is won (a promise is never in the past: the win refuses it)
        rush = self.rng.random() < 0.2
        today = datetime.now(ZoneInfo(self.settings.timezone)).date()
        due = today + timedelta(days=0 if rush else self.rng.randint(14, 40))
        await self.call("POST", f"{deal}/win", json={"requested_delivery_date": str(due)})
        self.stats.won += 1
        await self.next_step(deal_id, owner, next_id, outcome="hợp đồng đã ký", then=False)
        await self.build(deal_id, product, qty, due=due, rush=rush)

    # ------------------------------------------------------------------ production
    async def build(self, deal_id: str, product: str, qty: int, *, due: date, rush: bool) -> None:
        found: list[str] = []

        async def created() -> bool:  # the order the won deal made, once production has reacted to it
            r = await self.http.get(f"{self.urls.production}/orders/for-deal/{deal_id}", headers=self.auth["admin"])
            if r.status_code == 200:
                found.append(r.json()["order_id"])
            return bool(found)

        if not await self.eventually(created):
            return
        order = f"{self.urls.production}/orders/{found[0]}"
        today = datetime.now(UTC).date()
        materials = [{"component": "thép không gỉ", "quantity": str(qty)}]
        steps: list[tuple[str, dict[str, Any]]] = [
            ("plan", {"planned_start": str(today), "planned_end": str(today + timedelta(days=14))}),
            ("request-materials", {"materials": materials}),
            ("receive-materials", {"materials": materials}),
            ("start-assembly", {}),
            ("record-output", {"product": product, "quantity": str(qty)}),
            ("complete-assembly", {}),
        ]
        if self.rng.random() < 0.25:
            self.stats.rework += 1
            steps += [
                (
                    "record-inspection",
                    {"passed": False, "inspected_quantity": str(qty), "defects": [{"code": "xước sơn", "quantity": 1}]},
                ),
                ("complete-rework", {"quantity": "1"}),
            ]
        steps += [("record-inspection", {"passed": True, "inspected_quantity": str(qty)}), ("pack", {"packages": 1})]
        if not rush and self.rng.random() < 0.15:  # a rushed promise is not moved
            steps.append(
                ("change-due-date", {"due_date": str(today + timedelta(days=45)), "reason": "thiếu linh kiện"})
            )
        for path, body in steps:
            if (await self.call("POST", f"{order}/{path}", role="production", json=body)).status_code != 200:
                return
        if self.rng.random() < 0.7:
            r = await self.call(
                "POST", f"{order}/ship", role="production", json={"carrier": "GHN", "quantity": str(qty)}
            )
            if r.status_code == 200:
                shipments = (await self.call("GET", order, role="production")).json()["shipments"]
                await self.call(
                    "POST",
                    f"{order}/confirm-delivery",
                    role="production",
                    json={"shipment_id": shipments[-1]["shipment_id"]},
                )
                self.stats.orders_delivered += 1
                self.stats.late_deliveries += datetime.now(ZoneInfo(self.settings.timezone)).date() > due

    async def run(self, leads: int, rate: float) -> Stats:
        """``leads`` journeys, starting ``rate`` per second, a few at a time."""
        await self.people()
        await self.campaigns()
        await self.targets()
        running: set[asyncio.Task[None]] = set()
        for _ in range(leads):
            task = asyncio.create_task(self.journey())
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(lambda _: self.progress(self.stats))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*running)
        return self.stats
