"""A subscription's event-type filter: exact types (``pipelines.deals.DealWon``) and prefixes ending in ``.*``
(``pipelines.deals.*``), each checked against the registered types: a filter naming nothing that exists is refused
(a typo would otherwise silently receive nothing). An empty filter is refused too: a subscription says what it wants.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from services.webhooks.domain.errors import InvalidSubscriptionError, UnknownEventTypeError

MAX_FILTERS = 50
MAX_FILTER_CHARS = 120
_SHAPE = re.compile(r"^[a-z][a-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*(\.\*)?$")


def check(filters: Iterable[str], registered: Collection[str]) -> list[str]:
    """The filter, deduplicated and sorted; refused (422 naming ``event_types``) when malformed or naming nothing."""
    out = sorted(set(filters))
    if not out:
        raise InvalidSubscriptionError("event_types names at least one type or prefix", field="event_types")
    if len(out) > MAX_FILTERS:
        raise InvalidSubscriptionError(f"event_types holds at most {MAX_FILTERS} entries", field="event_types")
    for f in out:
        if len(f) > MAX_FILTER_CHARS or not _SHAPE.match(f):
            raise InvalidSubscriptionError(
                f"event_types: {f[:MAX_FILTER_CHARS]!r} is neither a type nor a prefix ending in .*",
                field="event_types",
            )
        if not any(matches(f, t) for t in registered):
            raise UnknownEventTypeError(f"event_types: {f!r} names no registered event type", field="event_types")
    return out


def matches(entry: str, event_type: str) -> bool:
    if entry.endswith(".*"):
        return event_type.startswith(entry[:-1])
    return entry == event_type


def wanted(filters: Iterable[str], event_type: str) -> bool:
    return any(matches(f, event_type) for f in filters)
