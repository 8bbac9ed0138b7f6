"""Old deals adopted across processes (decision 0017, issue 24 item 3), on real Kafka and PostgreSQL: deals opened
with only a customer string and a typed contact; the directory learns them from the deals' topic (its ``adoption``
read model); an admin's ``POST /customers/adopt`` registers the organisations and people and links the deals, which
the deals service records (its reaction to ``CustomerLinked``); a second run changes nothing; and erasing a deal's
contact later erases the person adopted from it (the directory's reaction to ``DealContactErased``)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.deals import main as deals_main
from services.directory import main as directory_main
from services.directory.adoption import organisation_id_for, person_id_for_contact
from services.directory.customers import person_stream
from services.directory.domain.person import person_subject
from services.directory.projections.adoption import ReadModelSource
from shared.ops.stack import Endpoints
from testkit.services import bearer, drop_everything, isolated_settings, start_parts
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
LAN = bearer("u-lan", "sales", team="north")
ADMIN = bearer("u-admin", "admin", team=None)
REASON = {"reason": "issue 24: old deals' customers"}


def opening(customer: str, contact_id: str, name: str) -> dict[str, object]:
    line = {"product": "Máy pha", "quantity": "1", "unit_price": {"amount": "9000000", "currency": "VND"}}
    return {
        "title": "Máy pha", "customer": customer, "owner_id": "u-lan", "team_id": "north", "lines": [line],
        "contact_id": contact_id, "contact": {"name": name, "email": f"{contact_id}@moc.vn"},
    }  # fmt: skip


async def test_old_deals_are_adopted_linked_once_and_their_contacts_erasure_reaches_the_person(
    endpoints: Endpoints,
) -> None:
    settings = isolated_settings(endpoints)
    deals = await deals_main.build(settings)
    directory = await directory_main.build(settings)
    await deals.ensure_topics()
    stop = asyncio.Event()
    tasks = [
        *await start_parts(deals, stop, projections={"reactions"}),
        *await start_parts(directory, stop, projections={"adoption", "customers", "reactions"}),
    ]
    sales = httpx.AsyncClient(transport=httpx.ASGITransport(app=deals.app()), base_url="http://deals")
    people = httpx.AsyncClient(transport=httpx.ASGITransport(app=directory.app()), base_url="http://directory")
    try:
        ids = []
        for customer, contact, name in [("Cà phê Mộc", "c-minh", "Võ Minh"), ("CA PHE MOC", "c-hoa", "Hoa")]:
            r = await sales.post("/deals", json=opening(customer, contact, name), headers=LAN)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        source = ReadModelSource(directory.storage.read_models)

        async def known() -> bool:
            try:
                return len(await source.unlinked_deals(None)) == 2
            except LookupError:  # the read model not built yet
                return False

        await wait_until(known, timeout=60, interval=0.2)
        dry = await people.post("/customers/adopt", json=REASON | {"dry_run": True}, headers=ADMIN)
        assert dry.status_code == 200, dry.text
        r = await people.post("/customers/adopt", json=REASON, headers=ADMIN)
        assert r.status_code == 200, r.text
        done = r.json()
        assert done == dry.json() | {"dry_run": False, "position": done["position"]}
        assert (done["organisations_made"], done["deals_linked"], done["people_made"]) == (1, 2, 2)
        moc = str(organisation_id_for("north", "ca phe moc"))

        async def linked() -> bool:
            views = [(await sales.get(f"/deals/{d}", headers=LAN)).json() for d in ids]
            return all(v.get("organisation_id") == moc for v in views)

        await wait_until(linked, timeout=60, interval=0.3)
        recorded = await deals.storage.store.read_stream(f"deal-{ids[1]}")
        (link,) = [r for r in recorded if r.event_type == "pipelines.deals.DealCustomerLinked"]
        assert (link.data["reason"], link.data["matched_by"], link.data["lead_id"]) == (
            REASON["reason"],
            "adopted",
            None,
        )
        assert link.data["person_ids"] == [str(person_id_for_contact("c-hoa"))]
        again = (await people.post("/customers/adopt", json=REASON, headers=ADMIN)).json()
        assert (again["organisations_made"], again["deals_linked"], again["people_made"]) == (0, 0, 0)

        r = await sales.post(f"/deals/{ids[0]}/erase-contact", json={"reason": "request #121"}, headers=LAN)
        assert r.status_code == 200, r.text
        minh = person_id_for_contact("c-minh")
        store = directory.storage.store

        async def erased() -> bool:
            recorded = await store.read_stream(person_stream(minh))
            return recorded[-1].event_type == "pipelines.directory.PersonPersonalDataErased"

        await wait_until(erased, timeout=60, interval=0.3)
        keys = directory.storage.personal_data.keys
        assert await keys.is_erased(person_subject(minh))
        assert not await keys.is_erased(person_subject(person_id_for_contact("c-hoa")))
    finally:
        await sales.aclose()
        await people.aclose()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for core in (deals, directory):
            await core.close()
        await drop_everything(settings)
