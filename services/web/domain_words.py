"""The domain's words in the user's language: the ids the APIs answer (stage ids such as ``target_identified``,
statuses, lead sources, activity kinds, a lead's levels and disqualification reasons, an order's step commands; one
dict id -> ``N_("English")`` per kind, ``KINDS``; event types in ``event_words.py``), the APIs' refusals by their
``rule`` (``RULES``, ``RULE_PATTERNS``: tests/unit/web/test_words.py fails on a rule raised in services/ with no
sentence), and the alerts by their ``kind`` and parameters. An id is never shown raw: a known id has its label; an unknown one (a stage of a custom
pipeline) is the API's own text, which is user data."""

from __future__ import annotations

from typing import Any

import structlog

from services.web import catalogs, event_words, formats
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
    # the agenda's activity kinds (and a lead's contact channels)
    "phone": N_("Phone call"),
    "video_call": N_("Video call"),
    "chat": N_("Chat"),
    "sms": N_("SMS"),
    "zalo": N_("Zalo"),
    "in_person": N_("In person"),
    "task": N_("Task"),
}
LEVELS = {"mql": N_("Marketing-qualified (MQL)"), "sql": N_("Sales-qualified (SQL)")}  # a lead's qualification
DISQUALIFY_REASONS = {
    "no_budget": N_("No budget"),
    "wrong_fit": N_("Not a fit"),
    "spam": N_("Spam"),
    "duplicate": N_("Duplicate"),
    "unreachable": N_("Unreachable"),
    "other": N_("Other"),
}
ORDER_STEPS = {  # the production API's step commands (POST /orders/{id}/<step>)
    "plan": N_("Plan"),
    "start-design": N_("Start design"),
    "approve-design": N_("Approve the design"),
    "start-assembly": N_("Start assembly"),
    "record-output": N_("Record units made"),
    "complete-assembly": N_("Complete assembly"),
    "complete-rework": N_("Complete rework"),
    "pack": N_("Pack"),
}
SERVICES = {"deals": N_("Sales"), "leads": N_("Marketing"), "production": N_("Production")}
ALERT_KINDS = {
    "deal_stuck": N_("Deal stuck"),
    "lead_not_contacted": N_("Lead not contacted"),
    "order_at_risk": N_("Order at risk"),
}
EVENTS = event_words.EVENTS  # every event type's name on the timeline (services/web/event_words.py)
KINDS: dict[str, dict[str, str]] = {
    "stage": STAGES,
    "status": STATUSES,
    "source": SOURCES,
    "activity": ACTIVITIES,
    "level": LEVELS,
    "disqualify_reason": DISQUALIFY_REASONS,
    "order_step": ORDER_STEPS,
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
    "busy": N_("The service is busy right now: try again in a few seconds."),
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
    "order_none": N_("No such order."),  # a command on an order not created (order_<stage> of the stage "none")
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
    "already_active": N_("This user is already active."),
    "bad_request": N_("The request could not be read: reload the page and try again."),
    "base_currency": N_("The base currency has no exchange rate to set."),
    "before_previous_event": N_("This date is before the last thing recorded on it."),
    "body_too_large": N_("What you sent is too large."),
    "campaign_ambiguous": N_("Several campaigns match: choose one by its code."),
    "campaign_exists": N_("This campaign already exists."),
    "completed_before_scheduled": N_("An activity cannot be done before it was scheduled."),
    "contact_erased": N_("The contact's personal data was erased."),
    "due_in_the_past": N_("The due time is in the past."),
    "duplicate_person": N_("This person is already recorded."),
    "ends_before_start": N_("The end is before the start."),
    "follow_up_completed": N_("This follow-up is already completed."),
    "handed_to_self": N_("You cannot hand over to yourself."),
    "headers_too_large": N_("The request's headers are too large."),
    "import_refused": N_("The file could not be imported."),
    "internal_error": N_("Something went wrong on our side: try again later."),
    "invalid_subject_after": N_("The list position asked for is not valid."),
    "lines_required": N_("A deal is won with its product lines: add them first."),
    "merge_into_itself": N_("A record cannot be merged into itself."),
    "merge_loop": N_("This merge would go round in a circle."),
    "merged": N_("This was merged into another record: open that one."),
    "method_not_allowed": N_("This cannot be done here."),
    "negative_price": N_("A price cannot be negative."),
    "no_override": N_("The probability is not overridden."),
    "no_raw_payload": N_("This lead has no original data to read again."),
    "not_acceptable": N_("The answer cannot be given in the format asked for."),
    "not_in_team": N_("This salesperson is not in that team."),
    "not_of_organisation": N_("This person does not belong to the customer."),
    "notes_erased": N_("This activity's notes were already erased."),
    "nothing_requested": N_("No materials were requested."),
    "occurred_in_future": N_("This date is in the future."),
    "organisation_exists": N_("This customer already exists."),
    "organisation_merged": N_("This customer was merged into another: open that one."),
    "other_quote_accepted": N_("Another quote of this deal is already accepted."),
    "owner_not_in_team": N_("This salesperson is in another team."),
    "person_erased": N_("This person's personal data was erased."),
    "person_exists": N_("This person already exists."),
    "person_merged": N_("This person was merged into another record: open that one."),
    "plan_approved": N_("The plan is approved: revise it with a reason."),
    "plan_ends_before_start": N_("The plan ends before it starts."),
    "quote_accepted": N_("This quote is already accepted."),
    "quote_exists": N_("This quote already exists."),
    "quote_expired": N_("This quote has expired."),
    "quote_not_open": N_("This quote is no longer open."),
    "quote_rejected": N_("This quote was rejected."),
    "quote_validity_past": N_("The quote's validity date is in the past."),
    "self_duplicate": N_("A lead cannot be a duplicate of itself."),
    "self_merge": N_("A record cannot be merged into itself."),
    "subject_closed": N_("It is closed: nothing more can be scheduled on it."),
    "survivor_inactive": N_("The lead kept must be active."),
    "target_scope_fixed": N_("A target keeps its salesperson or team and its period: set a new one."),
    "tax_code_taken": N_("Another customer has this tax code."),
    "team_closed": N_("This team is closed."),
    "team_exists": N_("This team already exists."),
    "team_not_empty": N_("The team still has members."),
    "trial_in_past": N_("A trial ends today or later."),
    "unchanged": N_("Nothing changes: it is so already."),
    "unknown_follow_up": N_("No such follow-up."),
    "unknown_organisation": N_("No such customer."),
    "unknown_person": N_("No such person."),
    "unknown_pipeline": N_("No such pipeline."),
    "unknown_product": N_("No such product."),
    "unknown_quote": N_("No such quote."),
    "unknown_role": N_("No such role."),
    "unknown_subject": N_("What this is about does not exist, or you may not see it."),
    "unmappable": N_("The lead's original data gives no contact."),
    "unreachable": N_("This cannot be reached."),
    "unsupported_currency": N_("This currency is not supported."),
    "unsupported_media_type": N_("What you sent is not in a format this takes."),
    "user_active": N_("Deactivate the user before erasing them."),
    "user_erased": N_("This user's personal data was erased."),
    "user_exists": N_("This user already exists."),
    "value_differs_from_lines": N_("The value differs from the sum of the deal's lines."),
    "value_from_lines": N_("The value comes from the deal's lines: change the lines instead."),
}
RULE_PATTERNS = {  # the rules named after where the thing is: lead_<status> (leads API), order_<stage> (production)
    "lead_": ("status", N_("A lead in the status “%(status)s” does not allow this.")),
    "order_": ("stage", N_("An order at the stage “%(stage)s” does not allow this.")),
}


def rule_text(rule: str | None) -> tuple[str, dict[str, str]] | None:
    """The English msgid saying ``rule`` (and the ids its placeholders name), or None for a rule the board does not
    know: ``RULES``, else a ``RULE_PATTERNS`` rule whose rest is a status or stage the board names."""
    if not rule:
        return None
    if rule in RULES:
        return RULES[rule], {}
    for prefix, (kind, text) in RULE_PATTERNS.items():
        rest = rule.removeprefix(prefix)
        if rule.startswith(prefix) and rest in KINDS[kind]:
            return text, {kind: rest}  # the placeholder is named as the kind of its id
    return None


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
    if kind == "event" and text.rpartition(".")[2] in words:  # pipelines.deals.DealWon, as some answers give it
        return gettext(lang, words[text.rpartition(".")[2]])
    return text


def refusal(rule: str | None, detail: str | None, lang: str) -> str:
    """Why the API said no, as a sentence in ``lang``: the rule's own; for a rule this board does not know, the API's
    English ``detail`` (logged, so a translation gets written)."""
    if (known := rule_text(rule)) is not None:
        text, ids = known
        return gettext(lang, text) % {k: label(k, v, lang) for k, v in ids.items()} if ids else gettext(lang, text)
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
