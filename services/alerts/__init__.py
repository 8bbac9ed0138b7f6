"""Alerts, a bounded context of its own: time-driven facts ("this deal has been stuck for 20 days") published as
events on the alerts topic.

No timer writes into an aggregate. A scanner in a service's projector process asks the service's read models, with
the clock, which conditions hold now (``Check``s); each occurrence becomes one alert stream
``alert-<uuid5(kind, entity, occurrence)>``: ``AlertRaised`` at version 1 when the condition appears,
``AlertCleared`` at version 2 when it no longer holds. Appending with those expected versions makes raising and
clearing idempotent, whichever scanner process gets there first. The relay routes ``pipelines.alerts.*`` events
to the alerts topic; the ``alerts`` projection keeps them queryable; ``GET /alerts`` shows them.

- ``events``: the contract (``AlertRaised``, ``AlertCleared``), pure like every events module;
- ``scanner``: ``Condition``, ``Check`` and the ``AlertScanner``;
- ``projection``: the ``alerts`` read model and its query;
- ``routes``: ``GET /alerts`` for a service's API;
- ``wiring``: ``AlertingService``, the kernel's ``ServiceCore`` with the alerts' parts added (the services' cores
  derive from it, so the kernel runs the alerts without knowing them).

This package knows no other service: a service gives it its checks and its read models.
"""
