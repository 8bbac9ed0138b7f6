"""The domain's words in the user's language: the ids the APIs answer (stage ids such as ``target_identified``,
statuses, lead sources, activity types, order steps), the APIs' refusals by their ``rule``, and the alerts by their
``kind`` and parameters. An id is never shown raw: a known id has its label; an unknown one (a stage of a custom
pipeline) is the API's own text, which is user data."""

from __future__ import annotations

import re
from typing import Any

import structlog

from services.web import catalogs, formats
from services.web.catalogs import N_

log = structlog.get_logger(__name__)

STAGES = {  # the deals' default pipeline, then the production order's steps
    "target_identified": N_("Target identified"),
    "contacted": N_("Contacted"),
    "needs_discussed": N_("Needs discussed"),
    "quote_sent": N_("Quote sent"),
    "negotiation": N_("Negotiation"),
    "won": N_("Won"),
    "lost": N_("Lost"),
    "new": N_("New"),
    "planned": N_("Planned"),
    "in_design": N_("In design"),
    "procuring": N_("Procuring"),
    "assembling": N_("Assembling"),
    "quality_check": N_("Quality check"),
    "rework": N_("Rework"),
    "packing": N_("Packing"),
    "ready_to_ship": N_("Ready to ship"),
    "shipped": N_("Shipped"),
    "delivered": N_("Delivered"),
    "on_hold": N_("On hold"),
    "cancelled": N_("Cancelled"),
}
STATUSES = {  # deals, leads, campaigns
    "open": N_("Open"),
    "won": N_("Won"),
    "lost": N_("Lost"),
    "none": N_("None"),
    "new": N_("New"),
    "contacted": N_("Contacted"),
    "nurturing": N_("Nurturing"),
    "mql": N_("Marketing qualified"),
    "sql": N_("Sales qualified"),
    "converted": N_("Converted"),
    "disqualified": N_("Disqualified"),
    "merged": N_("Merged"),
    "draft": N_("Draft"),
    "active": N_("Active"),
    "paused": N_("Paused"),
    "ended": N_("Ended"),
}
SOURCES = {
    "website_form": N_("Website form"),
    "landing_page": N_("Landing page"),
    "facebook_lead_ads": N_("Facebook lead ads"),
    "google_ads_lead_form": N_("Google Ads lead form"),
    "zalo": N_("Zalo"),
    "referral": N_("Referral"),
    "import": N_("Import"),
    "manual": N_("Entered by hand"),
}
ACTIVITIES = {
    "call": N_("Call"),
    "email": N_("Email"),
    "meeting": N_("Meeting"),
    "demo": N_("Demo"),
    "free_trial": N_("Free trial"),
    "offer": N_("Offer"),
    "site_visit": N_("Site visit"),
    "note": N_("Note"),
}
SERVICES = {"deals": N_("Sales"), "leads": N_("Marketing"), "production": N_("Production")}
ALERT_KINDS = {
    "deal_stuck": N_("Deal stuck"),
    "lead_not_contacted": N_("Lead not contacted"),
    "order_at_risk": N_("Order at risk"),
}
EVENTS = {  # the timeline's milestones (render.MILESTONES); other events are named from their type, in English
    "LeadCaptured": N_("Lead captured"),
    "LeadConverted": N_("Lead converted"),
    "DealOpened": N_("Deal opened"),
    "DealWon": N_("Deal won"),
    "DealLost": N_("Deal lost"),
    "ProductionOrderCreated": N_("Production order created"),
    "QualityInspectionFailed": N_("Quality inspection failed"),
    "OrderShipped": N_("Order shipped"),
    "OrderDelivered": N_("Order delivered"),
    "FollowUpStarted": N_("Follow-up started"),
    "FollowUpCompleted": N_("Follow-up completed"),
}
KINDS: dict[str, dict[str, str]] = {
    "stage": STAGES,
    "status": STATUSES,
    "source": SOURCES,
    "activity": ACTIVITIES,
    "service": SERVICES,
    "alert_kind": ALERT_KINDS,
    "event": EVENTS,
}
RULES = {  # the APIs' refusals, by their problem+json `rule`
    "forbidden": N_("Your role does not allow this."),
    "not_found": N_("This no longer exists, or you may not see it."),
    "stale_version": N_("Someone changed this meanwhile: look at what changed, then try again."),
    "conflict": N_("This conflicts with what was recorded meanwhile: open it again and retry."),
    "invalid_input": N_("Some fields are not valid: check them and send again."),
    "unauthenticated": N_("Your session has ended: sign in again."),
    "too_many_requests": N_("Too many requests: try again in a moment."),
    "unavailable": N_("The service does not answer right now: try again in a moment."),
    "already_in_stage": N_("The deal is already in this stage."),
    "use_win_or_lose": N_("Use Win or Lose to close a deal, not a move."),
    "deal_closed": N_("The deal is closed: reopen it first."),
    "deal_not_closed": N_("The deal is still open."),
    "deal_not_won": N_("Only a won deal can do this."),
    "deal_not_found": N_("No such deal."),
    "deal_exists": N_("This deal already exists."),
    "unknown_stage": N_("This pipeline has no such stage."),
    "owner_required": N_("Choose a salesperson."),
    "value_required": N_("Give the deal's value."),
    "negative_value": N_("A value cannot be negative."),
    "amount_too_large": N_("The amount is too large."),
    "currency_mismatch": N_("The currency differs from the deal's."),
    "reason_required": N_("Give a reason."),
    "delivery_date_past": N_("The delivery date is in the past."),
    "due_date_past": N_("The due date is in the past."),
    "before_opening": N_("This date is before the deal was opened."),
    "activity_done": N_("This activity is already done."),
    "activity_cancelled": N_("This activity was cancelled."),
    "activity_exists": N_("This activity already exists."),
    "unknown_user": N_("No such user."),
    "user_inactive": N_("This user is not active."),
    "unknown_team": N_("No such team."),
    "lead_not_found": N_("No such lead."),
    "lead_exists": N_("This lead already exists."),
    "lead_merged": N_("This lead was merged into another."),
    "lead_erased": N_("This lead's personal data was erased."),
    "not_active": N_("The lead is no longer active."),
    "already_mql": N_("The lead is already marketing qualified."),
    "not_nurtured": N_("The lead must be contacted or nurtured first."),
    "no_contact": N_("The lead has no way to be contacted."),
    "contact_required": N_("Give a name, an email or a phone number."),
    "contact_unreachable": N_("This contact cannot be reached."),
    "unknown_source": N_("Unknown lead source."),
    "unknown_campaign": N_("No such campaign."),
    "campaign_not_found": N_("No such campaign."),
    "campaign_status": N_("The campaign cannot change to this status from its current one."),
    "campaign_not_launched": N_("The campaign has not been launched."),
    "negative_spend": N_("Spend cannot be negative."),
    "spend_recorded": N_("This spend is already recorded."),
    "order_not_found": N_("No such order."),
    "order_exists": N_("This order already exists."),
    "step": N_("The order cannot take this step from where it is now."),
    "materials_pending": N_("Materials are still missing."),
    "plan_not_approved": N_("The production plan is not approved yet."),
    "ship_exceeds_packed": N_("You cannot ship more than was packed."),
    "pack_exceeds_output": N_("You cannot pack more than was made."),
    "scrap_exceeds_output": N_("You cannot scrap more than was made."),
    "short_output": N_("Fewer units were made than ordered."),
    "unknown_shipment": N_("No such shipment."),
    "delivery_in_future": N_("A delivery cannot be recorded in the future."),
    "occurred_out_of_order": N_("This happened before the last recorded step."),
    "backdate_limit": N_("This date is too far in the past."),
}


