"""Prometheus metrics of every process (one registry per process; labels name the service and the part).

| metric | kind | labels | what |
|---|---|---|---|
| `pipelines_events_appended_total` | counter | service | events appended to the store |
| `pipelines_append_seconds` | histogram | service | one append (its transaction) |
| `pipelines_relay_backlog_events` | gauge | service | committed events not yet published |
| `pipelines_relay_backlog_seconds` | gauge | service | age of the oldest of them |
| `pipelines_relay_published_total` | counter | service | events published to Kafka |
| `pipelines_relay_stuck` | gauge | service | 1 while the relay is stopped before an event Kafka cannot take |
| `pipelines_consumer_lag` | gauge | service, projection, state, topic, partition | messages not yet consumed by the live generation (`state="active"`) or a rebuild (`"building"`) |
| `pipelines_projection_applied_total` | counter | service, projection | events applied to a read model |
| `pipelines_projection_duplicates_total` | counter | service, projection | events read again at or below their stream's applied version, skipped |
| `pipelines_projection_generation` | gauge | service, projection | the generation being consumed (1 per live one) |
| `pipelines_projection_stalled_partitions` | gauge | service, projection, topic, partition | 1 while stopped at a gap |
| `pipelines_projection_waiting_for_topics` | gauge | service, projection | 1 while the read model waits for a topic not made yet |
| `pipelines_dead_letters_total` | counter | service, projection | messages sent to the dead-letter topic |
| `pipelines_http_request_seconds` | histogram | service, method, route, status | HTTP requests |
| `pipelines_http_in_flight` | gauge | service | requests an API process is handling (decision 0032) |
| `pipelines_http_shed_total` | counter | service | requests answered 503 `busy`: `PIPELINES_MAX_IN_FLIGHT` were in flight |
| `pipelines_http_worker_requests_total` | counter | service, worker | requests each API worker process answered (`PIPELINES_API_WORKERS`; `0` when one) |
| `pipelines_pii_epoch_age_seconds` | gauge | key_store | since the last key rotation (reported by the elected rotator) |
| `pipelines_notifier_sent_total` | counter | what | reminders the agenda's notifier sent by SMTP (due, overdue, alert, digest) |
| `pipelines_notifier_failed_total` | counter | outcome | sends the SMTP server refused or missed (`retry` later, or `gave_up`) |
| `pipelines_notifier_claims_lost_total` | counter | | deliveries another notifier claimed first |
| `pipelines_notifier_held` | gauge | | reminders waiting for their recipient's quiet hours to end |
| `pipelines_notifier_send_seconds` | histogram | | one SMTP send |
| `pipelines_signin_attempts_total` | counter | result | sign-ins by password: `ok`, `bad_credentials`, `locked`, `too_many_requests`, `unavailable` |
| `pipelines_sessions_started_total` | counter | method | sign-in sessions started (`password`, `oidc`) |
| `pipelines_oidc_signins_total` | counter | result | sign-ins with OpenID Connect: `ok`, `too_many_requests`, or the refusal's rule (`oidc_state_invalid`, `oidc_binding_mismatch`, `oidc_provider_refused`, `oidc_id_token_invalid`, `email_unverified`, `no_such_user`, `unavailable`) |
| `pipelines_sessions_ended_total` | counter | reason | sessions ended: `signed_out`, `everywhere`, `admin`, `password_reset`, `deactivated`, `idle`, `absolute` |
| `pipelines_tokens_minted_total` | counter | | API tokens the sign-in service signed for sessions |
| `pipelines_webhook_queued_total` | counter | | webhook deliveries queued by the dispatcher (one per event and subscription) |
| `pipelines_webhook_attempts_total` | counter | outcome | webhook delivery attempts: `delivered`, `http_error`, `network_error`, `refused` |
| `pipelines_webhook_attempt_seconds` | histogram | | one webhook delivery attempt |
| `pipelines_webhook_dead_lettered_total` | counter | | webhook deliveries dead-lettered after their last try |
| `pipelines_webhook_dead_letters` | gauge | | dead-lettered webhook deliveries waiting for a redrive or a skip (each holds its stream) |
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

EVENTS_APPENDED = Counter("pipelines_events_appended", "events appended to the store", ["service"])
APPEND_SECONDS = Histogram(
    "pipelines_append_seconds",
    "one append, its transaction included",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
RELAY_BACKLOG = Gauge("pipelines_relay_backlog_events", "committed events not yet published", ["service"])
RELAY_BACKLOG_SECONDS = Gauge("pipelines_relay_backlog_seconds", "age of the oldest unpublished event", ["service"])
RELAY_STUCK = Gauge("pipelines_relay_stuck", "1 while stopped before an event Kafka cannot take", ["service"])
RELAY_PUBLISHED = Counter("pipelines_relay_published", "events published to Kafka", ["service"])
CONSUMER_LAG = Gauge(
    "pipelines_consumer_lag",
    "messages not yet consumed, by the live generation (state active) or a rebuild (state building)",
    ["service", "projection", "state", "topic", "partition"],
)
PROJECTION_APPLIED = Counter(
    "pipelines_projection_applied", "events applied to a read model", ["service", "projection"]
)
PROJECTION_DUPLICATES = Counter(
    "pipelines_projection_duplicates",
    "events read again at or below their stream's applied version and skipped (a redelivery or a replay)",
    ["service", "projection"],
)
PROJECTION_GENERATION = Gauge("pipelines_projection_generation", "generations consumed", ["service", "projection"])
PROJECTION_STALLED = Gauge(
    "pipelines_projection_stalled_partitions",
    "1 while the partition is stopped at a gap in a stream's versions",
    ["service", "projection", "topic", "partition"],
)
PROJECTION_WAITING = Gauge(
    "pipelines_projection_waiting_for_topics",
    "1 while the read model waits for a topic it reads to be made (another service makes it)",
    ["service", "projection"],
)
DEAD_LETTERS = Counter("pipelines_dead_letters", "messages sent to the dead-letter topic", ["service", "projection"])
HTTP_SECONDS = Histogram(
    "pipelines_http_request_seconds",
    "HTTP requests",
    ["service", "method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
HTTP_IN_FLIGHT = Gauge(
    "pipelines_http_in_flight", "requests an API process is handling (shared.edge.overload)", ["service"]
)
HTTP_WORKER_REQUESTS = Counter(
    "pipelines_http_worker_requests",
    "requests each API worker process answered (PIPELINES_API_WORKERS; worker 0 when one)",
    ["service", "worker"],
)
HTTP_SHED = Counter(
    "pipelines_http_shed", "requests answered 503 busy: the process had PIPELINES_MAX_IN_FLIGHT in flight", ["service"]
)

PII_EPOCH_AGE = Gauge(
    "pipelines_pii_epoch_age_seconds", "since the personal-data key store's last rotation", ["key_store"]
)

NOTIFIER_SENT = Counter("pipelines_notifier_sent", "reminders sent by SMTP", ["what"])
NOTIFIER_FAILED = Counter("pipelines_notifier_failed", "sends the SMTP server refused or missed", ["outcome"])
NOTIFIER_CLAIMS_LOST = Counter("pipelines_notifier_claims_lost", "deliveries another notifier claimed first")
NOTIFIER_HELD = Gauge("pipelines_notifier_held", "reminders waiting for their recipient's quiet hours to end")
NOTIFIER_SEND_SECONDS = Histogram(
    "pipelines_notifier_send_seconds", "one SMTP send", buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30)
)

SIGNIN_ATTEMPTS = Counter("pipelines_signin_attempts", "sign-ins by password, by result", ["result"])
SESSIONS_STARTED = Counter("pipelines_sessions_started", "sign-in sessions started", ["method"])
OIDC_SIGNINS = Counter("pipelines_oidc_signins", "sign-ins with OpenID Connect, by result", ["result"])
SESSIONS_ENDED = Counter("pipelines_sessions_ended", "sign-in sessions ended", ["reason"])
TOKENS_MINTED = Counter("pipelines_tokens_minted", "API tokens signed for sessions")
WEBHOOK_QUEUED = Counter("pipelines_webhook_queued", "webhook deliveries queued (one per event and subscription)")
WEBHOOK_ATTEMPTS = Counter("pipelines_webhook_attempts", "webhook delivery attempts, by outcome", ["outcome"])
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "pipelines_webhook_attempt_seconds",
    "one webhook delivery attempt",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBHOOK_DEAD_LETTERED = Counter("pipelines_webhook_dead_lettered", "webhook deliveries dead-lettered")
WEBHOOK_DEAD = Gauge(
    "pipelines_webhook_dead_letters", "dead-lettered webhook deliveries waiting (each holds its stream)"
)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type. An API worker among several
    (``shared.edge.workers``: ``PROMETHEUS_MULTIPROC_DIR`` set) answers every worker's, summed (gauges per ``pid``)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
