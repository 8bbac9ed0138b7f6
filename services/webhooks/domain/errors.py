"""What the webhooks API refuses, each with its HTTP status and rule (answered as problem+json)."""

from __future__ import annotations


class WebhookError(Exception):
    status = 400
    rule = "refused"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the body field at fault (a 422 names it)


class InvalidSubscriptionError(WebhookError):
    status, rule = 422, "invalid_subscription"


class UnknownEventTypeError(WebhookError):
    status, rule = 422, "unknown_event_type"


class AddressRefusedError(WebhookError):
    """The URL's host resolves to (or is) an address a delivery may not reach: loopback, link-local, private…"""

    status, rule = 422, "address_refused"


class UnresolvableError(WebhookError):
    status, rule = 422, "unresolvable_host"


class NotFoundError(WebhookError):
    status, rule = 404, "not_found"


class NotDeadError(WebhookError):
    """Only a dead-lettered delivery may be redriven or skipped."""

    status, rule = 409, "not_dead_lettered"


class TooManySubscriptionsError(WebhookError):
    status, rule = 409, "too_many_subscriptions"
