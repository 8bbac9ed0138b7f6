"""Contacts typed on deals and orders' delivery addresses, erased on real servers (issue 21): a deal opened with a
typed contact and won with a delivery address makes an order that keeps the address under the same key; erasing
the order's contact (production) forgets the address in both services, and erasing another deal's contact (sales)
forgets that one; the database dump, every topic and the APIs then hold none of it; the other person stays."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from services.deals import main as deals_main
from services.production import main as production_main
from services.production.handlers import order_id_for_deal
from shared.messaging.kafka import admin_client
from shared.ops.stack import Endpoints
from testkit.kafka import raw_messages
from testkit.services import bearer, client_for, drop_everything, isolated_settings, start_parts
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
SALES = bearer("u-lan", "sales")
PROD = bearer("u-prod", "production")
TRACES = ["Lê Minh Khoa", "khoa.le@giaphat.vn", "0903 777 888", "88 Nguyễn Trãi", "Phan Thị Yến", "yen.phan@"]


def deal(contact_id: str, name: str, email: str, phone: str | None = None) -> dict:
    line = {"product": "Tủ đông 500L", "quantity": "2", "unit_price": {"amount": "21000000", "currency": "VND"}}
    return {
        "title": "Tủ đông cho siêu thị",
        "customer": "Siêu thị Gia Phát",
        "owner_id": "u-lan",
        "team_id": "north",
        "contact_id": contact_id,
        "contact": {"name": name, "email": email, "phone": phone},
        "lines": [line],
    }


def pg_dump(url: str) -> str:
    binary = shutil.which("pg_dump") or max(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    done = subprocess.run([str(binary), "--data-only", "--no-owner", url], capture_output=True, check=True, timeout=120)
    return done.stdout.decode("utf-8", errors="replace")


async def test_a_typed_contact_and_a_delivery_address_are_erased_everywhere(endpoints: Endpoints) -> None:
    settings = isolated_settings(endpoints)
    deals = await deals_main.build(settings)
    production = await production_main.build(settings)
    await deals.ensure_topics()
    stop = asyncio.Event()
    tasks = [
        *await start_parts(deals, stop, projections={"board"}),
        *await start_parts(production, stop, projections={"reactions"}),
    ]
    d_http, p_http = client_for(deals.app()), client_for(production.app())
    try:
        r = await d_http.post(
            "/deals", json=deal("c-khoa", "Lê Minh Khoa", "khoa.le@giaphat.vn", "0903 777 888"), headers=SALES
        )
        assert r.status_code == 201, r.text
        won = r.json()["id"]
        yen = await d_http.post("/deals", json=deal("c-yen", "Phan Thị Yến", "yen.phan@giaphat.vn"), headers=SALES)
        other = await d_http.post("/deals", json=deal("c-an", "Trần Văn An", "an.tran@giaphat.vn"), headers=SALES)
        address = {"line1": "88 Nguyễn Trãi", "city": "Hà Nội"}
        r = await d_http.post(f"/deals/{won}/win", json={"delivery_address": address}, headers=SALES)
        assert r.status_code == 200, r.text
        order = order_id_for_deal(uuid.UUID(won))

        async def order_made() -> bool:
            return (await p_http.get(f"/orders/{order}", headers=PROD)).status_code == 200

        await wait_until(order_made, timeout=60)
        made = (await p_http.get(f"/orders/{order}", headers=PROD)).json()
        assert made["delivery_address"]["line1"] == "88 Nguyễn Trãi", "the order keeps it, sealed, before"

        reason = {"reason": "data subject request #2026-121"}
        r = await p_http.post(f"/orders/{order}/erase-contact", json=reason, headers=PROD)
        assert r.status_code == 200, r.text
        r = await d_http.post(f"/deals/{yen.json()['id']}/erase-contact", json=reason, headers=SALES)
        assert r.status_code == 200, r.text

        async def topics_text() -> list[str]:
            async with admin_client(settings.kafka_bootstrap_servers) as admin:
                topics = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix + ".")]
            return [
                m.decode("utf-8", "replace")
                for topic in topics
                for m in await raw_messages(settings.kafka_bootstrap_servers, topic)
            ]

        async def erasures_published() -> bool:
            text = "\n".join(await topics_text())
            return text.count("DealContactErased") >= 1 and "OrderContactErased" in text

        await wait_until(erasures_published, timeout=60)
        answers = [
            (await p_http.get(f"/orders/{order}", headers=PROD)).text,
            (await p_http.get(f"/orders/{order}/history", headers=PROD)).text,
            (await d_http.get(f"/deals/{won}", params={"include_contact": True}, headers=SALES)).text,
            (await d_http.get(f"/deals/{won}/history", headers=SALES)).text,
            (await d_http.get(f"/deals/{yen.json()['id']}", params={"include_contact": True}, headers=SALES)).text,
        ]
        assert '"contact_erased":true' in answers[0] and '"contact":null' in answers[2]
        dump = pg_dump(settings.database_url_for("deals"))
        messages = await topics_text()
        for place, text in [
            ("API answers", "\n".join(answers)),
            ("database dump", dump),
            ("topics", "\n".join(messages)),
        ]:
            for trace in TRACES:
                assert trace not in text, f"{trace!r} still in the {place}"
        # what the store and the topics hold of them is sealed under keys that are gone; the other person's opens
        sealed = [  # each raw message is key|headers|the CloudEvent
            json.loads(m[m.index("{") :])["data"] for m in messages if '"contact_id"' in m and "ContactErased" not in m
        ]
        opened = await deals.storage.personal_data.open(sealed)
        by_contact: dict[str, set[str]] = {}
        for data in opened:
            for field in ("contact", "delivery_address"):
                if field in data:
                    by_contact.setdefault(data["contact_id"], set()).add(json.dumps(data[field], ensure_ascii=False))
        assert set(by_contact) == {"c-khoa", "c-yen", "c-an"}
        assert by_contact["c-khoa"] == {"null"} and by_contact["c-yen"] == {"null"}
        assert "Trần Văn An" in next(iter(by_contact["c-an"]))
        kept = await d_http.get(f"/deals/{other.json()['id']}", params={"include_contact": True}, headers=SALES)
        assert kept.json()["contact"]["name"] == "Trần Văn An", "the other person stays"
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await d_http.aclose()
        await p_http.aclose()
        await deals.close()
        await production.close()
        await drop_everything(settings)
