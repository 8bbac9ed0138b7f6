"""Scoring: fit (who the lead is) + engagement (what they did), engagement decaying with a half-life; the rules
are data (``ScoringRules``) with a version recorded on every score.

Who the lead is comes from their contact, which is personal data: it is stored sealed and the lead's state never
holds it, so the caller opens it for the score (``Leads.handle``) and it stays in memory. A score records which
rules matched ("senior title"), never the values; an erased lead's contact opens as nothing and scores without it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from services.leads.domain.lead import Lead
    from services.leads.events import LeadContact

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


def _words(text: str) -> str:
    """Text as the title rules compare it: NFC (Vietnamese typed as base letters and combining marks is the same
    title), case folded, one space between words."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def senior(title: str | None, rules: ScoringRules = DEFAULT_RULES) -> bool:
    """The title holds one of the rules' senior words as a whole word ("Phó giám đốc", "CEO & founder"; not the
    "chủ" of "chủng loại"). Diacritics count: "giam doc" is other words."""
    text = _words(title or "")
    return any(re.search(rf"(?<!\w){re.escape(_words(w))}(?!\w)", text) for w in rules.senior_title_words)


def email_domain(contact: LeadContact) -> str | None:
    return contact.email.rpartition("@")[2].lower() if contact.email else None


def score(
    lead: Lead, now: datetime, rules: ScoringRules = DEFAULT_RULES, *, contact: LeadContact | None = None
) -> tuple[int, Decimal, list[str]]:
    """(fit, engagement decayed to ``now``, reasons). ``contact``: the lead's opened contact (None: erased, or
    not opened: it scores on the source and engagement only)."""
    fit, reasons = 0, []
    if contact is not None and contact.company and contact.company.strip():
        fit += rules.has_company
        reasons.append("company given")
    if contact is not None and (domain := email_domain(contact)) and domain not in FREE_MAIL:
        fit += rules.business_email
        reasons.append("business email")
    if contact is not None and senior(contact.title, rules):
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
