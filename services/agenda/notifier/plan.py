"""What the notifier sends to whom, now: pure rules over the recipients, the open activities and the alerts.

- An activity's owner is reminded ``lead`` before its due time (item ``activity:<id>:due:<due_at>``, so a
  rescheduled activity is reminded again) and once when it is overdue (``activity:<id>:overdue``), if it is still
  open; one missed entirely while the notifier was down is reminded as overdue only, within ``overdue_window``.
- An alert goes to each user it concerns (``alert:<id>``) while it is active and recent; one that names nobody
  (``AlertRaised.concerns`` empty: a lead without an owner, a production order) to the active users with the role
  its kind names (``ROLE_OF_KIND``: an order at risk to production, the others to the sales managers).
- A user whose reminders are a digest gets no reminder per activity: once a local day, from their ``digest_at``
  on, one digest (``digest:<local date>``) gathering what is due that day and what is overdue; alerts still go
  to them as they come.
- Nothing goes in a user's quiet hours: it waits until they end (the next poll after them sends it). Nothing goes to
  a deactivated user or one without an email (erased).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# who is told of an alert that names nobody it concerns. An order at risk goes to production, not the deal's owner:
# production's read model does not know the deal's owner, and production is who can act on it (decision 0020)
ROLE_OF_KIND = {"order_at_risk": "production", "lead_not_contacted": "sales_manager", "deal_stuck": "sales_manager"}


@dataclass(frozen=True)
class Recipient:
    user_id: str
    email: str | None  # opened; None: erased or never given
    language: str = "vi"
    time_zone: str = "Asia/Ho_Chi_Minh"
    quiet_start: time | None = None
    quiet_end: time | None = None
    reminders: str = "immediate"  # immediate | digest
    digest_at: time | None = None
    active: bool = True
    roles: tuple[str, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class Activity:
    activity_id: uuid.UUID
    owner_id: str
    kind: str
    title: str
    due_at: datetime
    subject_type: str = ""  # deal | lead | organisation | person
    subject_ref: str = ""


@dataclass(frozen=True)
class Alert:
    alert_id: uuid.UUID
    kind: str
    summary: str
    entity: str
    raised_at: datetime
    concerns: tuple[str, ...]


@dataclass(frozen=True)
class Message:
    """One message to send: to ``recipient`` about ``item``; what it says is rendered from ``activities`` and
    ``alert`` (services.agenda.notifier.render)."""

    recipient: Recipient
    item: str
    what: str  # due | overdue | alert | digest
    activities: tuple[Activity, ...] = ()
    alert: Alert | None = None
    day: date | None = None  # a digest's local day


@dataclass(frozen=True)
class Rules:
    lead: timedelta = timedelta(minutes=15)
    overdue_window: timedelta = timedelta(days=1)
    alert_window: timedelta = timedelta(days=1)


def in_quiet_hours(r: Recipient, now: datetime) -> bool:
    """Whether ``now`` falls in the recipient's quiet hours (local time; an end before the start spans midnight)."""
    if r.quiet_start is None or r.quiet_end is None:
        return False
    t = now.astimezone(r.zone).time()
    if r.quiet_start < r.quiet_end:
        return r.quiet_start <= t < r.quiet_end
    return t >= r.quiet_start or t < r.quiet_end


def quiet_ends(r: Recipient, now: datetime) -> datetime | None:
    """When the quiet hours ``now`` falls in end (None: not in them)."""
    if not in_quiet_hours(r, now) or r.quiet_end is None:
        return None
    local = now.astimezone(r.zone)
    end = datetime.combine(local.date(), r.quiet_end, tzinfo=r.zone)
    return end if end > local else datetime.combine(local.date() + timedelta(days=1), r.quiet_end, tzinfo=r.zone)


def reachable(r: Recipient | None, now: datetime) -> bool:
    return r is not None and r.active and bool(r.email) and not in_quiet_hours(r, now)


@dataclass
class Plan:
    messages: list[Message] = field(default_factory=list)
    held: int = 0  # in quiet hours


def plan(
    recipients: dict[str, Recipient], activities: list[Activity], alerts: list[Alert], now: datetime, rules: Rules
) -> Plan:
    """The messages due now (each sent at most once: the delivery's stream decides; see services.agenda.delivery)."""
    out = Plan()
    digests: dict[str, list[Activity]] = {}
    for a in sorted(activities, key=lambda a: (a.due_at, str(a.activity_id))):
        r = recipients.get(a.owner_id)
        if r is None or not r.active or not r.email:
            continue
        if r.reminders == "digest":
            digests.setdefault(r.user_id, []).append(a)
            continue
        if a.due_at - rules.lead <= now < a.due_at:
            m = Message(r, f"activity:{a.activity_id}:due:{a.due_at.isoformat()}", "due", (a,))
        elif a.due_at <= now < a.due_at + rules.overdue_window:
            m = Message(r, f"activity:{a.activity_id}:overdue", "overdue", (a,))
        else:
            continue
        _add(out, m, now)
    for user_id, items in digests.items():
        if (d := digest(recipients[user_id], items, now, rules)) is not None:
            _add(out, d, now)
    for al in alerts:
        if not al.raised_at <= now < al.raised_at + rules.alert_window:
            continue
        for user_id in al.concerns or _with_role(recipients, ROLE_OF_KIND.get(al.kind)):
            r = recipients.get(user_id)
            if r is not None and r.active and r.email:
                _add(out, Message(r, f"alert:{al.alert_id}", "alert", alert=al), now)
    return out


def _with_role(recipients: dict[str, Recipient], role: str | None) -> list[str]:
    return sorted(u for u, r in recipients.items() if role is not None and role in r.roles)


def _add(out: Plan, m: Message, now: datetime) -> None:
    if in_quiet_hours(m.recipient, now):
        out.held += 1
    else:
        out.messages.append(m)


def digest(r: Recipient, activities: list[Activity], now: datetime, rules: Rules) -> Message | None:
    """The recipient's digest of today (local), once their digest time has come: what is due today and what is
    overdue (within the window); None before the time, or with nothing to tell."""
    local = now.astimezone(r.zone)
    at = r.digest_at or time(7, 30)
    if local.time() < at:
        return None
    day_end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=r.zone)
    items = tuple(a for a in activities if now - rules.overdue_window <= a.due_at < day_end)
    if not items:
        return None
    return Message(r, f"digest:{local.date().isoformat()}", "digest", items, day=local.date())
