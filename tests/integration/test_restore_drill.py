"""Backup and restore, first part of the drill (#8): a logical backup taken while traffic flows, restored into a
fresh PostgreSQL cluster. The relay refuses to run until the cluster's transaction counter is advanced
(`scripts/stack pg-advance-xid`, docs/OPERATIONS.md), then publishes new events; every event the topic holds is
either in the restored store or one of those written after the backup; ``shared.messaging.restore.catch_up`` appends those,
and a read model rebuilt from the topic into the restored database agrees with the restored store."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.deals import domain
from services.deals.handlers import Deals
from shared.messaging.envelope import CloudEvent
from shared.messaging.kafka import TopicSpec, delete_topics, ensure_topics
from shared.messaging.projections import ReadModels
from shared.messaging.relay import CheckpointAheadError, OutboxRelay
from shared.messaging.restore import RestoreError, catch_up
from shared.messaging.runner import ProjectionRunner
from shared.ops.settings import SERVICES, Settings
from shared.ops.stack import ROOT, Endpoints
from shared.privacy.keyring import Keyring, KeyringError, wrapping_key
from shared.privacy.pii import PersonalData
from shared.store import NewEvent
from shared.store.commands import Context
from shared.store.db import create_pool
from shared.store.keystore import KeyRotator, key_store
from shared.store.postgres import PostgresEventStore
from testkit.events import Counted
from testkit.kafka import read_topic
from testkit.projection import totals_projection
from testkit.services import TEST_KEYRINGS
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]


def pg_tool(name: str) -> str:
    return shutil.which(name) or str(max(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")))


def stack(run_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [str(ROOT / "scripts/stack"), "--run-dir", str(run_dir), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A second PostgreSQL cluster, started by the project's script and wiped afterwards."""
    run_dir = tmp_path / "restore"
    out = stack(run_dir, "pg-up")
    url = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("export DATABASE_URL="))
    try:
        yield run_dir, url
    finally:
        stack(run_dir, "down", "--wipe")


def relay_for(store: PostgresEventStore, url: str, endpoints: Endpoints, topic: str) -> OutboxRelay:
    return OutboxRelay(
        store, service="test", topic=topic, bootstrap_servers=endpoints.kafka_bootstrap_servers, database_url=url
    )


