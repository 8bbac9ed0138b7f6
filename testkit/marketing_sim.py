"""A generated marketing history: campaigns with daily spend, thousands of leads from several sources moving
through the funnel (or not), some won. Plain data; ``command`` turns an action into the leads service's command."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

START = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
DAYS = 120
SOURCES = ["website_form", "landing_page", "facebook_lead_ads", "google_ads_lead_form", "referral"]
SEGMENTS = ["hộ kinh doanh", "doanh nghiệp nhỏ", "tech 20-35", "khách cũ"]
CAMPAIGNS = [
    ("c-tet", "facebook"),
    ("c-he", "google_ads"),
    ("c-web", "website"),
    ("c-ladi", "landing_page"),
    ("c-zalo", "zalo"),
]


@dataclass(frozen=True)
class Action:
    at: datetime
    kind: str
    target: uuid.UUID
    params: dict[str, Any] = field(default_factory=dict)


def generate(n_leads: int, seed: int = 11) -> list[Action]:
    rng = random.Random(seed)
    actions: list[Action] = []
    for code, channel in CAMPAIGNS:
        cid = uuid.UUID(int=rng.getrandbits(128))
        actions.append(
            Action(
                START - timedelta(days=1),
                "campaign",
                cid,
                {"code": code, "channel": channel, "budget": rng.randrange(200, 900) * 1_000_000},
            )
        )
        actions.append(Action(START - timedelta(hours=12), "launch", cid))
        for d in range(DAYS):
            if rng.random() < 0.9:
                day = (START + timedelta(days=d)).date()
                at = START + timedelta(days=d, hours=20)
                spend: dict[str, Any] = {
                    "day": day,
                    "amount": rng.randrange(1, 20) * 100_000,
                    "impressions": rng.randrange(1000, 20000),
                    "clicks": rng.randrange(10, 400),
                }
                actions.append(Action(at, "spend", cid, spend))
                if rng.random() < 0.05:
                    fixed = spend | {"amount": spend["amount"] + 50_000, "reason": "invoice"}
                    actions.append(Action(at + timedelta(hours=1), "spend", cid, fixed))
    for n in range(n_leads):
        lead = uuid.UUID(int=rng.getrandbits(128))
        at = START + timedelta(days=rng.uniform(0, DAYS - 5))
        source = SOURCES[n % len(SOURCES)] if n < len(SOURCES) * 4 else rng.choice(SOURCES)
        campaign: str | None = rng.choice([c for c, _ in CAMPAIGNS] + [None])
        actions.append(
            Action(
                at, "capture", lead, {"source": source, "code": campaign, "external": f"x-{n}", "phone": f"09{n:08d}"}
            )
        )
        quality = rng.random()
        if rng.random() < 0.6:
            segments = rng.sample(SEGMENTS, rng.randint(1, 2))
            actions.append(Action(at + timedelta(minutes=1), "segment", lead, {"segments": segments}))
        if rng.random() < 0.7:
            at += timedelta(minutes=rng.uniform(3, 60 * 48))
            actions.append(Action(at, "contact", lead))
        if rng.random() < 0.2:
            at += timedelta(hours=rng.uniform(1, 48))
            actions.append(Action(at, "nurture", lead))
            for step in (1, 2):
                message = f"m-{n}-{step}"
                actions.append(
                    Action(at + timedelta(minutes=10 * step), "email", lead, {"step": step, "message": message})
                )
                if rng.random() < 0.5:
                    actions.append(Action(at + timedelta(minutes=10 * step + 3), "open", lead, {"message": message}))
                    if rng.random() < 0.4:
                        actions.append(
                            Action(at + timedelta(minutes=10 * step + 4), "click", lead, {"message": message})
                        )
        if quality < 0.45:
            if rng.random() < 0.5:
                at += timedelta(days=rng.uniform(0.5, 10))
                actions.append(
                    Action(at, "disqualify", lead, {"reason": rng.choice(["no_budget", "wrong_fit", "spam"])})
                )
            continue
        at += timedelta(days=rng.uniform(0.5, 7))
        direct_sql = rng.random() < 0.25
        actions.append(Action(at, "qualify", lead, {"level": "sql" if direct_sql else "mql"}))
        if quality < 0.6:
            continue
        if not direct_sql:
            at += timedelta(days=rng.uniform(0.5, 7))
            actions.append(Action(at, "qualify", lead, {"level": "sql"}))
        if quality < 0.72:
            continue
        at += timedelta(days=rng.uniform(0.5, 5))
        actions.append(Action(at, "convert", lead, {"owner": rng.choice(["u-an", "u-binh", "u-chi"])}))
        if quality < 0.85:
            if rng.random() < 0.5:
                at += timedelta(days=rng.uniform(3, 20))
                actions.append(Action(at, "lost", lead, {"deal": uuid.uuid5(lead, "deal")}))
            continue
        at += timedelta(days=rng.uniform(3, 30))
        actions.append(
            Action(at, "won", lead, {"deal": uuid.uuid5(lead, "deal"), "value": rng.randrange(5, 150) * 1_000_000})
        )
    actions.sort(key=lambda a: (a.at, a.target.int, a.kind))
    return actions


def command(action: Action) -> tuple[str, Any, date | None]:
    """("lead" | "campaign", the command, the spend day) for the leads service."""
    from services.leads import domain
    from services.leads.events import Attribution, LeadContact
    from shared.core.money import Money

    p = action.params
    match action.kind:
        case "campaign":
            return (
                "campaign",
                domain.CreateCampaign(
                    name=p["code"], channel=p["channel"], code=p["code"], budget=Money.of(p["budget"])
                ),
                None,
            )
        case "launch":
            return "campaign", domain.ChangeCampaignStatus(status="active"), None
        case "spend":
            return (
                "campaign",
                domain.RecordSpend(
                    amount=Money.of(p["amount"]),
                    impressions=p["impressions"],
                    clicks=p["clicks"],
                    correction_reason=p.get("reason"),
                ),
                p["day"],
            )
        case "capture":
            return (
                "lead",
                domain.CaptureLead(
                    source=p["source"],
                    external_id=p["external"],
                    contact=LeadContact(phone=p["phone"]),
                    attribution=Attribution(source=p["source"], campaign_id=p["code"]),
                    captured_at=action.at,
                ),
                None,
            )
        case "contact":
            return "lead", domain.RecordContact(channel="phone"), None
        case "nurture":
            return "lead", domain.StartNurture(sequence_id="welcome"), None
        case "email":
            return "lead", domain.RecordNurtureEmail(step=p["step"], message_id=p["message"]), None
        case "open" | "click":
            kind = "email_open" if action.kind == "open" else "email_click"
            return "lead", domain.RecordEngagement(kind=kind, asset_id=p["message"], channel="email"), None
        case "segment":
            return "lead", domain.Segment(segments=tuple(p["segments"])), None
        case "disqualify":
            return "lead", domain.Disqualify(reason=p["reason"]), None
        case "qualify":
            return "lead", domain.Qualify(level=p["level"]), None
        case "convert":
            return "lead", domain.Convert(customer="Khách", title="Cơ hội", owner_id=p["owner"]), None
        case "won":
            return (
                "lead",
                domain.RecordOutcome(deal_id=p["deal"], won=True, value=Money.of(p["value"]), at=action.at),
                None,
            )
        case "lost":
            return "lead", domain.RecordOutcome(deal_id=p["deal"], won=False, reason="price", at=action.at), None
    raise AssertionError(action.kind)
