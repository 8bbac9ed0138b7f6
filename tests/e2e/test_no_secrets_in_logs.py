"""Secrets come only from the environment, and neither they nor personal data reach the logs.

Every service runs as a process (``all`` mode) at DEBUG, configured only by environment variables holding
secrets made here (a signing key, personal-data master key, webhook secrets; the database password is the stack's). A
lead with a name, email and phone arrives through the signed website webhook, goes through the leads API, becomes a
deal (its contact crossing Kafka) with a call on the agenda whose notes name them, that is won and becomes an
order; the same person is registered as a user of the directory; bad signatures, bad tokens and invalid input carrying personal data are sent too. Then every line the processes wrote is searched for each secret, the tokens
used, and each piece of personal data; and every line (stdout and stderr: structlog's, uvicorn's, aiokafka's…) is
one JSON object naming its service and process kind, with one access line per request (``http.request``: the
route's template, status, duration, user id) and none of uvicorn's own.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.deals.events import deal_id_for_lead
from services.production.handlers import order_id_for_deal
from shared.edge.auth import issue_token
from shared.edge.keys import SigningKeys
from shared.ops.settings import SERVICES, Settings
from shared.ops.stack import ROOT, Endpoints, free_ports
from testkit.services import drop_everything, isolated_settings, stop_processes
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]

PERSON = {"name": "Lương Thị Bảo Khuyên", "email": "khuyen.luong.7731@example.vn", "phone": "0987 731 442"}
PERSONAL = ["Lương Thị Bảo Khuyên", "Khuyên", "khuyen.luong.7731", "987731442", "987 731 442", "Phố Hàng Mã 77"]


async def dead_letters(bootstrap: str, topic: str) -> None:
    """Two messages the deals service's reactions cannot apply, with personal data in the clear."""
    envelope = {
        "id": str(uuid.uuid4()),
        "source": "/pipelines/leads",
        "type": "pipelines.leads.LeadConverted",
        "subject": "lead-x",
        "time": "2026-11-24T03:00:00Z",
        "data": {"lead_id": "not-a-uuid", "contact": PERSON, "note": PERSON["email"]},
        "streamid": f"lead-{uuid.uuid4()}",
        "streamversion": 1,
        "position": 1,
        "schemaversion": 1,
        "recordedtime": "2026-11-24T03:00:00Z",
        "correlationid": "c",
        "causationid": "c",
    }
    async with AIOKafkaProducer(bootstrap_servers=bootstrap) as producer:
        await producer.send_and_wait(topic, json.dumps(envelope).encode(), key=b"lead-x")
        await producer.send_and_wait(topic, f"not json: {PERSON['email']} {PERSON['phone']}".encode(), key=b"lead-y")


def json_lines(text: str, service: str) -> list[dict[str, Any]]:
    """Each line the process wrote, which must be a JSON object with its service and process kind."""
    lines = []
    for line in text.splitlines():
        try:
            found = json.loads(line)
        except ValueError:
            pytest.fail(f"a line of {service}.log is not JSON: {line[:300]}")
        assert isinstance(found, dict) and found.get("service") == service and found.get("process") == "all", line
        assert "level" in found and "event" in found and "timestamp" in found, line
        lines.append(found)
    return lines


async def _count(log: Path, text: str, n: int) -> bool:
    return (await asyncio.to_thread(log.read_text, errors="replace")).count(text) >= n


