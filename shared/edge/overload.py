"""Overload answered, not queued (decision 0032): a bound on the requests one API process has in flight.

Past ``PIPELINES_MAX_IN_FLIGHT`` requests being handled at once, a request is answered at once ``503`` with
``Retry-After`` and a problem+json body (rule ``busy``) before anything else of the app runs: no token is checked,
no body read, no connection of the pool asked for. A request that is answered costs microseconds; one that is
queued holds memory and its client's patience, and a queue past the pool only makes every request later.

Reads and writes share the one bound: both wait for the same pool. ``/healthz``, ``/readyz`` and ``/metrics`` are
outside it, so probes and scrapes still answer under load. ``pipelines_http_in_flight`` shows the requests in flight,
``pipelines_http_shed_total`` counts those answered busy.
"""

from __future__ import annotations

import random

from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.edge.problems import MEDIA_TYPE, problem_bytes
from shared.ops.metrics import HTTP_IN_FLIGHT, HTTP_SHED
from shared.ops.settings import Settings

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes answer under any load
PER_CONNECTION = 4  # the default bound: this many requests per connection of the pool (one running, three waiting)
FLOOR, CEILING = 8, 1000  # the default's bounds whatever the pool size
RETRY_AFTER = (b"1", b"2")  # seconds; one or the other at random, so the clients told to wait do not come back as one
DETAIL = "this API is busy: too many requests in flight; retry after the seconds Retry-After says"
BODY = problem_bytes(503, DETAIL, "busy")


def in_flight_bound(settings: Settings) -> int:
    """``PIPELINES_MAX_IN_FLIGHT``, or else 4 × ``PIPELINES_DB_POOL_SIZE`` kept within 8–1000."""
    if settings.max_in_flight is not None:
        return settings.max_in_flight
    return max(FLOOR, min(CEILING, PER_CONNECTION * settings.db_pool_size))


class InFlightLimit:
    """Pure ASGI, outermost: at most ``state.max_in_flight`` requests in the app at once (none set: no bound), the
    others answered 503 ``busy`` with ``Retry-After`` without going further.

    The bound is read once, here: Starlette builds an app's middleware when the app first runs (its lifespan or first
    request), after its process has set ``app.state.max_in_flight`` from its settings (``in_flight_bound``)."""

    def __init__(self, app: ASGIApp, service: str, state: State) -> None:
        self.app = app
        self.bound: int | None = getattr(state, "max_in_flight", None)
        self.in_flight = 0
        self.gauge = HTTP_IN_FLIGHT.labels(service)
        self.shed = HTTP_SHED.labels(service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.bound is not None and self.in_flight >= self.bound:
            self.shed.inc()
            await busy(send)
            return
        self.in_flight += 1
        self.gauge.set(self.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.gauge.set(self.in_flight)


async def busy(send: Send) -> None:
    """The 503 answer, written straight to the server: its bytes were made once at import."""
    headers = [
        (b"content-type", MEDIA_TYPE.encode()),
        (b"content-length", str(len(BODY)).encode()),
        (b"retry-after", random.choice(RETRY_AFTER)),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})
