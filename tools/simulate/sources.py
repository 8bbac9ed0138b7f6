"""The simulation's leads as each source really delivers them: the website form (HMAC-signed), Ladipage (token in the
URL), Facebook Lead Ads (the lead put where the Graph API answers, then the signed Page webhook naming only its id)
and Google Ads lead forms (the key in the body). The leads service maps each (services/leads/sources.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr

from shared.ops.settings import Settings


@dataclass
class Ids:
    """The source-side ids of a delivery, drawn from the simulation's seeded random numbers."""

    rng: random.Random

    def hex(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128)).hex

    def digits(self) -> str:
        return str(self.rng.randrange(10**14, 10**15))


def _signed(body: bytes, secret: SecretStr) -> str:
    return "sha256=" + hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()


async def website(
    http: httpx.AsyncClient, leads: str, secret: SecretStr, person: dict[str, str], campaign: str, ids: Ids
) -> httpx.Response:
    form = {"submission_id": ids.hex(), "message": "Cần tư vấn báo giá", "utm_source": "facebook"}
    body = json.dumps(person | form | {"utm_campaign": campaign, "consent": True}, ensure_ascii=False).encode()
    return await http.post(
        f"{leads}/webhooks/website", content=body, headers={"X-Pipelines-Signature": _signed(body, secret)}
    )


async def ladipage(
    http: httpx.AsyncClient, leads: str, token: SecretStr, person: dict[str, str], campaign: str
) -> httpx.Response:
    return await http.post(
        f"{leads}/webhooks/ladipage",
        params={"token": token.get_secret_value()},
        json=person | {"utm_campaign": campaign, "url_page": "https://ladi.example.vn/tu-dong"},
    )


def graph_stub(settings: Settings) -> bool:
    """Facebook leads only where the Graph URL is the local stub (tools/graph_stub.py), never Facebook's."""
    url = settings.facebook_graph_url
    return settings.facebook_access_token is not None and url.startswith("http://127.0.0.1:")


async def facebook(
    http: httpx.AsyncClient, leads: str, settings: Settings, person: dict[str, str], campaign: str, ids: Ids
) -> httpx.Response:
    leadgen_id = ids.digits()
    fields = {"full_name": person["name"], "email": person["email"], "phone_number": person["phone"]}
    lead = {
        "created_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "campaign_id": campaign,
        "ad_id": "120210000000001",
        "form_id": "120210000000002",
        "field_data": [{"name": k, "values": [v]} for k, v in fields.items()],
    }
    (await http.put(f"{settings.facebook_graph_url}/_demo/leads/{leadgen_id}", json=lead)).raise_for_status()
    change = {"field": "leadgen", "value": {"leadgen_id": leadgen_id, "page_id": "100000000000001"}}
    body = json.dumps({"object": "page", "entry": [{"id": "100000000000001", "changes": [change]}]}).encode()
    assert settings.facebook_app_secret is not None
    headers = {"X-Hub-Signature-256": _signed(body, settings.facebook_app_secret), "Content-Type": "application/json"}
    return await http.post(f"{leads}/webhooks/facebook", content=body, headers=headers)


async def google_ads(
    http: httpx.AsyncClient, leads: str, key: SecretStr, person: dict[str, str], campaign: str, ids: Ids
) -> httpx.Response:
    columns = {"FULL_NAME": person["name"], "EMAIL": person["email"], "PHONE_NUMBER": person["phone"]}
    body = {
        "lead_id": ids.hex(),
        "google_key": key.get_secret_value(),
        "campaign_id": campaign,
        "form_id": "4200000001",
        "user_column_data": [{"column_id": k, "string_value": v} for k, v in columns.items()],
    }
    return await http.post(f"{leads}/webhooks/google-ads", json=body)
