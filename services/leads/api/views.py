"""The JSON the API shows of the domain's states, and the examples its OpenAPI document gives: HTTP concerns,
kept out of the domain."""

from __future__ import annotations

import uuid
from typing import Any

from services.leads.domain import Campaign, Lead

CAPTURE_EXAMPLES: dict[str, Any] = {
    "manual": {
        "value": {
            "source": "manual",
            "contact": {"name": "Trần Thị Bích", "phone": "0912 345 678", "company": "Cà phê Phố"},
            "attribution": {"source": "manual", "channel": "event", "campaign_id": "hoi-cho-2026"},
        }
    }
}


def lead_json(lead: Lead) -> dict[str, Any]:
    return {
        "lead_id": str(lead.lead_id) if lead.lead_id else None,
        "status": lead.status.value,
        "source": lead.source,
        "attribution": lead.attribution.model_dump(mode="json") if lead.attribution else None,
        "captured_at": lead.captured_at.isoformat() if lead.captured_at else None,
        "owner_id": lead.owner_id,
        "team_id": lead.team_id,
        "segments": list(lead.segments),
        "nurture": lead.nurture,
        "first_contacted_at": lead.first_contacted_at.isoformat() if lead.first_contacted_at else None,
        "score": format(lead.score, "f") if lead.score is not None else None,
        "engagements": len(lead.engagements),
        "outcome": lead.outcome,
        "erased": lead.erased,
        "duplicate_of": str(lead.duplicate_of) if lead.duplicate_of else None,
        "merged_into": str(lead.merged_into) if lead.merged_into else None,
    }


def campaign_json(campaign_id: uuid.UUID, c: Campaign) -> dict[str, Any]:
    return {
        "campaign_id": str(campaign_id),
        "name": c.name,
        "channel": c.channel,
        "code": c.code,
        "status": c.status,
        "budget": c.budget.model_dump(mode="json") if c.budget else None,
        "spend": {d.isoformat(): m.model_dump(mode="json") for d, m in sorted(c.spend.items())},
    }
