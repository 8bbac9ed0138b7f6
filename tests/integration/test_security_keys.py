"""Credentials on the real services: JWT keys rotate without refusing a valid token; webhooks refuse bad signatures.

Rotation (docs/OPERATIONS.md): add the new key to every replica (the old one still signs), then sign with the new
one, then remove the old one once its tokens have expired. The replicas here are deals API apps built, as a
process builds them, from settings read from the environment, over one real store; the issuer signs with
``signing_key`` (as ``pipelines token`` and the simulation do).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
from fastapi import FastAPI

from services.deals.api import DealsAPI, create_app
from services.deals.main import DealsService
from services.deals.main import build as build_deals
from services.leads.main import LeadsService
from services.leads.main import build as build_leads
from shared.edge.auth import TokenVerifier, issue_token, signing_key
from shared.ops.settings import Settings, SettingsError
from shared.ops.stack import Endpoints
from testkit.services import client_for, drop_everything, isolated_settings

pytestmark = [pytest.mark.pg]

OLD, NEW = "2026-05", "2026-11"
SECRETS = {OLD: "o" * 40, NEW: "n" * 40}
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


def env_settings(monkeypatch: pytest.MonkeyPatch, keys: list[str], active: str) -> Settings:
    """The JWT settings a process reads from its environment at this step of the rotation."""
    monkeypatch.setenv("PIPELINES_JWT_KEYS", json.dumps({k: SECRETS[k] for k in keys}))
    monkeypatch.setenv("PIPELINES_JWT_ACTIVE_KID", active)
    return Settings(_env_file=None)


def replica(deals: DealsService, settings: Settings) -> FastAPI:
    st = deals.storage
    api = DealsAPI(deals.deals, st.store, st.read_models, st.personal_data, "Asia/Ho_Chi_Minh", st.readiness)
    return create_app(api, TokenVerifier.from_settings(settings))


def token(settings: Settings) -> str:
    kid, secret = signing_key(settings)
    return issue_token(key_id=kid, secret=secret, user_id="u-audit", roles=["auditor"])


async def status(app: FastAPI, tok: str) -> int:
    async with client_for(app) as http:
        r = await http.get(f"/deals/{uuid.uuid4()}", headers={"Authorization": f"Bearer {tok}"})
        return r.status_code


async def test_jwt_keys_rotate_without_refusing_a_valid_token(
    cores: tuple[DealsService, LeadsService], monkeypatch: pytest.MonkeyPatch
) -> None:
    deals, _ = cores
    before = env_settings(monkeypatch, [OLD], OLD)
    replicas = [replica(deals, before), replica(deals, before)]
    issued = [token(before)]

    async def every_token_works() -> None:  # a deal that does not exist: 404 once the token is accepted
        for app in replicas:
            for tok in issued:
                assert await status(app, tok) == 404, jwt.get_unverified_header(tok)

    await every_token_works()
    # 1. every replica, one at a time, learns the new key; the old one still signs
    overlap = env_settings(monkeypatch, [OLD, NEW], OLD)
    for i in range(len(replicas)):
        replicas[i] = replica(deals, overlap)
        issued.append(token(overlap))
        await every_token_works()
    assert {jwt.get_unverified_header(t)["kid"] for t in issued} == {OLD}
    # 2. once all know it, the issuer signs with the new key: old and new tokens both work everywhere
    signing = env_settings(monkeypatch, [OLD, NEW], NEW)
    issued.append(token(signing))
    assert jwt.get_unverified_header(issued[-1])["kid"] == NEW
    await every_token_works()
    # 3. after the old tokens' lifetime, the old key is removed: its tokens are refused, the new ones work
    after = env_settings(monkeypatch, [NEW], NEW)
    replicas = [replica(deals, after), replica(deals, after)]
    issued = [issued[-1], token(after)]
    await every_token_works()
    old_token = issue_token(key_id=OLD, secret=SECRETS[OLD].encode(), user_id="u-audit", roles=["auditor"])
    async with client_for(replicas[0]) as http:
        r = await http.get(f"/deals/{uuid.uuid4()}", headers={"Authorization": f"Bearer {old_token}"})
    assert r.status_code == 401
    assert "unknown key id '2026-05'" in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    # the active key id must be one of the keys, and names the key when there are several
    with pytest.raises(SettingsError, match="not one of"):
        signing_key(env_settings(monkeypatch, [NEW], OLD))
    monkeypatch.delenv("PIPELINES_JWT_ACTIVE_KID")
    monkeypatch.setenv("PIPELINES_JWT_KEYS", json.dumps(SECRETS))
    with pytest.raises(SettingsError, match="PIPELINES_JWT_ACTIVE_KID"):
        signing_key(Settings(_env_file=None))


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
