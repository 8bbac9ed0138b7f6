"""Credentials on the real services: webhooks refuse bad signatures. (The API tokens' keys and their rotation:
tests/integration/test_token_keys.py.)"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.deals.main import DealsService
from services.deals.main import build as build_deals
from services.leads.main import LeadsService
from services.leads.main import build as build_leads
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints
from testkit.services import client_for, drop_everything, isolated_settings

pytestmark = [pytest.mark.pg]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "leads"
WEBHOOK_SECRETS = {
    "website_form_secret": "website-secret-for-the-test",
    "ladipage_token": "ladipage-token-for-the-test",
    "facebook_app_secret": "facebook-secret-for-the-test",
    "facebook_verify_token": "facebook-verify-for-the-test",
    "facebook_access_token": "facebook-access-for-the-test",
    "google_ads_webhook_key": "google-key-for-the-test",
}


@pytest.fixture(scope="module")
async def cores(endpoints: Endpoints) -> AsyncIterator[tuple[DealsService, LeadsService]]:
    settings = Settings.model_validate(isolated_settings(endpoints).model_dump() | WEBHOOK_SECRETS)
    deals, leads = await build_deals(settings), await build_leads(settings)
    try:
        yield deals, leads
    finally:
        await deals.close()
        await leads.close()
        await drop_everything(settings)


def signed(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_every_webhook_refuses_a_missing_or_bad_credential_and_stores_nothing(
    cores: tuple[DealsService, LeadsService],
) -> None:
    _, leads = cores
    website, ladipage = (FIXTURES / "website_form.json").read_bytes(), (FIXTURES / "ladipage.json").read_bytes()
    facebook, google = (FIXTURES / "facebook_webhook.json").read_bytes(), (FIXTURES / "google_ads.json").read_bytes()
    google_data = json.loads(google)
    refused: list[tuple[str, str, dict[str, object]]] = [
        ("POST", "/webhooks/website", {"content": website}),
        ("POST", "/webhooks/website", {"content": website, "headers": {"X-Pipelines-Signature": "sha256=00"}}),
        ("POST", "/webhooks/website", {"content": website, "headers": {"X-Pipelines-Signature": signed(website, "x")}}),
        ("POST", "/webhooks/website", {"content": website + b" ", "headers": {"X-Pipelines-Signature": signed(website, WEBHOOK_SECRETS["website_form_secret"])}}),
        ("POST", "/webhooks/ladipage", {"content": ladipage}),
        ("POST", "/webhooks/ladipage", {"content": ladipage, "params": {"token": "ladipage-token-for-the-tesT"}}),
        ("GET", "/webhooks/facebook", {"params": {"hub.mode": "subscribe", "hub.challenge": "1"}}),
        ("GET", "/webhooks/facebook", {"params": {"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"}}),
        ("POST", "/webhooks/facebook", {"content": facebook}),
        ("POST", "/webhooks/facebook", {"content": facebook, "headers": {"X-Hub-Signature-256": signed(facebook, "x")}}),
        ("POST", "/webhooks/google-ads", {"content": json.dumps({k: v for k, v in google_data.items() if k != "google_key"})}),
        ("POST", "/webhooks/google-ads", {"json": google_data | {"google_key": "google-key-for-the-tesT"}}),
    ]  # fmt: skip
    async with client_for(leads.app()) as http:
        for method, url, kwargs in refused:
            r = await http.request(method, url, **kwargs)
            assert r.status_code == 401, (url, kwargs.get("headers"), kwargs.get("params"), r.text)
        async with leads.storage.pool.acquire() as conn:
            stored = await conn.fetchval(f'SELECT count(*) FROM "{leads.storage.store.schema}".events')
        assert stored == 0, "a refused delivery stored nothing"
        # the right credential is let in (so the refusals above were about the credential)
        secret = WEBHOOK_SECRETS["website_form_secret"]
        r = await http.post(
            "/webhooks/website", content=website, headers={"X-Pipelines-Signature": signed(website, secret)}
        )
        assert r.status_code == 201, r.text
        r = await http.post("/webhooks/ladipage", content=ladipage, params={"token": WEBHOOK_SECRETS["ladipage_token"]})
        assert r.status_code == 201, r.text
        r = await http.post(
            "/webhooks/google-ads",
            content=google.replace(
                google_data["google_key"].encode(), WEBHOOK_SECRETS["google_ads_webhook_key"].encode()
            ),
        )
        assert r.status_code == 201, r.text
