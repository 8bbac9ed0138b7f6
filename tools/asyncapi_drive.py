"""Every event type the services can still produce, driven through their HTTP APIs on a running local stack, so that
``python -m tools.asyncapi_examples`` finds a real message of each for the AsyncAPI documents (decision 0024).

``pipelines demo`` (its history and live traffic) produces about half of the types; this drives the rest, each
through the route a user would take: the directory's teams, users (profile, roles, team, deactivated, reactivated,
erased), organisations and people (changed, reassigned, merged, erased), a rate, an import job (``POST /imports``
with a HubSpot export); the leads' campaigns and leads (contact details, engagement, segments, nurture, offers,
trials, duplicates and merges, recycling, erasure, a late first contact's alert raised and cleared); the deals'
quotes, probabilities, reassignment, reopening, follow-ups and feedback, a contact erased; production's designs,
holds, shortages, cancellations, an erased contact, demand plans; the agenda's rescheduled and reassigned
activities and an erased subject's notes. Every name it makes carries this run's tag, so a second run makes new
ones.

    eval "$(scripts/stack env)"; .venv/bin/pipelines services up   # PIPELINES_ALERT_SCAN_SECONDS=1 for the alert
    .venv/bin/python -m tools.asyncapi_drive
    .venv/bin/python -m tools.asyncapi_examples && make schemas
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared.ops.settings import Settings
from shared.ops.stack import ROOT
from tools import local
from tools.simulate import tokens

VND = "VND"
HUBSPOT_COMPANIES = ROOT / "tests" / "fixtures" / "imports" / "hubspot" / "companies.csv"


class DriveError(RuntimeError):
    """A service refused a step: the route, its status and its problem."""


def money(amount: int) -> dict[str, str]:
    return {"amount": str(amount), "currency": VND}


def line(product: str, quantity: int, price: int) -> dict[str, Any]:
    return {"product": product, "quantity": str(quantity), "unit_price": money(price)}


class Driver:
    def __init__(self, settings: Settings, http: httpx.AsyncClient, tag: str) -> None:
        base = f"http://{settings.api_host}"
        self.url = {s: f"{base}:{settings.port(s)}" for s in ("leads", "deals", "production", "directory", "agenda")}
        self.auth = tokens(settings)
        self.http = http
        self.tag = tag
        self.after: list[str] = []  # the directory's answers the other services' replicas wait for
        self.today = datetime.now(UTC).date()
        self.steps = 0

    def user(self, name: str) -> str:
        return f"u-{self.tag}-{name}"

    def team(self, name: str) -> str:
        return f"{self.tag}-{name}"

    async def call(
        self, method: str, service: str, path: str, body: Any = None, *, role: str = "admin", **kw: Any
    ) -> dict[str, Any]:
        headers = self.auth[role] | kw.pop("headers", {})
        if service != "directory" and self.after:
            headers["X-Directory-After"] = ", ".join(self.after[-8:])
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            r = await self.http.request(method, self.url[service] + path, json=body, headers=headers, **kw)
            lagging = r.status_code == 422 and '"rule":"unknown_' in r.text  # a replica not caught up yet
            if not lagging or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
        if r.status_code >= 400:
            raise DriveError(f"{method} {service}{path}: {r.status_code} {r.text[:500]}")
        self.steps += 1
        answer: dict[str, Any] = r.json() if r.content else {}
        if service == "directory" and "stream_id" in answer and "version" in answer:
            self.after.append(f"{answer['stream_id']}@{answer['version']}")
        return answer

    async def eventually(self, check: Callable[[], Awaitable[bool]], what: str, wait_s: float = 90) -> None:
        deadline = asyncio.get_running_loop().time() + wait_s
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                raise DriveError(f"waited {wait_s:.0f} s for {what}")
            await asyncio.sleep(0.5)

    # ------------------------------------------------------------------ the directory
    async def people_and_teams(self) -> None:
        north, south, old = self.team("north"), self.team("south"), self.team("old")
        for team, name in ((north, "Ví dụ Bắc"), (south, "Ví dụ Nam"), (old, "Ví dụ cũ")):
            await self.call("POST", "directory", "/teams", {"team_id": team, "name": name})
        await self.call("PUT", "directory", f"/teams/{north}", {"name": "Ví dụ Miền Bắc", "reason": "tên đầy đủ"})
        await self.call("POST", "directory", f"/teams/{old}/close", {"reason": "gộp vào miền Bắc"})
        for name, team, roles in (
            ("ana", north, ["sales"]),
            ("bao", south, ["sales"]),
            ("cuong", north, ["sales"]),
            ("dao", north, ["sales"]),
        ):
            body = {"user_id": self.user(name), "name": f"Nhân viên {name.title()}", "team_id": team, "roles": roles}
            body |= {"email": f"{name}.{self.tag}@example.vn", "reason": "the examples' sales team"}
            await self.call("POST", "directory", "/users", body)
        ana, bao, cuong, dao = (self.user(n) for n in ("ana", "bao", "cuong", "dao"))
        profile = {"name": "Nguyễn Thị Ana", "email": f"ana.{self.tag}@example.vn", "language": "vi"}
        await self.call("PUT", "directory", f"/users/{ana}/profile", profile | {"reason": "họ tên đầy đủ"})
        promote = {"roles": ["sales", "sales_manager"], "reason": "lên quản lý"}
        await self.call("PUT", "directory", f"/users/{cuong}/roles", promote)
        await self.call("PUT", "directory", f"/users/{cuong}/team", {"team_id": south, "reason": "chuyển vào Nam"})
        await self.call("POST", "directory", f"/users/{cuong}/deactivate", {"handed_to": bao, "reason": "nghỉ phép"})
        await self.call("POST", "directory", f"/users/{cuong}/reactivate", {"reason": "đi làm lại"})
        await self.call("POST", "directory", f"/users/{dao}/deactivate", {"handed_to": ana, "reason": "nghỉ việc"})
        await self.call("POST", "directory", f"/users/{dao}/erase", {"reason": "yêu cầu xoá dữ liệu"})
        rate = {"effective_from": str(self.today), "per_vnd": "25400", "reason": "tỷ giá tháng này"}
        await self.call("PUT", "directory", "/rates/USD", rate)

    async def customers(self) -> None:
        ana, bao = self.user("ana"), self.user("bao")
        north, south = self.team("north"), self.team("south")
        address = {"line": "12 Hàng Bài", "province": "ha-noi"}
        body = {"name": f"Nhà hàng Sen {self.tag}", "owner_id": ana, "team_id": north, "industry": "horeca"}
        org = (await self.call("POST", "directory", "/organisations", body | {"addresses": [address]}))["id"]
        change = {"name": f"Nhà hàng Sen Vàng {self.tag}", "industry": "horeca", "reason": "tên trên hoá đơn"}
        await self.call("PUT", "directory", f"/organisations/{org}", change | {"tax_code": self.tax_code()})
        moved = {"owner_id": bao, "team_id": south, "reason": "khách chuyển vào Nam"}
        await self.call("POST", "directory", f"/organisations/{org}/reassign", moved)
        twin = (await self.call("POST", "directory", "/organisations", body | {"name": f"Sen Vang {self.tag}"}))["id"]
        await self.call("POST", "directory", f"/organisations/{twin}/merge", {"into": org, "reason": "trùng"})
        person = {"name": "Trần Văn Bình", "organisation_id": org, "owner_id": ana, "team_id": north}
        person |= {"phones": ["0912345678"], "emails": [f"binh.{self.tag}@example.vn"]}
        first = (await self.call("POST", "directory", "/people", person))["id"]
        changed = {k: v for k, v in person.items() if k not in ("owner_id", "team_id")} | {"reason": "đủ tên"}
        await self.call("PUT", "directory", f"/people/{first}", changed | {"name": "Trần Văn Bình An"})
        await self.call("POST", "directory", f"/people/{first}/reassign", moved)
        twin_person = person | {"phones": ["0912345679"], "emails": []}
        second = (await self.call("POST", "directory", "/people", twin_person))["id"]
        await self.call("POST", "directory", f"/people/{second}/merge", {"into": first, "reason": "trùng người"})
        third = (await self.call("POST", "directory", "/people", person | {"name": "Lê Thị Cúc", "phones": []}))["id"]
        await self.call("POST", "directory", f"/people/{third}/erase", {"reason": "yêu cầu xoá dữ liệu"})

    def tax_code(self) -> str:
        """A tax code no earlier run claimed: nine random digits and their check digit (the directory's rule:
        10 − Σ weight·digit mod 11; a 10 is no digit, so those nine are drawn again)."""
        while True:
            first = f"{uuid.uuid4().int % 10**9:09d}"
            digit = 10 - sum(int(d) * w for d, w in zip(first, (31, 29, 23, 19, 17, 13, 7, 5, 3), strict=True)) % 11
            if digit < 10:
                return f"{first}{digit}"

    async def import_job(self) -> None:
        params = {"source": "hubspot", "file_name": "companies.csv", "owner": self.user("ana")}
        params["owner_team"] = self.team("north")
        job = await self.call(
            "POST", "directory", "/imports", None, params=params, content=HUBSPOT_COMPANIES.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )  # fmt: skip

        async def done() -> bool:
            state = await self.call("GET", "directory", f"/imports/{job['id']}")
            if state["state"] == "failed":
                raise DriveError(f"the import failed: {state}")
            return bool(state["state"] == "done")

        await self.eventually(done, "the import job")

    # ------------------------------------------------------------------ leads
    async def lead(self, name: str, phone: str, **extra: Any) -> str:
        contact = {"name": name, "phone": phone, "email": f"{phone}.{self.tag}@example.vn", "company": "Quán Mộc"}
        body = {"source": "manual", "contact": contact, "attribution": {"source": "manual"}} | extra
        return str((await self.call("POST", "leads", "/leads", body))["id"])

    async def leads(self) -> None:
        campaign = {"name": f"Ví dụ {self.tag}", "channel": "facebook", "budget": money(50_000_000)}
        cid = (await self.call("POST", "leads", "/campaigns", campaign))["id"]
        await self.call("PUT", "leads", f"/campaigns/{cid}/budget", {"budget": money(80_000_000)})
        phone = f"09{uuid.uuid4().int % 10**8:08d}"
        first = await self.lead("Phạm Thu Hà", phone)
        at = f"/leads/{first}"
        await self.call("POST", "leads", f"{at}/assign", {"owner_id": self.user("ana"), "team_id": self.team("north")})
        contact = {"name": "Phạm Thu Hà", "phone": phone, "email": f"ha.{self.tag}@example.vn", "company": "Quán Mộc"}
        await self.call("POST", "leads", f"{at}/update-contact", {"contact": contact, "reason": "email mới"})
        await self.call("POST", "leads", f"{at}/record-engagement", {"kind": "email_open", "channel": "email"})
        await self.call("POST", "leads", f"{at}/segment", {"segments": ["horeca", "ha-noi"]})
        await self.call("POST", "leads", f"{at}/start-nurture", {"sequence_id": "chao-mung"})
        await self.call("POST", "leads", f"{at}/record-nurture-email", {"message_id": f"m-{self.tag}-1", "step": 1})
        await self.call("POST", "leads", f"{at}/stop-nurture", {"reason": "khách đã trả lời"})
        offer = {"offer_id": "tet-10", "expires_on": str(self.today + timedelta(days=14))}
        await self.call("POST", "leads", f"{at}/extend-offer", offer)
        trial = {"product": "Tủ đông 500L", "ends_on": str(self.today + timedelta(days=7))}
        await self.call("POST", "leads", f"{at}/start-trial", trial)
        twin = await self.lead("Phạm T. Hà", phone)  # the same phone: a duplicate
        await self.call("POST", "leads", f"{at}/merge", {"other_lead_id": twin})
        third = await self.lead("Võ Minh Quân", f"08{uuid.uuid4().int % 10**8:08d}")
        await self.call("POST", "leads", f"/leads/{third}/disqualify", {"reason": "no_budget"})
        await self.call("POST", "leads", f"/leads/{third}/recycle", {"reason": "có ngân sách quý sau"})

    async def converted_lead(self) -> None:
        """A lead converted: the deals service opens its deal, the directory links it to a customer it registers."""
        lead = await self.lead("Ngô Thị Mai", f"05{uuid.uuid4().int % 10**8:08d}")
        at = f"/leads/{lead}"
        await self.call("POST", "leads", f"{at}/assign", {"owner_id": self.user("ana"), "team_id": self.team("north")})
        await self.call("POST", "leads", f"{at}/contact", {"channel": "zalo"})
        await self.call("POST", "leads", f"{at}/score", {})
        await self.call("POST", "leads", f"{at}/qualify", {"level": "mql"})
        await self.call("POST", "leads", f"{at}/qualify", {"level": "sql"})
        convert = {
            "customer": f"Nhà hàng Mai {self.tag}",
            "title": "Tủ mát 2 cánh",
            "estimated_value": money(40_000_000),
        }
        await self.call("POST", "leads", f"{at}/convert", convert)

    async def erased_lead(self) -> None:
        """A lead with an activity whose notes are sealed under its key, then erased: the agenda records it."""
        lead = await self.lead("Đặng Văn Nam", f"07{uuid.uuid4().int % 10**8:08d}")
        activity = await self.activity("lead", lead, notes="Anh Nam muốn gọi sau 17 giờ")
        await self.call("POST", "leads", f"/leads/{lead}/erase", {"reason": "khách yêu cầu xoá dữ liệu"})

        async def noted() -> bool:
            history = await self.call("GET", "agenda", f"/activities/{activity}/history")
            return "ActivityNotesErased" in str(history)

        await self.eventually(noted, "the agenda's ActivityNotesErased")

    async def late_contact(self) -> None:
        """A lead captured three hours ago nobody has contacted: its alert is raised, then cleared by a contact."""
        captured = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
        lead = await self.lead("Bùi Khánh Linh", f"03{uuid.uuid4().int % 10**8:08d}", captured_at=captured)

        async def alert(active: bool) -> bool:
            alerts = await self.call("GET", "leads", "/alerts", params={"active": str(active).lower(), "limit": 500})
            return f"lead-{lead}" in str(alerts)

        async def raised() -> bool:
            return await alert(True)

        async def cleared() -> bool:
            return not await alert(True) and await alert(False)

        await self.eventually(raised, "the lead's alert")
        await self.call("POST", "leads", f"/leads/{lead}/contact", {"channel": "phone"})
        await self.eventually(cleared, "the lead's alert cleared")

    # ------------------------------------------------------------------ deals
    async def deal(self, customer: str, **extra: Any) -> str:
        body: dict[str, Any] = {"customer": customer, "title": "Tủ đông 500L", "owner_id": self.user("ana")}
        body["team_id"] = self.team("north")
        body |= {"value": money(60_000_000), "contact": {"name": "Hoàng Quốc Dũng", "phone": "0987654321"}}
        body["contact_id"] = f"contact-{uuid.uuid4()}"  # the contact's data subject (erase-contact forgets it)
        return str((await self.call("POST", "deals", "/deals", body | extra))["id"])

    async def deals(self) -> str:
        deal = await self.deal(f"Khách sạn Biển Xanh {self.tag}")
        at = f"/deals/{deal}"
        await self.call("POST", "deals", f"{at}/change-value", {"value": money(75_000_000), "reason": "thêm tủ"})
        close = {"expected_close_date": str(self.today + timedelta(days=20)), "reason": "khách hẹn cuối tháng"}
        await self.call("POST", "deals", f"{at}/change-close-date", close)
        needs = {"needs": ["tủ đông", "lắp đặt"], "budget": money(80_000_000)}
        await self.call("POST", "deals", f"{at}/record-needs", needs | {"decision_date": str(self.today)})
        await self.call("POST", "deals", f"{at}/override-probability", {"probability": "0.7", "reason": "đã gặp"})
        await self.call("POST", "deals", f"{at}/clear-probability-override", {"reason": "theo giai đoạn"})
        moved = {"owner_id": self.user("bao"), "team_id": self.team("south"), "reason": "khách ở phía Nam"}
        await self.call("POST", "deals", f"{at}/reassign", moved)
        first, second, until = str(uuid.uuid4()), str(uuid.uuid4()), str(self.today + timedelta(days=10))
        lines = [line("Tủ đông 500L", 3, 18_000_000)]
        await self.call("POST", "deals", f"{at}/send-quote", {"quote_id": first, "lines": lines, "valid_until": until})
        revised = {"quote_id": first, "lines": [line("Tủ đông 500L", 3, 17_000_000)], "valid_until": until}
        await self.call("POST", "deals", f"{at}/revise-quote", revised | {"reason": "giảm giá"})
        await self.call("POST", "deals", f"{at}/reject-quote", {"quote_id": first, "reason": "giá cao"})
        await self.call("POST", "deals", f"{at}/send-quote", {"quote_id": second, "lines": lines, "valid_until": until})
        await self.call("POST", "deals", f"{at}/accept-quote", {"quote_id": second})
        await self.call("POST", "deals", f"{at}/win", {"quote_id": second})
        follow = str(uuid.uuid4())
        due = {"follow_up_id": follow, "due_on": str(self.today + timedelta(days=7))}
        await self.call("POST", "deals", f"{at}/start-follow-up", due)
        await self.call("POST", "deals", f"{at}/record-follow-up-contact", {"follow_up_id": follow, "channel": "phone"})
        feedback = {"follow_up_id": follow, "csat": 5, "nps": 9, "comment": "giao đúng hẹn"}
        await self.call("POST", "deals", f"{at}/record-feedback", feedback)
        await self.call("POST", "deals", f"{at}/complete-follow-up", {"follow_up_id": follow, "outcome": "hài lòng"})
        lost = await self.deal(f"Siêu thị Bình An {self.tag}")
        await self.call("POST", "deals", f"/deals/{lost}/lose", {"reason": "price", "competitor": "Hòa Phát"})
        await self.call("POST", "deals", f"/deals/{lost}/reopen", {"reason": "khách gọi lại"})
        erased = await self.deal(f"Tiệm bánh Hồng Phát {self.tag}")
        await self.call("POST", "deals", f"/deals/{erased}/erase-contact", {"reason": "khách yêu cầu xoá"})
        return lost  # reopened: open again, so the agenda schedules on it

    # ------------------------------------------------------------------ production
    async def order(self, customer: str) -> str:
        body: dict[str, Any] = {"customer": customer, "due_date": str(self.today + timedelta(days=30))}
        body |= {"lines": [{"product": "Tủ đông 500L", "quantity": "2"}], "contact_id": f"person:{self.tag}"}
        return str((await self.call("POST", "production", "/orders", body, role="production"))["id"])

    async def production(self) -> None:
        order = await self.order(f"Nhà hàng Sen {self.tag}")
        at = f"/orders/{order}"
        start, end = str(self.today + timedelta(days=2)), str(self.today + timedelta(days=20))
        for step, body in (
            ("plan", {"planned_start": start, "planned_end": end, "work_centre": "xưởng 1"}),
            ("start-design", {}),
            ("approve-design", {}),
            ("hold", {"reason": "chờ khách xác nhận màu"}),
            ("resume", {"reason": "khách đã xác nhận"}),
            (
                "request-materials",
                {"materials": [{"component": "máy nén", "quantity": "2"}], "supplier": "Điện lạnh A"},
            ),
            ("report-shortage", {"component": "máy nén", "quantity_short": "2"}),
        ):
            await self.call("POST", "production", f"{at}/{step}", body, role="production")
        cancelled = await self.order(f"Quán cà phê Mộc {self.tag}")
        await self.call("POST", "production", f"/orders/{cancelled}/cancel", {"reason": "khách huỷ"}, role="production")
        erased = await self.order(f"Tiệm bánh {self.tag}")
        reason = {"reason": "khách yêu cầu xoá"}
        await self.call("POST", "production", f"/orders/{erased}/erase-contact", reason, role="production")
        period = f"{self.today + timedelta(days=62):%Y-%m}"
        product = f"Tủ mát {self.tag}"
        for body in (
            {"action": "forecast", "quantity": "40", "method": "manual"},
            {"action": "approve", "quantity": "40"},
            {"action": "revise", "quantity": "45", "reason": "đơn Tết tăng"},
        ):
            await self.call("PUT", "production", f"/plans/{product}/{period}", body, role="production")

    # ------------------------------------------------------------------ the agenda
    async def activity(
        self, subject_type: str, subject: str, *, notes: str | None = None, due_at: datetime | None = None
    ) -> str:
        due = due_at or datetime.now(UTC) + timedelta(days=2)
        body = {"kind": "phone", "subject_type": subject_type, "subject_id": subject, "title": "Gọi lại khách"}
        body |= {"owner_id": self.user("ana"), "due_at": due.isoformat()}
        if notes:
            body["notes"] = notes
        return str((await self.call("POST", "agenda", "/activities", body))["id"])

    async def agenda(self, deal: str) -> None:
        """An activity rescheduled and handed over; one due in five minutes, whose reminder the notifier sends at
        once (to a closed SMTP port, for DeliveryFailed: PIPELINES_SMTP_PORT)."""
        await self.activity("deal", deal, due_at=datetime.now(UTC) + timedelta(minutes=5))
        activity = await self.activity("deal", deal, notes="Hỏi về lịch lắp đặt")
        due = {"due_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(), "reason": "khách bận"}
        await self.call("POST", "agenda", f"/activities/{activity}/reschedule", due)
        moved = {"owner_id": self.user("bao"), "team_id": self.team("south"), "reason": "khách ở phía Nam"}
        await self.call("POST", "agenda", f"/activities/{activity}/reassign", moved)

    async def adopted(self) -> None:
        """The deals without a customer in the directory (none came from a conversion) adopted by an admin: each
        linked to an organisation found or made (CustomerLinked, ``matched_by`` adopted)."""
        adopt = {"reason": "khách của các deal cũ", "team_id": self.team("north")}
        await self.call("POST", "directory", "/customers/adopt", adopt)

    async def run(self) -> None:
        await self.people_and_teams()
        await self.customers()
        await self.import_job()
        await self.leads()
        await self.converted_lead()
        await self.erased_lead()
        deal = await self.deals()
        await self.agenda(deal)
        await self.adopted()
        await self.production()
        await self.late_contact()


async def drive(settings: Settings) -> int:
    tag = uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(timeout=30) as http:
        driver = Driver(settings, http, tag)
        await driver.run()
    return driver.steps


def main(argv: list[str]) -> int:
    try:
        steps = asyncio.run(drive(local.load_settings()))
    except DriveError as exc:
        print(f"asyncapi_drive: {exc}", file=sys.stderr)
        return 1
    print(f"{steps} requests answered")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