async def publish_all(relay: OutboxRelay, within_s: float = 30.0) -> None:
    """Publish until nothing is left. A relay sees only what committed before the oldest transaction still open in
    the cluster (the tailing horizon): while another suite's transaction is open, an empty batch is not the end."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        while await relay.publish_batch():
            pass
        if (await relay.lag()).events == 0 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert (await relay.lag()).events == 0


async def next_xid(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())"))


async def test_backup_while_writing_restore_into_a_fresh_cluster(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic, fresh_cluster, tmp_path: Path
) -> None:
    run_dir, fresh_url = fresh_cluster
    topic = await kafka_topic()
    # the source cluster's counter must be well past the fresh one's, as in any real deployment
    async with pg_store.pool.acquire() as conn:
        fresh = await asyncpg.connect(fresh_url)
        try:
            target = await next_xid(fresh) + 5_000
        finally:
            await fresh.close()
        while await next_xid(conn) < target:
            await conn.execute("SELECT pg_current_xact_id()")

    relay = relay_for(pg_store, endpoints.database_url, endpoints, topic)
    await relay.setup()
    assert await relay.lead()
    appended = 0
    stop = asyncio.Event()

    async def traffic() -> None:
        nonlocal appended
        while not stop.is_set():
            i = appended
            await pg_store.append(f"deal-{i % 10}", [NewEvent(Counted(n=1000 + i))], expected_version=i // 10)
            await relay.publish_batch()
            appended += 1

    async def until_appended(n: int) -> None:
        async with asyncio.timeout(60):
            while appended < n:
                await asyncio.sleep(0.01)

    writer = asyncio.create_task(traffic())
    await until_appended(200)
    dump = tmp_path / "store.dump"
    backup = await asyncio.create_subprocess_exec(
        pg_tool("pg_dump"), "-d", endpoints.database_url, "-n", pg_store.schema, "-Fc", "-f", str(dump)
    )
    assert await backup.wait() == 0
    at_backup = appended
    await until_appended(at_backup + 50)  # traffic goes on after the backup
    stop.set()
    await writer
    await publish_all(relay)
    await relay.close()

    restore = await asyncio.to_thread(
        subprocess.run,
        [pg_tool("pg_restore"), "--no-owner", "-d", fresh_url, str(dump)],
        capture_output=True,
        text=True,
    )
    assert restore.returncode == 0, restore.stderr
    pool = await create_pool(fresh_url, min_size=1, max_size=2)
    try:
        restored = PostgresEventStore(pool, pg_store.schema)
        restored_relay = relay_for(restored, fresh_url, endpoints, topic)
        with pytest.raises(CheckpointAheadError):
            await restored_relay.lead()
        await restored_relay.close()
        async with pool.acquire() as conn:
            newest = await conn.fetchval(f"SELECT max(tx_id)::text FROM {restored.schema}.events")
            backed_up = {
                r["id"] for r in await conn.fetch(f"SELECT event_id::text AS id FROM {restored.schema}.events")
            }
    finally:
        await pool.close()

    # The topic holds exactly what the restored store holds plus what was written after the backup.
    published = await read_topic(endpoints.kafka_bootstrap_servers, topic)
    in_source = [e.event_id for e in await pg_store.read_all(limit=100_000)]
    on_topic = {e.id for _, e in published}
    assert on_topic == {str(i) for i in in_source}
    after_backup = on_topic - backed_up
    assert backed_up <= on_topic and after_backup  # the backup is a prefix; the rest is on the topic, not lost
    assert len(backed_up) + len(after_backup) == len(in_source)

    await asyncio.to_thread(stack, run_dir, "pg-advance-xid", newest)
    pool = await create_pool(fresh_url, min_size=1, max_size=4)
    try:
        restored = PostgresEventStore(pool, pg_store.schema)
        caught_up = await catch_up(restored, endpoints.kafka_bootstrap_servers, [topic], source="/pipelines/test")
        assert caught_up.appended == len(after_backup) and caught_up.already_stored == len(published) - len(
            after_backup
        )
        assert await history(restored) == await history(pg_store)  # same streams, versions, ids, times
        assert (
            await catch_up(restored, endpoints.kafka_bootstrap_servers, [topic], source="/pipelines/test")
        ).appended == 0

        restored_relay = relay_for(restored, fresh_url, endpoints, topic)
        assert await restored_relay.lead()
        await restored.append("deal-new", [NewEvent(Counted(n=1))], expected_version=0)
        await publish_all(restored_relay)
        await restored_relay.close()
        published = await read_topic(endpoints.kafka_bootstrap_servers, topic)
        assert [e.streamid for _, e in published if e.id not in on_topic] == ["deal-new"]  # nothing twice

        # the read model, rebuilt from the topic into the restored database, agrees with the restored store
        runner = ProjectionRunner(
            pool,
            totals_projection(topic),
            namespace=restored.schema,
            bootstrap_servers=endpoints.kafka_bootstrap_servers,
            dead_letter_topic=await kafka_topic("dlq", partitions=1),
            group_prefix=f"restore.{restored.schema}",
            poll_interval=0.2,
        )
        await runner.setup()
        stop = asyncio.Event()
        running = asyncio.create_task(runner.run(stop))
        try:
            expected = await store_totals(restored)
            assert expected == {**await store_totals(pg_store), "deal-new": (1, 1)}

            async def rebuilt() -> bool:
                async with ReadModels(pool, restored.schema).connection("totals") as conn:
                    rows = await conn.fetch("SELECT stream_id, total, events FROM totals")
                return {r["stream_id"]: (r["total"], r["events"]) for r in rows} == expected

            await wait_until(rebuilt, timeout=60)
        finally:
            stop.set()
            await running
    finally:
        await pool.close()


async def history(store: PostgresEventStore) -> list[tuple[str, int, str, str, object]]:
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            f"""SELECT stream_id, version, event_id::text, event_type, occurred_at FROM {store.schema}.events
                ORDER BY stream_id, version"""
        )
    return [tuple(r) for r in rows]


async def store_totals(store: PostgresEventStore) -> dict[str, tuple[int, int]]:
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            f"""SELECT stream_id, sum((data->>'n')::int) AS total, count(*) AS events
                FROM {store.schema}.events GROUP BY stream_id"""
        )
    return {r["stream_id"]: (r["total"], r["events"]) for r in rows}


async def test_catch_up_refuses_a_gap_and_writes_nothing(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    topic = await kafka_topic()
    await pg_store.append("a", [NewEvent(Counted(n=n)) for n in (1, 2, 3)], expected_version=0)
    recorded = await pg_store.read_stream("a")
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers)
    await producer.start()
    try:
        for e in (recorded[0], recorded[2]):  # version 2 never reached the topic
            await producer.send_and_wait(topic, CloudEvent.from_recorded(e, "test").kafka_value(), key=b"a")
    finally:
        await producer.stop()
    target = PostgresEventStore(pg_store.pool, f"{pg_store.schema}_r")
    await target.setup()
    try:
        with pytest.raises(RestoreError, match=r"ends at version 0 and the topic holds \[1, 3\]; versions \[2\]"):
            await catch_up(target, endpoints.kafka_bootstrap_servers, [topic])
        assert await target.stream_version("a") == 0
    finally:
        async with pg_store.pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {target.schema} CASCADE")


async def test_restore_command_catches_up_a_service_store(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    """``python -m shared.messaging.restore <service>`` with a deployment's prefixes: what it appends, and a clear refusal."""
    prefix = f"r{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=endpoints.database_url,
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
        schema_prefix=f"{prefix}_",
        topic_prefix=prefix,
    )
    topics = [settings.events_topic("deals"), settings.alerts_topic()]
    await ensure_topics(
        endpoints.kafka_bootstrap_servers,
        [TopicSpec(t, partitions=2, replication_factor=endpoints.replication_factor) for t in topics],
    )
    target = PostgresEventStore(pg_store.pool, settings.schema_name("deals"))
    await target.setup()
    env = os.environ | {
        "DATABASE_URL": endpoints.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
        "PIPELINES_SCHEMA_PREFIX": settings.schema_prefix,
        "PIPELINES_TOPIC_PREFIX": prefix,
        # the key store too (decision 0015): this test's own, empty
        "PIPELINES_PII_SCHEMA": f"{prefix}_pii",
        "PIPELINES_PII_MASTER_KEY": base64.b64encode(b"k" * 32).decode(),
        "PIPELINES_KEYRING_DIR": str(TEST_KEYRINGS),
    }

    async def restore() -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "shared.messaging.restore", "deals"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        await pg_store.append("deal-1", [NewEvent(Counted(n=n)) for n in (1, 2)], expected_version=0)
        await pg_store.append("deal-2", [NewEvent(Counted(n=3))], expected_version=0)
        recorded = await pg_store.read_streams("deal-")  # all three (read_all stops at the cluster's horizon)
        producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers)
        await producer.start()
        try:
            for e in recorded:
                envelope = CloudEvent.from_recorded(e, "deals")
                await producer.send_and_wait(topics[0], envelope.kafka_value(), key=e.stream_id.encode())
            other = CloudEvent.from_recorded(recorded[0], "leads")  # another service's message on the shared topic
            await producer.send_and_wait(topics[1], other.model_copy(update={"streamid": "x"}).kafka_value())
        finally:
            await producer.stop()
        done = await restore()
        assert done.returncode == 0, done.stderr
        assert "deals: 3 events appended to 2 streams" in done.stdout
        assert [e.event_id for e in await target.read_all()] == [e.event_id for e in recorded]
        assert "\ndeals: 0 events appended" in (await restore()).stdout

        async with pg_store.pool.acquire() as conn:  # a store that is not a prefix of the topic's history
            await conn.execute(f"DROP SCHEMA {target.schema} CASCADE")
        await target.setup()
        await target.append("deal-1", [NewEvent(Counted(n=9))], expected_version=0)  # not the topic's version 1
        refused = await restore()
        assert refused.returncode != 0
        assert "stream 'deal-1' version 1: the store holds event" in refused.stderr
        assert "(nothing was written)" in refused.stderr
        assert await target.stream_version("deal-1") == 1 and await target.stream_version("deal-2") == 0
    finally:
        await delete_topics(endpoints.kafka_bootstrap_servers, topics)
        async with pg_store.pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {target.schema} CASCADE")
            await conn.execute(f"DROP SCHEMA IF EXISTS {prefix}_pii CASCADE")


