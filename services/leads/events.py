"""The leads service's event contract (what other services and subscribers rely on).

Only the events other services react to so far are declared; the leads service's issue adds the rest here.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, EmailStr

from shared.events import DomainEvent
from shared.money import Money


class LeadContact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str | None = None
    email: EmailStr | None = None
    phone: str | None = None
    company: str | None = None
    title: str | None = None


class Attribution(BaseModel):
    """Where the lead came from, as known when it converted (first touch, lead creation touch)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    source: str
    channel: str | None = None
    campaign_id: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None


class LeadConverted(DomainEvent):
    """A qualified lead became a sales opportunity; the deals service opens deal uuid5(lead)."""

    event_type: ClassVar[str] = "pipelines.leads.LeadConverted"
    personal_fields: ClassVar[tuple[str, ...]] = ("contact",)
    subject_field: ClassVar[str | None] = "lead_id"

    lead_id: uuid.UUID
    customer: str  # the organisation or household buying (not a person's contact details)
    contact: LeadContact | None
    owner_id: str
    team_id: str | None = None
    title: str
    estimated_value: Money | None = None
    expected_close_date: date | None = None
    product_interest: str | None = None
    attribution: Attribution
