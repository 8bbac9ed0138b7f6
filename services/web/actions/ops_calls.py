"""The marketing and production actions' API calls: from a submitted form to the one request each makes (method,
API, path, JSON body), pure. Nothing here decides a rule: a value the API would refuse is sent as typed and the
API's refusal is shown. Only what goes into a URL is checked here (an id must be a UUID, a day a date), so that no
form can aim a call at another path."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

# The contract's id of the deal a lead's conversion opens (services/deals/events.py ``deal_id_for_lead``; the board
# may not import a service: tests/unit/web/test_ops_actions.py checks that the two agree).
NS_DEAL_FROM_LEAD = uuid.UUID("6f1f3c8e-2f4e-5b7a-9d0c-1a2b3c4d5e01")

CHANNELS = ("phone", "email", "meeting", "video_call", "chat", "sms", "zalo", "in_person", "site_visit", "demo")
LEVELS = ("mql", "sql")
DISQUALIFY_REASONS = ("no_budget", "wrong_fit", "spam", "duplicate", "unreachable", "other")
CURRENCIES = ("VND", "USD")
# An order's moves through its stages: each a command of the production API (``/orders/{id}/<step>``).
STEPS = (
    "plan",
    "start-design",
    "approve-design",
    "start-assembly",
    "record-output",
    "complete-assembly",
    "complete-rework",
    "pack",
)


class FormError(ValueError):
    """A form the board cannot turn into a call (an id or a day that is not one): the field and why."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class Call:
    method: str
    service: str
    path: str
    body: dict[str, Any] = field(default_factory=dict)


def deal_of_lead(lead_id: str) -> str:
    return str(uuid.uuid5(NS_DEAL_FROM_LEAD, lead_id))


def an_id(value: str | None, name: str) -> str:
    try:
        return str(uuid.UUID((value or "").strip()))
    except ValueError:
        raise FormError(name, "not an id") from None


def a_day(value: str | None, name: str) -> str:
    try:
        return date.fromisoformat((value or "").strip()).isoformat()
    except ValueError:
        raise FormError(name, "not a date (yyyy-mm-dd)") from None


def text(form: Mapping[str, str], name: str) -> str | None:
    """A field as typed, without surrounding spaces; None when empty (the API's default applies)."""
    value = (form.get(name) or "").strip()
    return value or None


def plain(**values: Any) -> dict[str, Any]:
    """A body of the fields given (an empty field is left out: the API's default applies)."""
    return {k: v for k, v in values.items() if v is not None and v != {}}


def money(form: Mapping[str, str], amount: str = "amount", currency: str = "currency") -> dict[str, str] | None:
    value = text(form, amount)
    if value is None:
        return None
    return {"amount": value.replace(" ", ""), "currency": text(form, currency) or "VND"}


# ---------------------------------------------------------------------------------------------- marketing
def capture_lead(target: str | None, form: Mapping[str, str]) -> Call:
    source = text(form, "source") or "manual"
    campaign = text(form, "campaign_id")
    contact = plain(
        name=text(form, "name"), email=text(form, "email"), phone=text(form, "phone"), company=text(form, "company")
    )
    attribution = plain(source=source, campaign_id=campaign) if campaign else None
    return Call("POST", "leads", "/leads", plain(source=source, contact=contact, attribution=attribution))


def lead_command(target: str | None, name: str, body: dict[str, Any]) -> Call:
    return Call("POST", "leads", f"/leads/{an_id(target, 'lead')}/{name}", body)


def assign_lead(target: str | None, form: Mapping[str, str]) -> Call:
    body = plain(owner_id=text(form, "owner_id"), team_id=text(form, "team_id"))
    return lead_command(target, "assign", body)


def contact_lead(target: str | None, form: Mapping[str, str]) -> Call:
    return lead_command(target, "contact", plain(channel=text(form, "channel")))


def qualify_lead(target: str | None, form: Mapping[str, str]) -> Call:
    return lead_command(target, "qualify", plain(level=text(form, "level")))


def disqualify_lead(target: str | None, form: Mapping[str, str]) -> Call:
    return lead_command(target, "disqualify", plain(reason=text(form, "reason"), note=text(form, "note")))


def convert_lead(target: str | None, form: Mapping[str, str]) -> Call:
    body = plain(
        customer=text(form, "customer"),
        title=text(form, "title"),
        estimated_value=money(form),
        expected_close_date=text(form, "expected_close_date"),
    )
    return lead_command(target, "convert", body)


def record_spend(target: str | None, form: Mapping[str, str]) -> Call:
    campaign = an_id(target or form.get("campaign_id"), "campaign")
    day = a_day(form.get("day"), "day")
    return Call("PUT", "leads", f"/campaigns/{campaign}/spend/{day}", plain(amount=money(form)))


# ---------------------------------------------------------------------------------------------- production
def order_command(target: str | None, name: str, body: dict[str, Any]) -> Call:
    return Call("POST", "production", f"/orders/{an_id(target, 'order')}/{name.replace('_', '-')}", body)


def move_order(target: str | None, form: Mapping[str, str]) -> Call:
    """The step chosen (a command that moves the order on), with the fields that step takes."""
    step = text(form, "step") or ""
    if step not in STEPS:
        raise FormError("step", "not a step of an order")
    bodies: dict[str, dict[str, Any]] = {
        "plan": plain(planned_start=text(form, "planned_start"), planned_end=text(form, "planned_end")),
        "record-output": plain(product=text(form, "product"), quantity=text(form, "quantity")),
        "complete-rework": plain(quantity=text(form, "quantity")),
        "pack": plain(packages=text(form, "packages") or "1", quantity=text(form, "quantity")),
    }
    return order_command(target, step, bodies.get(step, {}))


def inspect_order(target: str | None, form: Mapping[str, str]) -> Call:
    """An inspection: passed or not, the units inspected, and its defects (kind and count; up to three rows)."""
    defects = [
        {"code": code, "quantity": text(form, f"defect_count_{i}") or "1"}
        for i in range(3)
        if (code := text(form, f"defect_kind_{i}")) is not None
    ]
    body = {
        "passed": form.get("passed") in ("true", "on", "1"),
        "inspected_quantity": text(form, "inspected_quantity"),
        "defects": defects,
    }
    return order_command(target, "record_inspection", body)


def ship_order(target: str | None, form: Mapping[str, str]) -> Call:
    body = plain(carrier=text(form, "carrier"), tracking_no=text(form, "tracking_no"), quantity=text(form, "quantity"))
    return order_command(target, "ship", body)


def deliver_order(target: str | None, form: Mapping[str, str]) -> Call:
    body = plain(shipment_id=an_id(form.get("shipment_id"), "shipment_id"))
    return order_command(target, "confirm_delivery", body)


def hold_order(target: str | None, form: Mapping[str, str]) -> Call:
    return order_command(target, "hold", plain(reason=text(form, "reason")))


def resume_order(target: str | None, form: Mapping[str, str]) -> Call:
    return order_command(target, "resume", plain(reason=text(form, "reason")))