# ---------------------------------------------------------------------------------------------- erasure (issue 21)
# A person erased after a backup: once the erasure window has passed (one rotation of the epoch keyring, decision
# 0015), the copies of their wrapped key in the WAL and in that backup open with nothing left; a person not erased
# restores from that same backup and decrypts; one erased after the backup stays erased, with no manual step.
PAGE = 8192
KEY_BYTES_WRAPPED = 12 + 32 + 16  # nonce, the subject key, the GCM tag


@dataclass
class ErasureDrill:
    settings: Settings
    run_dir: Path
    url: str
    backup: Path
    deals: dict[str, uuid.UUID]  # contact id → its deal
    wal_span: tuple[str, str]  # the LSNs around the keys' creation
    relation: str  # tablespace/database/relfilenode of the key table, as pg_waldump names it
    captured: dict[str, tuple[int, bytes]]  # what the key table held for each contact before anything was erased
    opened_within_window: bool  # the erased person's old copy still opened after the erasure, before the window
    tokens: dict[str, dict[str, Any]]  # each DealOpened as published, personal fields sealed


CONTACTS = ("c-kept", "c-gone", "c-late", "c-late-gone")


def open_command(contact_id: str) -> domain.OpenDeal:
    return domain.OpenDeal.model_validate(
        {
            "title": f"Quầy lạnh {contact_id}",
            "customer": "Cửa hàng Thu Trang",
            "owner_id": "u-lan",
            "team_id": "north",
            "contact_id": contact_id,
            "contact": {"name": f"Ngô Thu Trang {contact_id}", "email": f"{contact_id}@example.vn"},
        }
    )