async def test_no_secret_and_no_personal_data_in_any_log_line(endpoints: Endpoints, tmp_path: Path) -> None:
    settings = isolated_settings(endpoints)
    signing = SigningKeys.generate("k-1")  # the processes get its public key only (decision 0022)
    jwt_key = signing.seeds()["k-1"]
    master_key = base64.b64encode(secrets.token_bytes(32)).decode()
    hooks = {name: f"{name}-{secrets.token_urlsafe(16)}" for name in ("website", "ladipage", "google", "fb")}
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")} | {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": str(settings.database_url),
        "PIPELINES_SCHEMA_PREFIX": settings.schema_prefix,
        "PIPELINES_TOPIC_PREFIX": settings.topic_prefix,
        "PIPELINES_PII_SCHEMA": settings.pii_schema,
        "PIPELINES_KEYRING_DIR": str(settings.keyring_dir),
        "PIPELINES_JWT_PUBLIC_KEYS": json.dumps(signing.jwks()),
        "PIPELINES_PII_MASTER_KEY": master_key,
        "PIPELINES_WEBSITE_FORM_SECRET": hooks["website"],
        "PIPELINES_LADIPAGE_TOKEN": hooks["ladipage"],
        "PIPELINES_GOOGLE_ADS_WEBHOOK_KEY": hooks["google"],
        "PIPELINES_FACEBOOK_APP_SECRET": hooks["fb"],
        "PIPELINES_LOG_LEVEL": "DEBUG",
        "PIPELINES_LOG_JSON": "true",
        **{f"PIPELINES_{s.upper()}_PORT": str(p) for s, p in ports.items()},
    }
    logs = {s: tmp_path / f"{s}.log" for s in SERVICES}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", f"services.{s}", "all"],
            cwd=tmp_path,  # no .env file there: the environment is the only source
            env=env | {"PYTHONPATH": str(ROOT)},
            stdout=logs[s].open("wb"),
            stderr=subprocess.STDOUT,
        )
        for s in SERVICES
    ]
    url = {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
    tokens = {
        role: issue_token(signing, user_id=f"u-{role}", roles=[role], team="north")
        for role in ("admin", "marketing", "sales")
    }
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    try:
        async with httpx.AsyncClient(timeout=30) as http:

            async def ready() -> bool:
                assert all(p.poll() is None for p in processes), "a service process stopped"
                try:
                    return all([(await http.get(f"{u}/readyz")).status_code == 200 for u in url.values()])
                except httpx.HTTPError:
                    return False

            await wait_until(ready, timeout=90, interval=0.3)
            # the team and the salesperson the lead is assigned to, in the directory (owners are checked there)
            r = await http.post(f"{url['directory']}/teams", json={"team_id": "north", "name": "Bắc"}, headers=admin)
            assert r.status_code == 201, r.text
            seller = {
                "user_id": "u-sales",
                "name": "Người bán",
                "email": "ban@example.vn",
                "team_id": "north",
                "roles": ["sales"],
            }
            r = await http.post(f"{url['directory']}/users", json=seller, headers=admin)
            assert r.status_code == 201, r.text
            after = {"X-Directory-After": f"{r.json()['stream_id']}@{r.json()['version']}"}
            form = json.dumps({"submission_id": f"wf-{uuid.uuid4()}", **PERSON, "consent": True}).encode()
            signature = "sha256=" + hmac.new(hooks["website"].encode(), form, hashlib.sha256).hexdigest()
            bad = await http.post(
                f"{url['leads']}/webhooks/website",
                content=form,
                headers={"X-Pipelines-Signature": "sha256=" + ("1" if signature[7] == "0" else "0") + signature[8:]},
            )
            assert bad.status_code == 401
            assert (
                await http.post(f"{url['leads']}/webhooks/ladipage", params={"token": "x"}, content=form)
            ).status_code == 401
            r = await http.post(
                f"{url['leads']}/webhooks/website", content=form, headers={"X-Pipelines-Signature": signature}
            )
            assert r.status_code == 201, r.text
            lead = r.json()["id"]
            # personal data in invalid input, and a token that is not accepted
            r = await http.post(
                f"{url['leads']}/leads",
                json={"source": "manual", "contact": PERSON | {"email": "khuyen.luong.7731@"}},
                headers=admin,
            )
            assert r.status_code == 422
            assert (
                await http.get(f"{url['leads']}/leads/{lead}", headers={"Authorization": f"Bearer {tokens['sales']}x"})
            ).status_code == 401
            r = await http.get(
                f"{url['leads']}/leads/{lead}", headers={"Authorization": f"Bearer {tokens['marketing']}"}
            )
            assert r.json()["contact"]["email"] == PERSON["email"]
            for path, body in [
                ("assign", {"owner_id": "u-sales", "team_id": "north"}),
                ("contact", {"channel": "phone"}),
                ("qualify", {"level": "sql"}),
                ("convert", {"customer": "Cửa hàng Bảo Khuyên", "title": "Tủ mát"}),
            ]:
                r = await http.post(f"{url['leads']}/leads/{lead}/{path}", json=body, headers=admin | after)
                assert r.status_code == 200, r.text
            deal = f"{url['deals']}/deals/{deal_id_for_lead(uuid.UUID(lead))}"

            async def exists(u: str) -> bool:
                return (await http.get(u, headers=admin)).status_code == 200

            await wait_until(lambda: exists(deal), timeout=60, interval=0.3)
            r = await http.get(deal, params={"include_contact": True}, headers=admin)
            assert r.json()["contact"]["email"] == PERSON["email"], "the contact reached the deals service"
            # an activity on the deal whose notes name the person (sealed under the deal's contact), and one refused
            # (due before now) carrying them: the agenda logs neither (decision 0020)
            step = {
                "kind": "phone",
                "subject_type": "deal",
                "subject_id": deal.rsplit("/", 1)[1],
                "owner_id": "u-sales",
            }
            step |= {"title": "Gọi lại", "notes": f"{PERSON['name']}, {PERSON['phone']}, {PERSONAL[-1]}"}
            r = await http.post(
                f"{url['agenda']}/activities", json=step | {"due_at": "2001-01-01T09:00:00Z"}, headers=admin
            )
            assert r.status_code == 422, r.text

            async def scheduled() -> bool:
                due = {"due_at": "2031-01-06T09:00:00+07:00"}
                r = await http.post(f"{url['agenda']}/activities", json=step | due, headers=admin | after)
                assert r.status_code in (201, 422), r.text  # 422 until the agenda's replica has the deal
                return r.status_code == 201

            await wait_until(scheduled, timeout=60, interval=0.3)
            line = {
                "product": "Tủ mát 2 cánh",
                "quantity": "1",
                "unit_price": {"amount": "14500000", "currency": "VND"},
            }
            for path, body in [
                ("change-lines", {"lines": [line]}),
                ("win", {"delivery_address": {"line1": PERSONAL[-1], "city": "Hà Nội"}}),
            ]:
                r = await http.post(f"{deal}/{path}", json=body, headers=admin)
                assert r.status_code == 200, r.text
            order = f"{url['production']}/orders/{order_id_for_deal(uuid.UUID(deal.rsplit('/', 1)[1]))}"
            await wait_until(lambda: exists(order), timeout=60, interval=0.3)
            # the same person as a user of the directory; and invalid input carrying their name and email
            user = {"user_id": "u-khuyen", "name": PERSON["name"], "email": PERSON["email"], "team_id": "north"}
            r = await http.post(f"{url['directory']}/users", json=user | {"email": "khuyen.luong.7731@"}, headers=admin)
            assert r.status_code == 422
            r = await http.post(f"{url['directory']}/users", json=user, headers=admin)
            assert r.status_code == 201, r.text
            r = await http.get(f"{url['directory']}/users/u-khuyen", headers=admin)
            assert r.json()["email"] == PERSON["email"]
            # messages on a topic that cannot be applied (a bug upstream) carry personal data in the clear
            await dead_letters(settings.kafka_bootstrap_servers, settings.events_topic("leads"))
            dead = tmp_path / "deals.log"
            await wait_until(lambda: _count(dead, "projection.dead_letter", 2), timeout=60, interval=0.3)
    finally:
        stop_processes(processes)
        await drop_everything(settings)

    text = {s: log.read_text(errors="replace") for s, log in logs.items()}
    assert all('"service.started"' in t for t in text.values()), "the processes logged (as JSON lines)"
    assert sum(t.count("\n") for t in text.values()) > 20
    password = urlsplit(str(settings.database_url)).password or ""
    forbidden = {
        "JWT signing key": jwt_key,
        "personal-data master key": master_key,
        "database password": password,
        **{f"{name} webhook secret": value for name, value in hooks.items()},
        **{f"{role} token": tok for role, tok in tokens.items()},
        **{f"personal data {value!r}": value for value in PERSONAL},
    }
    assert len(password) >= 8, "the stack's database has a password to look for"
    leaks = [
        f"{what} in {service}.log: {line[:300]}"
        for service, t in text.items()
        for line in t.splitlines()
        for what, value in forbidden.items()
        if value.lower() in line.lower()
    ]
    assert leaks == []
    lines = {s: json_lines(t, s) for s, t in text.items()}
    assert not [line for found in lines.values() for line in found if line.get("logger") == "uvicorn.access"]
    access = [line for line in lines["leads"] if line["event"] == "http.request"]
    read = [line for line in access if line["route"] == "/leads/{lead_id}" and line["user_id"] == "u-marketing"]
    assert len(read) == 1 and read[0]["method"] == "GET" and read[0]["status"] == 200, access
    assert read[0]["duration_ms"] >= 0 and read[0]["correlation_id"]
    assert {"/webhooks/website", "/leads", "/leads/{lead_id}/convert", "/readyz"} <= {a["route"] for a in access}
    assert not [a for a in access if lead in a["route"]], "the route's template, never the path's ids"
    assert {"uvicorn.error"} <= {line.get("logger") for found in lines.values() for line in found}


def test_secrets_have_no_default_and_do_not_show_in_the_settings_repr() -> None:
    secret_fields = [name for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)]
    assert set(secret_fields) >= {
        "jwt_signing_keys",
        "pii_master_key",
        "kafka_sasl_password",
        "website_form_secret",
        "ladipage_token",
        "facebook_app_secret",
        "facebook_verify_token",
        "facebook_access_token",
        "google_ads_webhook_key",
    }
    assert all(
        Settings.model_fields[name].get_default(call_default_factory=True) in (None, {}) for name in secret_fields
    )
    values = {name: f"secret-{name}-{secrets.token_hex(8)}" for name in secret_fields if name != "jwt_signing_keys"}
    settings = Settings(_env_file=None, jwt_signing_keys=json.dumps({"k": "j" * 40}), **values)
    shown = repr(settings) + str(settings.model_dump())
    assert not [v for v in [*values.values(), "j" * 40] if v in shown]
