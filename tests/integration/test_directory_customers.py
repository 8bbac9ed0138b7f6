"""Organisations and people on real PostgreSQL and Kafka, through the directory's API: search by name, phone,
email and tax code over the blind index within each caller's scope; the duplicates query; erasing a person takes
them out of search and reads, and stays so when the read model is rebuilt from the topic (their key is gone); a
lead converted in the leads service linked to its customer by the directory's reaction."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.deals.events import deal_id_for_lead
from services.directory import main as directory_main
from services.directory.conversions import organisation_id_for_lead, person_id_for_lead
from services.directory.events import CustomerLinked
from services.leads import main as leads_main
from shared.messaging.projections import request_rebuild
from shared.ops.stack import Endpoints
from testkit.services import Serve, bearer, client_for, drop_everything, isolated_settings, start_parts
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
START = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
ADMIN = bearer("u-admin", "admin", team=None)
AUDITOR = bearer("u-audit", "auditor", team=None)
LAN = bearer("u-lan", "sales", team="north")
HOA = bearer("u-hoa", "sales", team="south")


async def test_search_within_scope_duplicates_and_erasure_surviving_a_rebuild(serve: Serve) -> None:
    served = await serve(directory_main.build, start=START, projections={"customers"})
    http, service = served.http, served.service

    async def post(path: str, body: dict[str, Any], headers: dict[str, str] = ADMIN) -> str:
        r = await http.post(path, headers=headers, json=body)
        assert r.status_code in (200, 201), r.text
        return str(r.json().get("id"))

    for team in ("north", "south"):
        await post("/teams", {"team_id": team, "name": team.title()})
    for user_id, team in (("u-lan", "north"), ("u-hoa", "south")):
        body = {"user_id": user_id, "name": user_id, "email": f"{user_id}@x.vn", "team_id": team, "roles": ["sales"]}
        await post("/users", body)
    north = {"owner_id": "u-lan", "team_id": "north"}
    south = {"owner_id": "u-hoa", "team_id": "south"}
    tl = await post("/organisations", {"name": "Gạch Men Thăng Long", "tax_code": "0100109106", **north}, LAN)
    branch = await post("/organisations", {"name": "Thăng Long Đà Nẵng", "tax_code": "0100109106-001", **north}, LAN)
    vm = await post("/organisations", {"name": "Vinamilk", "tax_code": "0300588569", **south}, HOA)
    mai = await post(
        "/people",
        {"organisation_id": tl, "name": "Trần Thị Mai", "phones": ["0912 345 678"], "emails": ["mai@thanglong.vn"]},
        LAN,
    )
    mai2 = await post("/people", {"organisation_id": branch, "name": "Mai Trần", "phones": ["+84912345678"]}, LAN)
    dao = await post("/people", {"organisation_id": vm, "name": "Nguyễn Đào", "emails": ["Mai@ThangLong.vn"]}, HOA)
    last = await http.post("/people", headers=HOA, json={"name": "Lê Văn Tâm", **south})
    position = last.json()["position"]

    async def found(path: str, q: str, who: dict[str, str] = AUDITOR) -> list[str]:
        r = await http.get(path, headers=who, params={"q": q, "position": position})
        assert r.status_code == 200, r.text
        key = "organisation_id" if path == "/organisations" else "person_id"
        return sorted(i[key] for i in r.json()["items"])

    assert await found("/people", "tran mai") == sorted([mai, mai2])  # whole tokens, any order, folded
    assert await found("/people", "TRẦN") == sorted([mai, mai2])
    assert await found("/people", "tra") == []  # no prefixes
    assert await found("/people", "0912.345.678") == sorted([mai, mai2])
    assert await found("/people", "MAI@thanglong.VN") == sorted([mai, dao])
    assert await found("/people", "mai@thanglong.vn", LAN) == [mai]  # Đào is the south's
    assert await found("/people", "dao", LAN) == []
    assert await found("/organisations", "0100109106") == sorted([tl, branch])  # a branch by its parent's code
    assert await found("/organisations", "0100109106-001") == [branch]
    assert await found("/organisations", "thang long", HOA) == []
    assert await found("/organisations", "vinamilk", HOA) == [vm]
    listed = (await http.get("/people", headers=LAN, params={"organisation_id": tl})).json()["items"]
    assert [(p["name"], p["person_id"]) for p in listed] == [("Trần Thị Mai", mai)]

    dupes = (await http.get("/customers/duplicates", headers=AUDITOR)).json()["items"]
    assert sorted((d["match"], tuple(d["people"])) for d in dupes) == sorted(
        [("email", tuple(sorted([mai, dao]))), ("phone", tuple(sorted([mai, mai2])))]
    )
    lan_dupes = (await http.get("/customers/duplicates", headers=LAN)).json()["items"]
    assert [(d["match"], sorted(d["people"])) for d in lan_dupes] == [("phone", sorted([mai, mai2]))]

    erased = await http.post(f"/people/{mai}/erase", headers=ADMIN, json={"reason": "asked to be forgotten"})
    assert erased.status_code == 200, erased.text
    position = erased.json()["position"]
    assert await found("/people", "0912345678") == [mai2]
    assert await found("/people", "mai@thanglong.vn") == [dao]
    gone = (await http.get(f"/people/{mai}", headers=ADMIN)).json()
    assert (gone["name"], gone["phones"], gone["erased"]) == (None, None, True)
    listed = (await http.get("/people", headers=LAN, params={"organisation_id": tl})).json()["items"]
    assert [(p["person_id"], p["name"], p["erased"]) for p in listed] == [(mai, None, True)]  # counted still

    # the read model rebuilt from the topic: the erased person's details cannot be opened, so nothing is indexed
    schema = service.storage.store.schema
    await request_rebuild(service.storage.pool, schema, "customers")

    async def rebuilt() -> bool:
        async with service.storage.pool.acquire() as conn:
            generation = await conn.fetchval(
                f"SELECT generation FROM {schema}.projection_generations "
                "WHERE projection = 'customers' AND state = 'active'"
            )
            return bool(generation == 2)

    await wait_until(rebuilt, timeout=60, interval=0.2)
    assert await found("/people", "0912345678") == [mai2]
    assert await found("/people", "tran mai") == [mai2]
    assert await found("/people", "mai@thanglong.vn") == [dao]
    assert await found("/organisations", "thang long") == sorted([tl, branch])


async def test_a_converted_lead_is_linked_to_the_person_its_contact_matches_across_processes(
    endpoints: Endpoints,
) -> None:
    """The leads service converts; the directory's projector reacts, on the leads' topic: the lead whose email is a
    known person's is linked to that person and their organisation; one nobody knows gets both registered under
    ids derived from the lead. The deal named is the one the deals service opens for the lead."""
    settings = isolated_settings(endpoints)
    cores = [await leads_main.build(settings), await directory_main.build(settings)]
    stop = asyncio.Event()
    tasks = []
    for core in cores:
        await core.ensure_topics()
        tasks += await start_parts(core, stop, projections={"customers", "reactions"})
    leads, directory = (client_for(core.app()) for core in cores)
    try:
        await directory.post("/teams", headers=ADMIN, json={"team_id": "north", "name": "North"})
        user = {"user_id": "u-lan", "name": "Lan", "email": "lan@x.vn", "team_id": "north", "roles": ["sales"]}
        assert (await directory.post("/users", headers=ADMIN, json=user)).status_code == 201
        body = {"name": "Quán Cà Phê Mộc", "owner_id": "u-lan", "team_id": "north"}
        moc = (await directory.post("/organisations", headers=LAN, json=body)).json()["id"]
        mai_body: dict[str, Any] = {"organisation_id": moc, "name": "Võ Thị Mai", "emails": ["mai@moc.vn"]}
        r = await directory.post("/people", headers=LAN, json=mai_body)
        mai, position = r.json()["id"], r.json()["position"]
        indexed = await directory.get("/people", headers=LAN, params={"q": "mai@moc.vn", "position": position})
        assert [p["person_id"] for p in indexed.json()["items"]] == [mai]

        async def convert(contact: dict[str, str]) -> uuid.UUID:
            lead = {"source": "manual", "contact": contact}
            r = await leads.post("/leads", headers=ADMIN, json=lead)
            assert r.status_code == 201, r.text
            lead_id = r.json()["id"]
            for command, body in (
                ("qualify", {"level": "sql"}),
                ("convert", {"customer": "Mộc Coffee", "title": "Máy pha", "owner_id": "u-lan", "team_id": "north"}),
            ):
                r = await leads.post(f"/leads/{lead_id}/{command}", headers=ADMIN, json=body)
                assert r.status_code == 200, r.text
            return uuid.UUID(lead_id)

        known = await convert({"name": "Mai Võ", "email": "MAI@moc.vn"})
        unknown = await convert({"name": "Phạm Văn Quý", "phone": "0905 111 222"})

        async def linked() -> bool:
            store = cores[1].storage.store
            return all([await store.stream_version(f"directory-conversion-{lead}") for lead in (known, unknown)])

        await wait_until(linked, timeout=30, interval=0.2)
        store = cores[1].storage.store
        (k,) = [r.to_event() for r in await store.read_stream(f"directory-conversion-{known}")]
        assert isinstance(k, CustomerLinked)
        assert (k.matched_by, str(k.person_id), str(k.organisation_id), k.deal_id) == (
            "email",
            mai,
            moc,
            deal_id_for_lead(known),
        )
        (u,) = [r.to_event() for r in await store.read_stream(f"directory-conversion-{unknown}")]
        assert isinstance(u, CustomerLinked)
        assert (u.matched_by, u.person_id, u.organisation_id) == (
            "created",
            person_id_for_lead(unknown),
            organisation_id_for_lead(unknown),
        )
        org = (await directory.get(f"/organisations/{u.organisation_id}", headers=LAN)).json()
        person = (await directory.get(f"/people/{u.person_id}", headers=LAN)).json()
        assert (org["name"], org["owner_id"], org["team_id"]) == ("Mộc Coffee", "u-lan", "north")
        assert (person["name"], person["phones"], person["organisation_id"]) == (
            "Phạm Văn Quý",
            ["+84905111222"],
            str(u.organisation_id),
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in (leads, directory):
            await client.aclose()
        for core in cores:
            await core.close()
        await drop_everything(settings)