@pytest.fixture(scope="module")
async def erasure_drill(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ErasureDrill]:
    """A fresh cluster of the test's own (its WAL on this machine), a deals store and the key store in it: two
    contacts, a plain-SQL backup, two more contacts, one of the first two erased, the window passed (the rotator,
    its window two seconds), then one of the later two erased (after the key export the rotation wrote)."""
    base = tmp_path_factory.mktemp("erasure")
    run_dir = base / "pg"
    out = await asyncio.to_thread(stack, run_dir, "pg-up")
    url = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("export DATABASE_URL="))
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        _env_file=None,
        database_url=url,
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
        kafka_replication_factor=endpoints.replication_factor,
        schema_prefix=f"e{tag}_",
        topic_prefix=f"e{tag}",
        pii_schema=f"e{tag}_pii",
        pii_master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        keyring_dir=str(base / "keyring"),
        erasure_window_hours=2 / 3600,
    )
    topics = [settings.events_topic(s) for s in SERVICES] + [settings.alerts_topic()]
    await ensure_topics(
        endpoints.kafka_bootstrap_servers,
        [TopicSpec(t, partitions=2, replication_factor=endpoints.replication_factor) for t in topics],
    )
    pool = await create_pool(url, min_size=1, max_size=4)
    relay: OutboxRelay | None = None
    try:
        keys = key_store(pool, settings)
        await keys.setup()
        store = PostgresEventStore(pool, settings.schema_name("deals"), PersonalData(keys))
        await store.setup()
        relay = OutboxRelay(
            store,
            service="deals",
            topic=settings.events_topic("deals"),
            bootstrap_servers=endpoints.kafka_bootstrap_servers,
            database_url=url,
        )
        await relay.setup()
        assert await relay.lead()
        deals = Deals(store, lambda: datetime.now(UTC), keys)
        await deals.ensure_default_pipeline()
        ids = {c: uuid.uuid4() for c in CONTACTS}
        ctx = Context(actor="u-lan")
        lsn = "SELECT pg_current_wal_lsn()::text"
        start = await pool.fetchval(lsn)
        for contact in ("c-kept", "c-gone"):
            await deals.handle(ids[contact], open_command(contact), ctx)
        end = await pool.fetchval(lsn)
        s = settings.pii_schema
        relation = await pool.fetchval(
            f"""SELECT '1663/' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '/'
                       || pg_relation_filenode('"{s}".subject_keys')"""
        )
        captured = {
            r["subject_id"]: (r["epoch"], r["wrapped_key"])
            for r in await pool.fetch(f'SELECT subject_id, epoch, wrapped_key FROM "{s}".subject_keys')
        }
        await publish_all(relay)
        backup = base / "backup.sql"
        dump = await asyncio.create_subprocess_exec(
            pg_tool("pg_dump"), "-d", url, "-n", store.schema, "-n", s, "-Fp", "-f", str(backup)
        )
        assert await dump.wait() == 0

        for contact in ("c-late", "c-late-gone"):  # after the backup: only the topic and the key store have them
            await deals.handle(ids[contact], open_command(contact), ctx)
        await deals.handle(ids["c-gone"], domain.EraseContact(reason="data subject request #21"), ctx)
        await publish_all(relay)
        epoch, wrapped = captured["c-gone"]
        opened_within_window = keys.try_unwrap("c-gone", epoch, wrapped) is not None

        rotator = KeyRotator(keys, url, window_s=settings.erasure_window_hours * 3600, poll_s=0.2)
        try:
            async with asyncio.timeout(30):
                while (rotated := await rotator.step()) is None:  # due once half the window has passed
                    await asyncio.sleep(0.2)
        finally:
            await rotator.close()
        assert rotated.epoch == epoch + 1 and rotated.unreadable == 0 and rotated.exported is not None
        await deals.handle(ids["c-late-gone"], domain.EraseContact(reason="data subject request #22"), ctx)
        await publish_all(relay)
        tokens = {
            e.data["contact_id"]: e.data
            for _, e in await read_topic(endpoints.kafka_bootstrap_servers, settings.events_topic("deals"))
            if e.type == "pipelines.deals.DealOpened"
        }
        yield ErasureDrill(
            settings, run_dir, url, backup, ids, (start, end), relation, captured, opened_within_window, tokens
        )
    finally:
        if relay is not None:
            await relay.close()
        await pool.close()
        await delete_topics(endpoints.kafka_bootstrap_servers, topics)
        await asyncio.to_thread(stack, run_dir, "down", "--wipe")


