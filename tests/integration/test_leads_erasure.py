"""Erasure on real servers: after a person is forgotten, the database dump, every topic (dead letters too), the
logs and every API answer hold none of their data, raw or normalised — and the funnel counts do not change."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.deals import main as deals_main
from services.deals.events import deal_id_for_lead
from services.leads import main as leads_main
from shared.messaging.kafka import admin_client
from shared.ops.stack import Endpoints
from testkit.kafka import raw_messages
from testkit.services import bearer, client_for, drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

FORM = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "leads" / "website_form.json").read_text())
TRACES = [
    "Nguyễn",
    "Hồng Nhung",
    "Nhung.Nguyen",
    "nhung.nguyen@gmail.com",
    "0912 345 678",
    "0912345678",
    "+84912345678",
    "912345678",
    "Tiệm bánh",
    "tư vấn tủ trưng bày",
]
MKT = bearer("u-mkt", "marketing")
SALES = bearer("u-lan", "sales")
AUDITOR = bearer("u-audit", "auditor", team=None)


def pg_dump(url: str) -> str:
    binary = shutil.which("pg_dump") or max(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    done = subprocess.run([str(binary), "--data-only", "--no-owner", url], capture_output=True, check=True, timeout=120)
    return done.stdout.decode("utf-8", errors="replace")


async def test_an_erased_person_is_gone_everywhere_and_counts_stay(
    endpoints: Endpoints, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = isolated_settings(endpoints).model_copy(update={"website_form_secret": SecretStr("site-secret")})
    leads = await leads_main.build(settings)
    deals = await deals_main.build(settings)
    await leads.ensure_topics()
    await deals.ensure_topics()
    stop = asyncio.Event()
    tasks = []
    for core in (leads, deals):
        relay = core.relay()
        relay.poll_interval = 0.1
        await relay.setup()
        tasks.append(asyncio.create_task(relay.run(stop)))
        for runner in core.runners():
            runner.poll_interval = 0.2
            await runner.setup()
            tasks.append(asyncio.create_task(runner.run(stop)))
    leads_http, deals_http = client_for(leads.app()), client_for(deals.app())
    try:
        body = json.dumps(FORM, ensure_ascii=False).encode()
        signature = "sha256=" + hmac.new(b"site-secret", body, hashlib.sha256).hexdigest()
        r = await leads_http.post("/webhooks/website", content=body, headers={"X-Pipelines-Signature": signature})
        assert r.status_code == 201, r.text
        lead_id = r.json()["id"]
        other = await leads_http.post(
            "/leads", headers=MKT, json={"source": "referral", "contact": {"name": "Người khác", "phone": "0987000111"}}
        )
        for path, payload in [
            ("assign", {"owner_id": "u-lan", "team_id": "north"}),
            ("contact", {"channel": "phone"}),
            ("qualify", {"level": "sql"}),
            (
                "convert",
                {"customer": "Khách lẻ 0042", "title": "Tủ trưng bày 1m2", "expected_close_date": "2026-12-31"},
            ),
        ]:
            assert (await leads_http.post(f"/leads/{lead_id}/{path}", headers=MKT, json=payload)).status_code == 200
        deal_id = deal_id_for_lead(uuid.UUID(lead_id))

        async def deal_opened() -> bool:
            return (await deals_http.get(f"/deals/{deal_id}", headers=SALES)).status_code == 200

        await wait_until(deal_opened, timeout=60)
        shown = (await deals_http.get(f"/deals/{deal_id}", params={"include_contact": True}, headers=SALES)).json()
        assert shown["contact"]["email"] == "nhung.nguyen@gmail.com", "the deal holds the contact, sealed, before"
        window = {"from": "2026-01-01", "to": "2027-01-01"}

        async def funnel() -> list:
            return (await leads_http.get("/funnel", params=window, headers=AUDITOR)).json()

        line = {"product": "Tủ trưng bày 1m2", "quantity": "1", "unit_price": {"amount": "28000000", "currency": "VND"}}
        assert (
            await deals_http.post(f"/deals/{deal_id}/change-lines", json={"lines": [line]}, headers=SALES)
        ).status_code == 200
        assert (await deals_http.post(f"/deals/{deal_id}/win", json={}, headers=SALES)).status_code == 200

        async def counted() -> bool:  # the won deal came back to the lead through Kafka
            rows = await funnel()
            return sum(r["opportunities"] for r in rows) == 1 and sum(r["customers"] for r in rows) == 1

        await wait_until(counted, timeout=60)
        before = await funnel()
        assert [r["revenue"] for r in before if r["customers"]] == ["28000000"]

        r = await leads_http.post(f"/leads/{lead_id}/erase", headers=MKT, json={"reason": "data subject request"})
        assert r.status_code == 200
        await asyncio.sleep(1.5)  # the erasure event reaches the topic and the read models

        answers = [
            (await leads_http.get(f"/leads/{lead_id}", headers=MKT)).text,
            (await leads_http.get(f"/leads/{lead_id}/history", headers=MKT)).text,
            (await leads_http.get("/leads", headers=MKT)).text,
            (await deals_http.get(f"/deals/{deal_id}", params={"include_contact": True}, headers=SALES)).text,
            (await deals_http.get(f"/deals/{deal_id}/history", headers=SALES)).text,
            (await deals_http.get("/board", headers=SALES)).text,
        ]
        assert (await funnel()) == before, "history, counts and revenue stay"
        dump = pg_dump(settings.database_url_for("leads"))
        assert str(deal_id) in dump and "Người khác" not in dump  # the dump is real: rows are there, all sealed
        messages = []
        async with admin_client(settings.kafka_bootstrap_servers) as admin:
            topics = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix + ".")]
        assert settings.dead_letter_topic("leads") in topics
        for topic in topics:  # every topic of this deployment, dead-letter ones included, read raw
            messages += [
                m.decode("utf-8", "replace") for m in await raw_messages(settings.kafka_bootstrap_servers, topic)
            ]
        assert any(lead_id in m for m in messages)
        logs = caplog.text + capsys.readouterr().out
        for place, text in [
            ("API answers", "\n".join(answers)),
            ("database dump", dump),
            ("Kafka topics", "\n".join(messages)),
            ("logs", logs),
        ]:
            for trace in TRACES:
                assert trace not in text, f"{trace!r} still in the {place}"
        assert "Người khác" in (await leads_http.get(f"/leads/{other.json()['id']}", headers=MKT)).text
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await leads_http.aclose()
        await deals_http.aclose()
        await leads.close()
        await deals.close()
        await drop_everything(settings)
