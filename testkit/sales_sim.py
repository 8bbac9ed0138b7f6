"""A generated sales history: deals that win, lose, stall, skip and go back, with activities and re-dated closes.

``generate`` makes the plan as plain data (times, deals, actions); ``drive`` plays it through the deals
service with its clock set to each action's time. The oracle (tests/oracle/sales.py) reads the same plain
data and computes the read models' figures itself.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

# the default pipeline as the plan knows it (stage id, order)
OPEN_STAGES = [
    ("target_identified", 10),
    ("contacted", 20),
    ("needs_discussed", 30),
    ("quote_sent", 40),
    ("negotiation", 50),
]
OWNERS = {"u-an": "north", "u-binh": "north", "u-chi": "north", "u-dung": "south", "u-giang": "south", "u-hoa": "south"}
PRODUCTS = [
    ("Tủ lạnh 300L", 9_000_000),
    ("Máy lạnh 2HP", 15_000_000),
    ("Máy giặt 9kg", 7_500_000),
    ("Bếp từ đôi", 4_200_000),
    ("Lò vi sóng", 2_100_000),
]
ACTIVITIES = [
    ("call", "phone"),
    ("email", "email"),
    ("meeting", "meeting"),
    ("demo", "demo"),
    ("free_trial", "free_trial"),
    ("offer", "offer"),
]
LOST_REASONS = ["giá cao", "chọn đối thủ", "chưa có ngân sách", "không liên lạc được"]
COMPETITORS = [None, "Rival Co", "Điện máy Xanh"]
START = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
DAYS = 150


@dataclass(frozen=True)
class Action:
    at: datetime
    deal: uuid.UUID
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


def generate(n_deals: int, seed: int = 7) -> list[Action]:
    rng = random.Random(seed)
    actions: list[Action] = []
    end = START + timedelta(days=DAYS)
    for _ in range(n_deals):
        deal = uuid.UUID(int=rng.getrandbits(128))
        at = START + timedelta(days=rng.uniform(0, DAYS - 30), minutes=rng.randrange(0, 600))
        owner = rng.choice(sorted(OWNERS))
        lines = [(p, rng.randint(1, 5), price) for p, price in rng.sample(PRODUCTS, rng.randint(1, 2))]
        close = (at + timedelta(days=rng.randint(15, 70))).date()
        actions.append(
            Action(
                at,
                deal,
                "open",
                {
                    "owner": owner,
                    "team": OWNERS[owner],
                    "lines": lines,
                    "close": close,
                    "source": rng.choice(["website", "facebook", "referral"]),
                },
            )
        )
        stage, status, overridden, reopened = 0, "open", False, False
        win_bias = rng.random()
        while True:
            at += timedelta(days=rng.uniform(0.5, 14), minutes=rng.randrange(1, 300))
            if at >= end:
                break
            r = rng.random()
            if status == "lost":
                if not reopened and r < 0.15:
                    reopened = True
                    status, stage = "open", rng.randrange(0, 3)
                    actions.append(Action(at, deal, "reopen", {"stage": OPEN_STAGES[stage][0]}))
                    continue
                break
            if r < 0.30:
                kind, channel = rng.choice(ACTIVITIES)
                actions.append(Action(at, deal, "activity", {"type": kind, "channel": channel}))
            elif r < 0.58 and stage < len(OPEN_STAGES) - 1:
                step = 2 if rng.random() < 0.15 and stage < len(OPEN_STAGES) - 2 else 1
                stage += step
                actions.append(Action(at, deal, "move", {"stage": OPEN_STAGES[stage][0]}))
            elif r < 0.63 and stage > 0:
                stage -= 1
                actions.append(Action(at, deal, "move", {"stage": OPEN_STAGES[stage][0]}))
            elif r < 0.69:
                close = close + timedelta(days=rng.choice([-10, -3, 7, 14, 21]))
                actions.append(Action(at, deal, "close_date", {"close": close}))
            elif r < 0.72:
                lines = [(p, max(1, q + rng.choice([-1, 1, 2])), price) for p, q, price in lines]
                actions.append(Action(at, deal, "lines", {"lines": lines}))
            elif r < 0.75:
                if overridden and rng.random() < 0.5:
                    overridden = False
                    actions.append(Action(at, deal, "clear_override", {}))
                else:
                    overridden = True
                    p = Decimal(rng.randrange(5, 96)) / 100
                    actions.append(Action(at, deal, "override", {"p": p}))
            elif r < 0.77:
                owner = rng.choice(sorted(OWNERS))
                actions.append(Action(at, deal, "reassign", {"owner": owner, "team": OWNERS[owner]}))
            elif r < 0.80:
                pass  # a quiet stretch: deals stall
            elif r < 0.80 + 0.05 * (stage + 1) * (0.5 + win_bias):
                actions.append(Action(at, deal, "win", {}))
                break
            elif r < 0.93:
                status = "lost"
                actions.append(
                    Action(
                        at, deal, "lose", {"reason": rng.choice(LOST_REASONS), "competitor": rng.choice(COMPETITORS)}
                    )
                )
    actions.sort(key=lambda a: (a.at, a.deal.int))
    return actions


def commands(action: Action) -> Any:
    """The deals service command of an action (the driver's business, not the oracle's)."""
    from services.deals import domain
    from shared.core.money import Money

    def lines(ls: list[tuple[str, int, int]]) -> tuple[Any, ...]:
        return tuple(
            domain.ProductLine(product=p, quantity=Decimal(q), unit_price=Money.of(price)) for p, q, price in ls
        )

    p = action.params
    match action.kind:
        case "open":
            return domain.OpenDeal(
                title=f"Đơn {action.deal.hex[:6]}",
                customer=f"Khách {action.deal.hex[:4]}",
                owner_id=p["owner"],
                team_id=p["team"],
                lines=lines(p["lines"]),
                expected_close_date=p["close"],
                source=p["source"],
            )
        case "move":
            return domain.MoveStage(stage_id=p["stage"])
        case "activity":
            return domain.LogActivity(
                activity_id=uuid.uuid5(action.deal, action.at.isoformat()),
                activity_type=p["type"],
                channel=p["channel"],
            )
        case "close_date":
            return domain.ChangeCloseDate(expected_close_date=p["close"])
        case "lines":
            return domain.ChangeLines(lines=lines(p["lines"]))
        case "override":
            return domain.OverrideProbability(probability=p["p"], reason="judgement")
        case "clear_override":
            return domain.ClearProbabilityOverride()
        case "reassign":
            return domain.Reassign(owner_id=p["owner"], team_id=p["team"])
        case "win":
            return domain.WinDeal()
        case "lose":
            return domain.LoseDeal(reason=p["reason"], competitor=p["competitor"])
        case "reopen":
            return domain.ReopenDeal(reason="came back", stage_id=p["stage"])
    raise AssertionError(action.kind)
