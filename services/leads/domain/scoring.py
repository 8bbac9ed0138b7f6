"""Scoring: fit (who the lead is) + engagement (what they did), engagement decaying with a half-life; the rules
are data (``ScoringRules``) with a version recorded on every score."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from services.leads.domain.lead import Lead

FREE_MAIL = frozenset({"gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "yahoo.com.vn"})


class ScoringRules(BaseModel):
    """Fit points for who the lead is, engagement points for what they did (halved every ``half_life_days``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str = "2026-11"
    has_company: int = 10
    business_email: int = 10
    senior_title: int = 15
    senior_title_words: tuple[str, ...] = ("giám đốc", "director", "manager", "trưởng phòng", "ceo", "owner", "chủ")
    source_points: Mapping[str, int] = Field(
        default_factory=lambda: {
            "referral": 15,
            "website_form": 10,
            "landing_page": 8,
            "google_ads_lead_form": 8,
            "facebook_lead_ads": 5,
        }
    )
    engagement_points: Mapping[str, int] = Field(
        default_factory=lambda: {
            "email_open": 2,
            "email_click": 5,
            "page_visit": 3,
            "form_submit": 10,
            "chat": 8,
            "call": 10,
            "ad_click": 3,
        }
    )
    half_life_days: Decimal = Decimal(14)
    mql_threshold: Decimal = Decimal(40)


DEFAULT_RULES = ScoringRules()


def score(lead: Lead, now: datetime, rules: ScoringRules = DEFAULT_RULES) -> tuple[int, Decimal, list[str]]:
    """(fit, engagement decayed to ``now``, reasons)."""
    fit, reasons = 0, []
    if lead.has_company:
        fit += rules.has_company
        reasons.append("company given")
    if lead.email_domain and lead.email_domain not in FREE_MAIL:
        fit += rules.business_email
        reasons.append("business email")
    if lead.title and any(w in lead.title.lower() for w in rules.senior_title_words):
        fit += rules.senior_title
        reasons.append("senior title")
    if lead.source in rules.source_points:
        fit += rules.source_points[lead.source]
        reasons.append(f"source {lead.source}")
    engagement = Decimal(0)
    for e in lead.engagements:
        age_days = Decimal(max((now - e.at).total_seconds(), 0)) / Decimal(86400)
        points = Decimal(rules.engagement_points.get(e.kind, 0))
        engagement += points * Decimal("0.5") ** (age_days / rules.half_life_days)
    engagement = engagement.quantize(Decimal("0.01"))
    if engagement:
        reasons.append(f"{len(lead.engagements)} engagements")
    return fit, engagement, reasons
