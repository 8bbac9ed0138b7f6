"""The alerts' event contract: ``pipelines.alerts.*``, published on the alerts topic (docs/events/alerts/)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import AwareDatetime

from shared.core.events import DomainEvent

ALERTS_PREFIX = "pipelines.alerts."


class AlertRaised(DomainEvent):
    event_type: ClassVar[str] = "pipelines.alerts.AlertRaised"
    alert_id: uuid.UUID
    service: str
    kind: str  # e.g. deal_stuck, lead_not_contacted, order_at_risk
    entity: str  # the stream the alert is about, e.g. deal-<uuid>
    summary: str
    details: dict[str, str]
    raised_at: AwareDatetime
    # the users it concerns (issue 25, additive): the owner the read model knows, whom the agenda's notifier tells;
    # empty: the active users whose role the kind names (services.agenda.notifier.plan.ROLE_OF_KIND)
    concerns: tuple[str, ...] = ()


class AlertCleared(DomainEvent):
    event_type: ClassVar[str] = "pipelines.alerts.AlertCleared"
    alert_id: uuid.UUID
    service: str
    kind: str
    entity: str
    cleared_at: AwareDatetime
