"""Per-service PostgreSQL roles (deploy/postgres/roles.sql): each service works under its own role, which cannot
read or write another service's schema.

A fresh PostgreSQL cluster (``scripts/stack pg-up`` in a run dir of this test) and database; roles.sql applied as
the superuser with passwords chosen here; the leads and deals services built and run with their roles (store, key
store, dedupe index, read models, relay), a command through each API, the deal's event relayed to Kafka and
applied to the board read model; then each role is refused the other's tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from services.agenda.main import build as build_agenda
from services.deals.main import build as build_deals
from services.leads.main import build as build_leads
from services.signin.store import PostgresStore
from services.webhooks.store import PostgresStore as WebhooksStore
from shared.messaging.kafka import delete_topics
from shared.ops.settings import SERVICES, Settings
from shared.ops.stack import Endpoints
from testkit.roles import role_database
from testkit.services import bearer, client_for, isolated_settings, start_parts

pytestmark = [pytest.mark.pg, pytest.mark.kafka]


@pytest.fixture
def role_urls(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A PostgreSQL cluster of this test with roles.sql applied: each service's role's URL (testkit.roles)."""
    with role_database(tmp_path / "roles") as urls:
        yield urls


DEAL = {
    "title": "Quầy lạnh",
    "customer": "Cửa hàng Thu Trang",
    "owner_id": "u-lan",
    "team_id": "north",
    "lines": [{"product": "Quầy lạnh 1m8", "quantity": "1", "unit_price": {"amount": "30000000", "currency": "VND"}}],
}
LEAD = {"source": "manual", "contact": {"name": "Ngô Thu Trang", "phone": "0912 000 111"}}


async def refused(url: str, sql: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    except asyncpg.InsufficientPrivilegeError:
        return True
    finally:
        await conn.close()
    return False


async def test_each_service_works_under_its_own_role_and_cannot_touch_another_schema(
    endpoints: Endpoints, role_urls: dict[str, str], tmp_path: Path
) -> None:
    base = isolated_settings(endpoints)
    settings = Settings.model_validate(
        base.model_dump()
        | {"schema_prefix": "", "pii_schema": "pii", "database_url": None, "keyring_dir": str(tmp_path / "keyring")}
        | {f"{s}_database_url": url for s, url in role_urls.items()}
    )
    deals = await build_deals(settings)
    leads = await build_leads(settings)
    agenda = await build_agenda(settings)  # its store, key store and read models under the agenda's role
    stop = asyncio.Event()
    tasks = []
    try:
        await deals.ensure_topics()
        tasks = await start_parts(deals, stop, projections={"board"})
        for runner in [*leads.runners(), *agenda.runners()]:
            await runner.setup()
        async with client_for(deals.app()) as http:
            r = await http.post("/deals", json=DEAL, headers=bearer("u-lan", "sales"))
            assert r.status_code == 201, r.text
            deal_id, position = r.json()["id"], r.json()["position"]
            r = await http.get("/deals", params={"position": position}, headers=bearer("u-lan", "sales"))
            assert r.status_code == 200, r.text
            assert [d["deal_id"] for d in r.json()["items"]] == [deal_id], "relayed and applied under the deals role"
        async with client_for(leads.app()) as http:  # leads' personal data goes through the shared key store
            r = await http.post("/leads", json=LEAD, headers=bearer("u-mkt", "marketing"))
            assert r.status_code == 201, r.text
            lead = f"/leads/{r.json()['id']}"
            r = await http.get(lead, headers=bearer("u-mkt", "marketing"))
            assert r.json()["contact"]["name"] == "Ngô Thu Trang"
            # any service's relay may be the elected key rotator: its role re-wraps the shared keys (decision 0015)
            rotator = deals.key_rotator()
            assert rotator is not None and (await rotator.keys.rotate()).rewrapped == 1
            r = await http.get(lead, headers=bearer("u-mkt", "marketing"))
            assert r.json()["contact"]["name"] == "Ngô Thu Trang", "read under the new epoch"

        deals_url, leads_url = role_urls["deals"], role_urls["leads"]
        assert await refused(deals_url, "SELECT * FROM leads.events")
        assert await refused(deals_url, "DELETE FROM leads.events")
        assert await refused(deals_url, "CREATE TABLE leads.intruder (x int)")
        assert await refused(deals_url, "SELECT * FROM leads__marketing__g1.leads")
        assert await refused(leads_url, "INSERT INTO deals.events (stream_id) VALUES ('x')")
        assert await refused(leads_url, "UPDATE deals.events SET stream_id = 'x'")
        assert await refused(leads_url, "DROP SCHEMA deals CASCADE")
        assert await refused(leads_url, "SELECT * FROM deals__board__g1.board")
        assert await refused(leads_url, "DROP TABLE pii.subject_keys"), "the shared key store is not theirs to drop"
        # the sign-in service's tables under its own role; it reaches no service's schema nor the key store
        signin_pool = await asyncpg.create_pool(role_urls["signin"], min_size=1, max_size=2)
        try:
            await PostgresStore(signin_pool, "signin").setup()
        finally:
            await signin_pool.close()
        assert await refused(role_urls["signin"], "SELECT * FROM leads.events")
        assert await refused(role_urls["signin"], "SELECT * FROM pii.subject_keys")
        assert await refused(leads_url, "SELECT * FROM signin.credentials"), "no service reads the password hashes"
        assert not await refused(deals_url, "SELECT count(*) FROM deals.events"), "its own schema it reads"
        assert await refused(role_urls["directory"], "SELECT * FROM deals.events"), "the directory's role is its own"
        assert await refused(deals_url, "SELECT * FROM directory.events"), "replicas come from the topic"
        agenda_url = role_urls["agenda"]
        assert not await refused(agenda_url, "SELECT count(*) FROM agenda.events"), "the agenda's own schema"
        assert await refused(agenda_url, "SELECT * FROM deals.events"), "its subjects come from the topics"
        assert await refused(agenda_url, "SELECT * FROM directory.events"), "its owners too"
        assert await refused(deals_url, "SELECT * FROM agenda.events"), "deals' next step comes from its topic"
        # the webhooks' tables under their own role (decision 0026): no service's schema, no key store
        webhooks_pool = await asyncpg.create_pool(role_urls["webhooks"], min_size=1, max_size=2)
        try:
            await WebhooksStore(webhooks_pool, "webhooks").setup()
        finally:
            await webhooks_pool.close()
        assert await refused(role_urls["webhooks"], "SELECT * FROM deals.events"), "the events come from the topics"
        assert await refused(role_urls["webhooks"], "SELECT * FROM pii.subject_keys")
        assert await refused(leads_url, "SELECT * FROM webhooks.subscriptions"), "the sealed secrets are theirs"
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await deals.close()
        await leads.close()
        await agenda.close()
        topics = [settings.events_topic(s) for s in SERVICES] + [settings.dead_letter_topic("deals")]
        await delete_topics(settings.kafka_bootstrap_servers, [*topics, settings.alerts_topic()])
