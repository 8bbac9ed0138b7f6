"""A generated deals history (rebuild benchmark, batch-apply tests), as the relay publishes it: CloudEvents JSON.

Deals open, move through the stages (forward and back), log activities, change value, close date, owner and
probability, win or lose, some reopen and close again. The JSON is built by hand for speed (a million events in
seconds); ``check`` proves a sample byte-identical to ``CloudEvent.kafka_value()`` of the validated typed event,
so the hand-built messages are exactly what the relay would write.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from services.deals import events as ev
from services.deals.domain import DEFAULT_PIPELINE_ID, DEFAULT_STAGES
from shared.core.events import schema_uri
from shared.messaging.envelope import CloudEvent

SOURCE = "/pipelines/deals"
START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
OPEN = [s for s in DEFAULT_STAGES if s.kind == ev.StageKind.OPEN]
WON = next(s for s in DEFAULT_STAGES if s.kind == ev.StageKind.WON)
LOST = next(s for s in DEFAULT_STAGES if s.kind == ev.StageKind.LOST)
OWNERS = [("u-an", "north"), ("u-binh", "north"), ("u-chi", "north"), ("u-dung", "south"), ("u-hoa", None)]
ACTIVITIES = [("call", "phone"), ("email", "email"), ("meeting", "meeting"), ("demo", "demo"), ("offer", "offer")]
LINE = {"product": "Máy lạnh 2HP", "quantity": "2", "unit": "pcs", "unit_price": None, "discount_pct": "0"}


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _snap(s: ev.StageDefinition) -> dict[str, Any]:
    return {
        "stage_id": s.stage_id,
        "name": s.name,
        "order": s.order,
        "probability": str(s.probability),
        "kind": s.kind.value,
    }


SNAPS = {s.stage_id: _snap(s) for s in DEFAULT_STAGES}


def _money(amount: int) -> dict[str, str]:
    return {"amount": str(amount), "currency": "VND"}


class History:
    """Events of ``n_deals`` deals (about ``per_deal`` each) and the default pipeline's definition, in order."""

    def __init__(self, n_deals: int, *, seed: int = 9) -> None:
        self.n_deals = n_deals
        self.seed = seed

    def messages(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of every event, in the order the relay would publish them."""
        for position, (stream, version, type_, schema_version, data, at) in enumerate(self._events(), 1):
            rng_id = uuid.UUID(int=(self.seed << 64) ^ position)
            value = {
                "specversion": "1.0",
                "id": str(rng_id),
                "source": SOURCE,
                "type": type_,
                "subject": stream,
                "time": _ts(at),
                "datacontenttype": "application/json",
                "dataschema": schema_uri(type_, schema_version),
                "data": data,
                "streamid": stream,
                "streamversion": version,
                "position": position,
                "schemaversion": schema_version,
                "recordedtime": _ts(at + timedelta(seconds=1)),
                "correlationid": str(rng_id),
                "causationid": str(rng_id),
            }
            yield stream.encode(), json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    def _events(self) -> Iterator[tuple[str, int, str, int, dict[str, Any], datetime]]:
        rng = random.Random(self.seed)
        pipeline = {
            "pipeline_id": DEFAULT_PIPELINE_ID,
            "name": "Default",
            "stages": [s.model_dump(mode="json") for s in DEFAULT_STAGES],
            "reason": None,
        }
        yield f"pipeline-{DEFAULT_PIPELINE_ID}", 1, ev.PipelineDefined.event_type, 1, pipeline, START
        for d in range(self.n_deals):
            deal = str(uuid.UUID(int=rng.getrandbits(128)))
            stream = f"deal-{deal}"
            at = START + timedelta(minutes=d * 3)
            for version, (type_, data, schema_version) in enumerate(self._deal(rng, deal, at), 1):
                at += timedelta(hours=rng.randint(1, 60))
                yield stream, version, type_, schema_version, data, at

    def _deal(self, rng: random.Random, deal: str, at: datetime) -> Iterator[tuple[str, dict[str, Any], int]]:
        owner, team = rng.choice(OWNERS)
        value = rng.randint(20, 900) * 100_000
        stage = 0
        close = (at + timedelta(days=rng.randint(20, 90))).date()
        pushes = 0
        contact_id = f"lead-{deal[:8]}"
        yield (
            ev.DealOpened.event_type,
            {
                "deal_id": deal,
                "pipeline_id": DEFAULT_PIPELINE_ID,
                "pipeline_version": 1,
                "stage": SNAPS[OPEN[0].stage_id],
                "title": f"Deal {deal[:8]}",
                "customer": f"Công ty {deal[9:13]}",
                "contact_id": contact_id,
                "contact": f"pii:v1:{contact_id}:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKiss",
                "owner_id": owner,
                "team_id": team,
                "value": _money(value),
                "lines": [],
                "expected_close_date": close.isoformat(),
                "source_lead_id": None,
                "source": rng.choice([None, "facebook_lead_ads", "website_form", "referral"]),
                "campaign_id": None,
                "previous_deal_id": None,
                "opened_at": _ts(at),
            },
            1,
        )
        closed = None
        for _ in range(rng.randint(6, 12)):
            r = rng.random()
            if closed is not None:
                if r < 0.5:
                    stage = rng.randrange(len(OPEN))
                    yield (
                        ev.DealReopened.event_type,
                        {
                            "deal_id": deal,
                            "was": closed,
                            "to_stage": SNAPS[OPEN[stage].stage_id],
                            "reason": "khách hàng quay lại",
                            "reopened_at": _ts(at),
                        },
                        1,
                    )
                    closed = None
                    continue
                break
            if r < 0.45:
                activity, channel = rng.choice(ACTIVITIES)
                v1 = rng.random() < 0.3  # logged before ``direction`` existed; upcast on reading
                data = {
                    "deal_id": deal,
                    "activity_id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "activity_type": activity,
                    "channel": channel,
                    "direction": "outbound",
                    "stage_id": OPEN[stage].stage_id,
                    "outcome": None,
                    "duration_minutes": rng.choice([None, 15, 30]),
                    "note": "gọi lại sau",
                }
                if v1:
                    del data["direction"]
                yield ev.ActivityLogged.event_type, data, 1 if v1 else 2
            elif r < 0.65:
                to = min(stage + 1, len(OPEN) - 1) if rng.random() < 0.85 else max(stage - 1, 0)
                if to == stage:
                    continue
                yield (
                    ev.StageChanged.event_type,
                    {
                        "deal_id": deal,
                        "from_stage": SNAPS[OPEN[stage].stage_id],
                        "to_stage": SNAPS[OPEN[to].stage_id],
                        "direction": "forward" if to > stage else "backward",
                        "skipped_stage_ids": [],
                        "entered_from_at": _ts(at),
                        "changed_at": _ts(at + timedelta(hours=1)),
                        "note": None,
                    },
                    1,
                )
                stage = to
            elif r < 0.72:
                new = rng.randint(20, 900) * 100_000
                yield (
                    ev.DealValueChanged.event_type,
                    {"deal_id": deal, "old": _money(value), "new": _money(new), "reason": None},
                    1,
                )
                value = new
            elif r < 0.77:
                old, close, pushes = close, close + timedelta(days=rng.randint(3, 20)), pushes + 1
                yield (
                    ev.ExpectedCloseDateChanged.event_type,
                    {
                        "deal_id": deal,
                        "old": old.isoformat(),
                        "new": close.isoformat(),
                        "push_count": pushes,
                        "reason": None,
                    },
                    1,
                )
            elif r < 0.81:
                to_owner, to_team = rng.choice(OWNERS)
                yield (
                    ev.DealReassigned.event_type,
                    {
                        "deal_id": deal,
                        "from_owner_id": owner,
                        "to_owner_id": to_owner,
                        "from_team_id": team,
                        "to_team_id": to_team,
                        "reason": None,
                    },
                    1,
                )
                owner, team = to_owner, to_team
            elif r < 0.84:
                yield (
                    ev.DealProbabilityOverridden.event_type,
                    {"deal_id": deal, "probability": "0.35", "reason": "khách hứa ký"},
                    1,
                )
            elif r < 0.86:
                yield (ev.DealProbabilityOverrideCleared.event_type, {"deal_id": deal, "reason": None}, 1)
            elif r < 0.88:
                yield (
                    ev.CustomerNeedsRecorded.event_type,
                    {"deal_id": deal, "needs": ["lắp đặt"], "budget": None, "decision_date": None, "note": None},
                    1,
                )
            elif r < 0.94:
                line = {**LINE, "unit_price": _money(value // 2)}
                yield (
                    ev.DealWon.event_type,
                    {
                        "deal_id": deal,
                        "value": _money(value),
                        "lines": [line],
                        "quote_id": None,
                        "customer": f"Công ty {deal[9:13]}",
                        "owner_id": owner,
                        "team_id": team,
                        "stage_at_win": SNAPS[OPEN[stage].stage_id],
                        "opened_at": _ts(at),
                        "won_at": _ts(at + timedelta(hours=2)),
                        "requested_delivery_date": None,
                        "contact_id": contact_id,
                        "delivery_address": None,
                        "source_lead_id": None,
                    },
                    1,
                )
                closed = "won"
            else:
                yield (
                    ev.DealLost.event_type,
                    {
                        "deal_id": deal,
                        "reason": "giá cao",
                        "competitor": rng.choice([None, "Rival Co"]),
                        "stage_at_loss": SNAPS[OPEN[stage].stage_id],
                        "value": _money(value),
                        "lost_at": _ts(at + timedelta(hours=2)),
                        "source_lead_id": None,
                        "note": None,
                    },
                    1,
                )
                closed = "lost"


def check(value: bytes) -> None:
    """The message is exactly what the relay writes for the validated typed event (byte for byte)."""
    envelope = CloudEvent.model_validate_json(value)
    event = envelope.to_event()
    data = event.model_dump(mode="json")
    sealed = {k: envelope.data[k] if k in type(event).personal_fields else v for k, v in data.items()}
    if envelope.schemaversion < type(event).schema_version:  # stored in its old shape
        return
    assert sealed == envelope.data, (envelope.type, sealed, envelope.data)
    assert envelope.model_copy(update={"data": sealed}).kafka_value() == value, value
