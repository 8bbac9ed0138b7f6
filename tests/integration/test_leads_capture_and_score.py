"""Leads captured and scored through the API against real PostgreSQL (issue 23, items 8 and 11).

- Two captures of the same person arriving together both looked the person up in the duplicate index before
  either had written to it, so both leads were captured as new and neither was flagged. Now each pair answers as
  a sequential pair does: one lead is the person's first, the other is captured flagged as its duplicate
  (``X-Duplicate-Of``, ``LeadDuplicateDetected``). The index holds keyed hashes only, never the email or phone.
- A lead's score counts who they are from their contact opened in memory (it is stored sealed), and nothing of
  the contact is in the database in clear afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.leads import main as leads_main
from services.leads.main import LeadsService
from shared.ops.stack import Endpoints
from testkit.services import bearer, client_for, drop_schemas, isolated_settings

pytestmark = [pytest.mark.pg]

MKT = bearer("u-mkt", "marketing")
PAIRS = 12


@pytest.fixture
async def leads(endpoints: Endpoints) -> AsyncIterator[LeadsService]:
    """The leads service on its own schemas (no relay, no Kafka: the race is in the API and the database)."""
    settings = isolated_settings(endpoints)
    service = await leads_main.build(settings)
    try:
        yield service
    finally:
        await service.close()
        await drop_schemas(settings)


def person(i: int) -> dict[str, str]:
    return {"name": f"Nguyễn Văn {i}", "email": f"khach.{i}@congty{i}.vn", "phone": f"+8490512{i:04d}"}


async def test_the_same_person_captured_twice_at_once_is_one_lead_and_one_flagged_duplicate(
    leads: LeadsService,
) -> None:
    http = client_for(leads.app())
    try:

        async def capture(i: int, source: str) -> tuple[str, str | None]:
            r = await http.post("/leads", headers=MKT, json={"source": source, "contact": person(i)})
            assert r.status_code == 201, r.text
            return r.json()["id"], r.headers.get("x-duplicate-of")

        answers = await asyncio.gather(*(capture(i, s) for i in range(PAIRS) for s in ("manual", "event")))
        for i in range(PAIRS):
            (a, a_dup), (b, b_dup) = answers[2 * i], answers[2 * i + 1]
            assert a != b
            assert sorted([a_dup or "", b_dup or ""]) == sorted(["", a if b_dup else b]), (
                f"pair {i}: exactly one of the two is flagged, as the other's duplicate: {answers[2 * i : 2 * i + 2]}"
            )
            duplicate, first = (b, a) if b_dup else (a, b)
            view = (await http.get(f"/leads/{duplicate}", headers=MKT)).json()
            assert view["duplicate_of"] == first
            assert (await http.get(f"/leads/{first}", headers=MKT)).json()["duplicate_of"] is None
        stored = await leads.storage.pool.fetch(f"SELECT key FROM {leads.storage.store.schema}.dedupe_keys")
        assert len(stored) == 2 * 2 * PAIRS  # an email key and a phone key per lead
        assert not any("congty" in r["key"] or "+8490512" in r["key"] for r in stored)
    finally:
        await http.aclose()


async def test_a_lead_is_scored_on_its_opened_contact_and_the_store_holds_none_of_it(leads: LeadsService) -> None:
    http = client_for(leads.app())
    contact = {"name": "Đỗ Thu Trang", "email": "trang@halong-corp.vn", "company": "Hạ Long Corp", "title": "Giám đốc"}
    try:
        r = await http.post("/leads", headers=MKT, json={"source": "website_form", "contact": contact})
        assert r.status_code == 201, r.text
        lead_id = r.json()["id"]
        assert (await http.post(f"/leads/{lead_id}/score", headers=MKT, json={})).status_code == 200
        history = (await http.get(f"/leads/{lead_id}/history", headers=MKT)).json()["items"]
        (scored,) = [i["data"] for i in history if i["type"] == "pipelines.leads.LeadScored"]
        assert scored["fit"] == 45
        assert set(scored["top_reasons"]) == {"company given", "business email", "senior title", "source website_form"}
        s = leads.storage.store.schema
        stored = await leads.storage.pool.fetch(f"SELECT data::text AS d, metadata::text AS m FROM {s}.events")
        text = " ".join(r["d"] + r["m"] for r in stored)
        for value in ("halong-corp", "Hạ Long", "Giám", "Trang"):
            assert value not in text
    finally:
        await http.aclose()