def wal_records(drill: ErasureDrill) -> list[tuple[int, int]]:
    """(LSN, length) of every record pg_waldump finds on the key table between the two LSNs."""
    args = ["-p", str(pg_wal(drill)), "-s", drill.wal_span[0], "-e", drill.wal_span[1], "-r", "Heap"]
    done = subprocess.run(
        [pg_tool("pg_waldump"), *args, f"--relation={drill.relation}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = []
    for m in re.finditer(
        r"len \(rec/tot\):\s*\d+/\s*(\d+), tx:\s*\d+, lsn: ([0-9A-F]+)/([0-9A-F]+),.*desc: INSERT", done.stdout
    ):
        found.append(((int(m.group(2), 16) << 32) | int(m.group(3), 16), int(m.group(1))))
    return found


def pg_wal(drill: ErasureDrill) -> Path:
    return (drill.run_dir / "pg").resolve() / "data" / "pg_wal"


def record_bytes(wal: Path, lsn: int, length: int, segment: int = 16 * 1024 * 1024) -> bytes:
    """A WAL record's bytes, read from its segment files, without the page headers of the pages it crosses."""
    out = b""
    pos = lsn
    while len(out) < length:
        data = (wal / f"{1:08X}{pos >> 32:08X}{(pos & 0xFFFFFFFF) // segment:08X}").read_bytes()
        offset = pos % segment
        if offset % PAGE == 0:  # a page header: the long one on a segment's first page
            step = 40 if offset == 0 else 24
            offset, pos = offset + step, pos + step
        take = min(length - len(out), (offset // PAGE + 1) * PAGE - offset)
        out += data[offset : offset + take]
        pos += take
    return out


def wrapped_in(record: bytes, subject: str) -> bytes | None:
    """The wrapped key stored right after ``subject`` in a heap tuple: both are short varlenas (a one-byte length)."""
    s = subject.encode()
    pattern = bytes([((len(s) + 1) << 1) | 1]) + s + bytes([((KEY_BYTES_WRAPPED + 1) << 1) | 1])
    at = record.find(pattern)
    return None if at < 0 else record[at + len(pattern) : at + len(pattern) + KEY_BYTES_WRAPPED]


def from_backup(backup: Path, subject: str) -> tuple[int, bytes]:
    """The key table's row of ``subject`` in a plain-SQL pg_dump (COPY … FROM stdin)."""
    for line in backup.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) == 4 and fields[0] == subject and fields[1].startswith("\\\\x"):
            return int(fields[3]), bytes.fromhex(fields[1][3:])
    raise AssertionError(f"no key of {subject} in the backup")


def openers_left(settings: Settings, ring: Keyring) -> list[tuple[str, AESGCM]]:
    """Every AES key that what is left (the settings' master key, the keyring's file) gives, for any epoch from 0 to
    a few past the current one: the keys themselves, and the wrapping keys of the current epoch and its ratchets."""
    master = settings.master_key()
    current = Keyring(ring.directory, ring.name).current(fresh=True)  # read from the file now
    found = [("master key", AESGCM(master)), ("epoch key", AESGCM(current.key))]
    ratchet = current
    for _ in range(4):
        for epoch in range(0, ratchet.epoch + 4):
            found.append(
                (f"epoch {ratchet.epoch}'s key as epoch {epoch}", AESGCM(wrapping_key(master, ratchet.key, epoch)))
            )
        ratchet = ratchet.next()
    return found


def keyring_files(ring: Keyring) -> tuple[list[str], int, set[str]]:
    """The keyring directory's files, the epoch its key file holds, the subjects its key export holds."""
    lines = ring.export_path.read_text().splitlines()
    epoch = json.loads(ring.path.read_text())["epoch"]
    return sorted(p.name for p in ring.directory.iterdir()), epoch, {json.loads(x).get("subject") for x in lines}


def opens(aead: AESGCM, subject: str, wrapped: bytes) -> bool:
    for aad in (subject.encode(), *(f"{e}:{subject}".encode() for e in range(0, 8))):
        try:
            aead.decrypt(wrapped[:12], wrapped[12:], aad)
            return True
        except InvalidTag:
            continue
    return False


async def test_after_the_window_no_key_or_setting_left_opens_the_wal_or_backup_copy_of_an_erased_key(
    erasure_drill: ErasureDrill,
) -> None:
    drill = erasure_drill
    records = wal_records(drill)
    assert len(records) >= 2, "pg_waldump shows the key table's inserts"
    from_wal = {}
    for lsn, length in records:
        record = record_bytes(pg_wal(drill), lsn, length)
        for subject in ("c-kept", "c-gone"):
            if (found := wrapped_in(record, subject)) is not None:
                from_wal[subject] = found
    epoch, stored = drill.captured["c-gone"]
    assert from_wal["c-gone"] == stored, "the WAL holds the wrapped key as the table held it"
    assert from_backup(drill.backup, "c-gone") == (epoch, stored), "so does the backup made before the erasure"
    assert drill.opened_within_window, "within the window the old copy still opened: the window is what closes it"

    pool = await create_pool(drill.url, min_size=1, max_size=2)
    try:
        keys = key_store(pool, drill.settings)  # a process started now, with every setting and the keyring
        await keys.setup()
        for copy in (from_wal["c-gone"], from_backup(drill.backup, "c-gone")[1]):
            for e in range(0, epoch + 5):
                assert keys.try_unwrap("c-gone", e, copy) is None
            for name, aead in openers_left(drill.settings, keys.keyring):
                assert not opens(aead, "c-gone", copy), f"{name} opened it"
        assert await keys.is_erased("c-gone") and await keys.is_erased("c-late-gone")
        assert set(await keys.keys_for(CONTACTS)) == {"c-kept", "c-late"}
        sealed = await PersonalData(keys).open([drill.tokens[c] for c in CONTACTS])
        assert [o["contact"] and o["contact"]["email"] for o in sealed] == [
            "c-kept@example.vn",
            None,
            "c-late@example.vn",
            None,
        ], "Kafka's copies: the erased read as null, the others open with the re-wrapped keys"
        # the person not erased: their old copies are dead too, but their key lives on, re-wrapped
        assert keys.try_unwrap("c-kept", *drill.captured["c-kept"]) is None
        names, current, exported = keyring_files(keys.keyring)
        name = keys.keyring.name
        assert names == [f"{name}.epoch", f"{name}.keys.jsonl"] and current == epoch + 1, "only the current epoch"
        assert "c-gone" not in exported and "c-kept" in exported
    finally:
        await pool.close()


async def test_an_old_backup_restores_who_was_not_erased_and_not_who_was(erasure_drill: ErasureDrill) -> None:
    drill = erasure_drill
    admin = await asyncpg.connect(drill.url)
    try:
        await admin.execute("CREATE DATABASE restored")
    finally:
        await admin.close()
    restored_url = drill.url.rsplit("/", 1)[0] + "/restored"
    loaded = await asyncio.to_thread(
        subprocess.run,
        [pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", restored_url, "-f", str(drill.backup)],
        capture_output=True,
        text=True,
    )
    assert loaded.returncode == 0, loaded.stderr
    settings = drill.settings.model_copy(update={"database_url": restored_url})
    pool = await create_pool(restored_url, min_size=1, max_size=2)
    try:
        with pytest.raises(KeyringError, match="restored from a backup"):  # a service refuses to start on it
            await key_store(pool, settings).setup()
        env = os.environ | {
            "DATABASE_URL": restored_url,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "PIPELINES_SCHEMA_PREFIX": settings.schema_prefix,
            "PIPELINES_TOPIC_PREFIX": settings.topic_prefix,
            "PIPELINES_PII_SCHEMA": settings.pii_schema,
            "PIPELINES_PII_MASTER_KEY": settings.pii_master_key.get_secret_value() if settings.pii_master_key else "",
            "PIPELINES_KEYRING_DIR": settings.keyring_directory(),
        }
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "shared.messaging.restore", "deals"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "2 keys kept" in done.stdout and "2 from the export" in done.stdout and "0 lost" in done.stdout, (
            done.stdout
        )
        assert "deals: 4 events appended to 3 streams" in done.stdout, done.stdout  # 2 deals opened, 2 erasures

        keys = key_store(pool, settings)
        await keys.setup()  # now it starts
        store = PostgresEventStore(pool, settings.schema_name("deals"), PersonalData(keys))
        opened = {}
        for contact, deal in drill.deals.items():
            (first,) = await store.read_stream(f"deal-{deal}", to_version=1)
            (data,) = await store.personal_data.open([first.data])
            opened[contact] = data["contact"] and data["contact"]["email"]
        assert opened == {
            "c-kept": "c-kept@example.vn",  # in the old backup, its key from the export: restored and decrypted
            "c-gone": None,  # in the backup, erased after it: stays erased
            "c-late": "c-late@example.vn",  # after the backup: from the topic and the export
            "c-late-gone": None,  # erased after the export too: the topic's erasure event applied again
        }
        assert await keys.is_erased("c-gone") and await keys.is_erased("c-late-gone")
        epochs = await pool.fetch(f'SELECT subject_id, epoch FROM "{settings.pii_schema}".subject_keys ORDER BY 1')
        assert [tuple(r) for r in epochs] == [("c-kept", 2), ("c-late", 2)], "the backup's dead copies replaced"
    finally:
        await pool.close()
