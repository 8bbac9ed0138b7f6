"""The agenda's notifier as it runs (issue 25 item 3): ``python -m services.agenda notifier`` processes on
PostgreSQL, reading the agenda's read models (``activities``, the directory replica with each user's sealed email,
opened with the shared key store), sending through a real SMTP server process (STARTTLS, AUTH) that answers
slowly — and one of them killed with SIGKILL inside its SMTP transactions.

After the kill the deliveries it claimed wait for their leases, then two notifiers started together send them: what
the first had handed to the server arrives again with the same Message-ID, so each person has exactly one
Message-ID per activity (and alert); a user whose key was erased gets nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.agenda import delivery as dl
from services.agenda.main import build
from services.directory import events as ev
from services.directory.replica import apply_one
from shared.edge.service import Storage
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints
from shared.store import NewEvent
from testkit.services import drop_everything, isolated_settings, process_env, spawn
from testkit.smtp import SmtpServer

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e]
USERS = [f"u{i}" for i in range(6)]  # u5's key is erased: nothing reaches them
ITEMS_PER_USER = 2


@pytest.fixture
async def settings(endpoints: Endpoints) -> AsyncIterator[Settings]:
    s = isolated_settings(endpoints)
    yield s
    await drop_everything(s)


async def seed(settings: Settings, now: datetime) -> dict[str, list[uuid.UUID]]:
    """The directory's users registered (their emails sealed in the directory's store), applied to the agenda's
    replica; two open activities each in the agenda's ``activities``, due within the reminder's lead."""
    agenda = await build(settings)
    directory = await Storage.open(settings, "directory")
    try:
        for runner in agenda.runners():
            await runner.setup()
        for u in USERS:
            registered = ev.UserRegistered(
                user_id=u,
                subject=f"user:{u}",
                name=f"Người dùng {u}",
                email=f"{u}@example.vn",
                language="vi" if u != "u1" else "en",
                time_zone="Asia/Ho_Chi_Minh",
                team_id="north",
                roles=("sales",),
                registered_at=now,
            )
            await directory.store.append(f"directory-user-{u}", [NewEvent(registered)], expected_version=0)
        await directory.personal_data.keys.erase("user:u5", reason="test: erased")
        # the streams read directly: read_all stops short of transactions older ones may still commit before (its
        # commit-safe bound), so another test's open transaction on this server would hide these users from it
        recorded = await directory.store.read_streams("directory-user-")
        owned: dict[str, list[uuid.UUID]] = {u: [uuid.uuid4() for _ in range(ITEMS_PER_USER)] for u in USERS}
        pool, rm = agenda.storage.pool, agenda.storage.read_models
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SET LOCAL search_path TO {await rm.active_schema(conn, 'directory')}")
            for r in recorded:
                envelope = CloudEvent.from_recorded(r, "directory")
                await apply_one(conn, Fact(envelope, envelope.to_event()))
            await conn.execute(f"SET LOCAL search_path TO {await rm.active_schema(conn, 'activities')}")
            for u, ids in owned.items():
                for i, a in enumerate(ids):
                    await conn.execute(
                        """INSERT INTO activities (activity_id, kind, subject_type, subject_ref, owner_id, team_id,
                               title, data_subject, due_at, duration_minutes, status, scheduled_at, version)
                           VALUES ($1, 'phone', 'deal', $2, $3, 'north', $4, 'deal:x', $5, 15, 'scheduled', $6, 1)""",
                        a,
                        uuid.uuid4(),
                        u,
                        f"Gọi khách {u}-{i}",
                        now + timedelta(minutes=5 + i),
                        now,
                    )
            await conn.execute(f"SET LOCAL search_path TO {await rm.active_schema(conn, 'alerts')}")
            await conn.execute(
                """INSERT INTO alerts (alert_id, service, kind, entity, summary, details, raised_at, concerns)
                   VALUES ($1, 'deals', 'deal_stuck', 'deal-1', 'ACME: 20 days in Proposal', '{}', $2, '{u0}'),
                          ($3, 'deals', 'deal_stuck', 'deal-2', 'cleared already', '{}', $2, '{u0}')""",
                uuid.uuid4(),
                now - timedelta(minutes=1),
                uuid.uuid4(),
            )
            await conn.execute("UPDATE alerts SET cleared_at = $1 WHERE summary = 'cleared already'", now)
        return owned
    finally:
        await directory.close()
        await agenda.close()


def notifier(settings: Settings, smtp: SmtpServer, logs: Path, name: str) -> subprocess.Popen[bytes]:
    env = process_env(
        settings,
        PIPELINES_SMTP_HOST="127.0.0.1",
        PIPELINES_SMTP_PORT=str(smtp.port),
        PIPELINES_SMTP_USERNAME=smtp.user,
        PIPELINES_SMTP_PASSWORD=smtp.password,
        PIPELINES_SMTP_CA_FILE=str(smtp.ca_file),
        PIPELINES_SMTP_FROM="Pipelines <no-reply@pipelines.example>",
        PIPELINES_SMTP_CONNECTIONS="4",
        PIPELINES_NOTIFIER_POLL_SECONDS="0.2",
        PIPELINES_NOTIFIER_LEASE_SECONDS="2",
        PIPELINES_BOARD_URL="https://board.example.vn",
    )
    return spawn(("-m", "services.agenda", "notifier"), env, logs / f"{name}.log")


async def sent_streams(settings: Settings) -> set[str]:
    storage = await Storage.open(settings, "agenda")
    try:
        rows = await storage.pool.fetch(
            f"SELECT stream_id FROM {storage.store.schema}.events WHERE event_type = 'pipelines.agenda.DeliverySent'"
        )
        return {r["stream_id"] for r in rows}
    finally:
        await storage.close()


@pytest.mark.timeout(180)
async def test_a_notifier_killed_mid_send_is_followed_by_one_resend_with_the_same_message_id(
    settings: Settings, tmp_path: Path
) -> None:
    await seed(settings, datetime.now(UTC))
    smtp = SmtpServer(tmp_path / "smtp", delay_s=0.5).start()
    first = None
    replicas: list[subprocess.Popen[bytes]] = []
    try:
        first = notifier(settings, smtp, tmp_path, "first")
        deadline = time.monotonic() + 60
        while not smtp.messages():  # the server has a message, its sender waits a second for the answer: kill it
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the first notifier sent nothing"
            await asyncio.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        await asyncio.sleep(0.5)
        before = len(smtp.messages())
        # two replicas take over at once: each delivery still goes once (once more for what the kill cut)
        replicas = [notifier(settings, smtp, tmp_path, name) for name in ("second", "third")]
        deadline = time.monotonic() + 60
        while len(await sent_streams(settings)) < (len(USERS) - 1) * ITEMS_PER_USER + 1:
            for name, p in zip(("second", "third"), replicas, strict=True):
                assert p.poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the second notifier did not finish the deliveries"
            await asyncio.sleep(0.3)
    finally:
        for p in (first, *replicas):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(20)
        smtp.stop()
    msgs = smtp.messages()
    ids: dict[str, set[str]] = defaultdict(set)
    for m in msgs:
        ids[str(m["To"])].add(str(m["Message-ID"]))
    # two activities each, and u0 the alert that concerns them (not the one cleared); u5 (erased) nothing
    assert {to: len(v) for to, v in ids.items()} == {f"{u}@example.vn": ITEMS_PER_USER + (u == "u0") for u in USERS[:5]}
    items = (len(USERS) - 1) * ITEMS_PER_USER + 1
    assert 1 <= before <= 4  # in the server when the kill came, none answered: each sent again, the same Message-ID
    assert len(msgs) == items + before
    for m in msgs:  # the Message-ID is the delivery's: recipient and item
        item = str(m["X-Pipelines-Item"]).strip()
        user = str(m["To"]).split("@")[0]
        assert m["Message-ID"] == dl.message_id(dl.delivery_id(user, item), "pipelines.example")
    assert any(str(m["Subject"]).startswith("Reminder: Call") for m in msgs)  # u1 reads English
    assert any(str(m["Subject"]) == "Cảnh báo: ACME: 20 days in Proposal" for m in msgs)
    assert all(
        "https://board.example.vn/audit?deal=" in m.get_content()
        for m in msgs
        if "activity:" in str(m["X-Pipelines-Item"])
    )
