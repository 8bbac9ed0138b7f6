"""The deal and the pipeline as API answers: the edge's JSON shapes of the domain's states."""

from __future__ import annotations

from typing import Any

from services.deals.domain import Deal, Pipeline


def pipeline_as_json(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "pipeline_id": pipeline.pipeline_id,
        "name": pipeline.name,
        "version": pipeline.version,
        "stages": [s.model_dump(mode="json") for s in pipeline.stages],
    }


def state_as_json(deal: Deal) -> dict[str, Any]:
    """The deal as an API answer (personal data stays out: it lives in the events, sealed)."""
    return {
        "deal_id": str(deal.deal_id) if deal.deal_id else None,
        "status": deal.status.value,
        "pipeline_id": deal.pipeline_id,
        "stage": deal.stage.model_dump(mode="json") if deal.stage else None,
        "entered_stage_at": deal.entered_stage_at.isoformat() if deal.entered_stage_at else None,
        "opened_at": deal.opened_at.isoformat() if deal.opened_at else None,
        "closed_at": deal.closed_at.isoformat() if deal.closed_at else None,
        "title": deal.title,
        "customer": deal.customer,
        "organisation_id": str(deal.organisation_id) if deal.organisation_id else None,  # the directory's
        "person_ids": [str(p) for p in deal.person_ids],
        "owner_id": deal.owner_id,
        "team_id": deal.team_id,
        "value": deal.value.model_dump(mode="json"),
        "probability": format(deal.probability, "f"),
        "probability_overridden": deal.probability_override is not None,
        "weighted_value": deal.weighted_value.model_dump(mode="json"),
        "lines": [line.model_dump(mode="json") for line in deal.lines],
        "expected_close_date": deal.expected_close_date.isoformat() if deal.expected_close_date else None,
        "close_date_pushes": deal.close_date_pushes,
        "source_lead_id": str(deal.source_lead_id) if deal.source_lead_id else None,
        "source": deal.source,
        "quotes": [
            {
                "quote_id": str(q.quote_id),
                "version": q.version,
                "status": q.status,
                "total": q.total.model_dump(mode="json"),
                "valid_until": q.valid_until.isoformat(),
            }
            for q in deal.quotes.values()
        ],
        "follow_ups": [
            {
                "follow_up_id": str(f.follow_up_id),
                "kind": f.kind,
                "due_on": f.due_on.isoformat(),
                "order_id": str(f.order_id) if f.order_id else None,
                "completed": f.completed,
                "contacts": f.contacts,
                "csat": f.csat,
                "nps": f.nps,
            }
            for f in deal.follow_ups.values()
        ],
        "activities": deal.activities,
        "lost_reason": deal.lost_reason,
        "delivery_risk": deal.delivery_risk,
        "contact_erased": deal.contact_erased,
    }
