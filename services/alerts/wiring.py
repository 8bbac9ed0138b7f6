"""The alerts run inside each service's processes: ``AlertingService`` is the kernel's ``ServiceCore`` with the
alerts' parts added as an ``Addon`` (the kernel runs them without knowing them).

Its relay routes ``pipelines.alerts.*`` to the alerts topic, its projectors keep the ``alerts`` read model and
scan the service's ``alert_checks`` with the service's clock.
"""

from __future__ import annotations

from services.alerts.events import ALERTS_PREFIX
from services.alerts.projection import alerts_projection
from services.alerts.scanner import AlertScanner, Check
from shared.edge.service import Addon, ServiceCore
from shared.messaging.kafka import TopicSpec


class AlertingService(ServiceCore):
    """A service whose processes also raise, publish and keep its alerts."""

    def alert_checks(self) -> dict[str, tuple[str, Check]]:
        """kind → (the read model it asks, the check): the time-driven conditions this service watches."""
        return {}

    def alert_scanner(self) -> AlertScanner:
        return AlertScanner(
            self.storage.store,
            self.storage.read_models,
            self.name,
            self.alert_checks(),
            self.clock,
            interval_s=self.settings.alert_scan_seconds,
        )

    def addons(self) -> list[Addon]:
        s = self.settings
        topic = s.alerts_topic()
        alerts = Addon(
            projections=(alerts_projection(topic),),
            routes={ALERTS_PREFIX: topic},
            topics=(TopicSpec(topic, s.kafka_partitions, s.kafka_replication_factor),),
            workers=(self.alert_scanner().run,) if self.alert_checks() else (),
        )
        return [*super().addons(), alerts]