def gettext(lang: str, message: str) -> str:
    return catalogs.translations(lang).gettext(message)


def label(kind: str, value: Any, lang: str) -> str:
    """An id's label (``kind``: stage, status, source, activity, service, alert_kind); a stage's English name from
    the API is translated too; an unknown value is shown as the API gave it (user data)."""
    words = KINDS.get(kind, {})
    text = str(value)
    if text in words:
        return gettext(lang, words[text])
    if text in words.values():  # the default pipeline's stage names, as the API answers them
        return gettext(lang, text)
    if kind == "event":  # DealValueChanged -> "Deal value changed"
        spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text)
        return spaced[:1] + spaced[1:].lower()
    return text


def refusal(rule: str | None, detail: str | None, lang: str) -> str:
    """Why the API said no, as a sentence in ``lang``: the rule's own; for a rule this board does not know, the API's
    English ``detail`` (logged, so a translation gets written)."""
    if rule and rule in RULES:
        return gettext(lang, RULES[rule])
    log.warning("web.untranslated_rule", rule=rule, detail=(detail or "")[:200])
    return detail or gettext(lang, RULES["conflict"])


def alert(row: dict[str, Any], lang: str, tz: Any = None) -> str:
    """An alert's sentence from its kind and parameters (not the API's English ``summary``)."""
    kind, details = row.get("kind"), row.get("details") or {}
    if not isinstance(details, dict):
        details = {}
    if kind == "deal_stuck":
        values = {"days": details.get("days", "?"), "stage": label("stage", details.get("stage_id", ""), lang)}
        if details.get("title"):
            return gettext(lang, N_("%(deal)s: %(days)s days in %(stage)s")) % (values | {"deal": details["title"]})
        return gettext(lang, N_("%(days)s days in %(stage)s")) % values
    if kind == "lead_not_contacted":
        text = gettext(lang, N_("A lead from %(source)s is still waiting for a first contact"))
        return text % {"source": label("source", details.get("source", ""), lang)}
    if kind == "order_at_risk":
        due = formats.day(details["due_date"], lang) if details.get("due_date") else "?"
        values = {"stage": label("stage", details.get("stage", ""), lang), "day": due}
        if details.get("customer"):
            text = gettext(lang, N_("%(customer)s: still at %(stage)s, delivery promised for %(day)s"))
            return text % (values | {"customer": details["customer"]})
        return gettext(lang, N_("Still at %(stage)s, delivery promised for %(day)s")) % values
    log.warning("web.untranslated_alert", kind=kind)
    return str(row.get("summary") or "")
