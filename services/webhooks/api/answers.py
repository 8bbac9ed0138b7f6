"""What the webhooks API answers, as models: the OpenAPI document says it, with an example taken from a real answer,
and a fuzz run checks each answer against it (decision 0029). No ``extra="allow"`` here, as before: an answer holds
the fields named and nothing else: a subscription's secret only in the answers that create or rotate it
(``SubscriptionWithSecret``), never in a read."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

_SUBSCRIPTION: dict[str, JsonValue] = {
    "id": "6b958676-8fc5-45cf-bddc-283f96a2c166",
    "url": "https://hooks.example.vn/pipelines",
    "event_types": ["pipelines.deals.DealWon", "pipelines.production.*"],
    "description": "",
    "enabled": True,
    "disabled_reason": None,
    "consecutive_failures": 0,
    "created_by": "u-admin",
    "created_at": "2026-12-07T02:45:51.450044Z",
    "updated_at": "2026-12-07T02:45:51.450044Z",
    "secret_rotated_at": "2026-12-07T02:45:51.450044Z",
    "previous_secret_until": None,
}
# an example of the form only (whsec_, base64 of the bytes 0 to 31), never a real subscription's
_EXAMPLE_SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # noqa: S105 - an example
_DELIVERY: dict[str, JsonValue] = {
    "id": 7,
    "subscription_id": "6b958676-8fc5-45cf-bddc-283f96a2c166",
    "event_id": "e7b60f5f-7e3c-491f-93ab-1a5a110196aa",
    "event_type": "pipelines.deals.DealWon",
    "stream": "deal-ab0a95e8-4407-43d2-ab50-7d9629e9d1d9",
    "topic": "pipelines.deals.events",
    "kafka_partition": 2,
    "kafka_offset": 1,
    "state": "delivered",
    "tries": 2,
    "attempts": 2,
    "next_at": "2026-12-07T02:45:49.505194Z",
    "created_at": "2026-12-07T02:45:49.115066Z",
    "done_at": "2026-12-07T02:45:49.718587Z",
}


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_SUBSCRIPTION]})
    id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None = Field(description="failures (a run of failed attempts), by_operator, or null")
    consecutive_failures: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime
    previous_secret_until: datetime | None = Field(
        None,
        description="after a rotation, until when deliveries are signed with the previous secret too "
        "(two v1 signatures in webhook-signature; PIPELINES_WEBHOOKS_ROTATION_OVERLAP_S); null: only the current",
    )


class SubscriptionWithSecret(SubscriptionOut):
    """A subscription and its new secret: the answer that created it or rotated its secret, the only one showing it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SUBSCRIPTION | {"secret": _EXAMPLE_SECRET}]})
    secret: str = Field(description="whsec_…: shown in this answer only; keep it, the API never shows it again")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_DELIVERY]})
    id: int
    subscription_id: uuid.UUID
    event_id: str
    event_type: str
    stream: str
    topic: str
    kafka_partition: int
    kafka_offset: int
    state: Literal["pending", "delivered", "dead", "skipped"]
    tries: int = Field(description="attempts since it was queued or last redriven")
    attempts: int
    next_at: datetime
    created_at: datetime
    done_at: datetime | None


class AttemptOut(BaseModel):
    n: int
    at: datetime
    outcome: Literal["delivered", "http_error", "network_error", "refused"]
    status_code: int | None
    latency_ms: float
    error: str | None


class DeliveryDetail(DeliveryOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _DELIVERY
                | {
                    "attempt_log": [
                        {
                            "n": 1,
                            "at": "2026-12-07T02:45:49.492275Z",
                            "outcome": "http_error",
                            "status_code": 500,
                            "latency_ms": 66.91957500879653,
                            "error": "answered 500",
                        },
                        {
                            "n": 2,
                            "at": "2026-12-07T02:45:49.718587Z",
                            "outcome": "delivered",
                            "status_code": 204,
                            "latency_ms": 30.418198002735153,
                            "error": None,
                        },
                    ]
                }
            ]
        }
    )
    attempt_log: list[AttemptOut]
