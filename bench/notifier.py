"""The notifier (issue 25 "Targets"): reminders per second to a local SMTP server on 2 cores, beside a raw aiosmtplib
loop sending the same messages in the same run.

The SMTP server is testkit.smtp's (aiosmtpd in its own process, STARTTLS and AUTH, each message written to a file).
The notifier's path is the whole of one poll: plan the due activities of 1,000 users (in memory: the read models'
queries are the agenda benchmark's), render each message in its recipient's language and time zone, and per
delivery read its stream, append ``DeliveryClaimed`` to the agenda's PostgreSQL event store, send, append
``DeliverySent``. The baseline sends the same rendered messages over as many connections, kept open, with nothing
recorded. Each round has new activities, so every delivery is new.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosmtplib

from bench.common import Env, Report, cleanup, median
from services.agenda.notifier.plan import Activity, Recipient, Rules, plan
from services.agenda.notifier.render import Envelope, Mail, email_message
from services.agenda.notifier.smtp import Mailer, SmtpSettings
from services.agenda.notifier.source import MemorySource
from services.agenda.notifier.worker import Notifier, Options
from shared.edge.service import Storage
from testkit.smtp import SmtpServer

CONNECTIONS = 8
GOAL = 200.0  # messages per second
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def world(users: int, messages: int) -> MemorySource:
    zones = ("Asia/Ho_Chi_Minh", "Asia/Tokyo", "Europe/Berlin")
    people = {f"u{i}": Recipient(f"u{i}", f"u{i}@khach.vn", ("vi", "en")[i % 2], zones[i % 3]) for i in range(users)}
    acts = [
        Activity(uuid.uuid4(), f"u{i % users}", "phone", f"Gọi khách hàng số {i}", T0 + timedelta(minutes=1 + i % 10))
        for i in range(messages)
    ]
    return MemorySource(people, acts)


def rendered(src: MemorySource) -> list[Mail]:
    """The same messages, each with a Message-ID of its own."""
    p = plan(src.users, src.open_activities, [], T0, Rules())
    sender = "Pipelines <no-reply@pipelines.example>"
    board = "https://board.example.vn"
    return [email_message(m, Envelope(sender, board, f"<{uuid.uuid4()}@pipelines.example>", T0)) for m in p.messages]


async def raw_loop(server: SmtpServer, msgs: list[Mail]) -> float:
    """The baseline: ``CONNECTIONS`` aiosmtplib clients, each sending its share in a loop."""

    async def worker(share: list[Mail]) -> None:
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1",
            port=server.port,
            start_tls=True,
            tls_context=ssl.create_default_context(cafile=str(server.ca_file)),
        )
        await client.connect()
        await client.login(server.user, server.password)
        for m in share:
            await client.sendmail(m.sender, [m.recipient], m.data)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker(msgs[i::CONNECTIONS]) for i in range(CONNECTIONS)))
    return len(msgs) / (time.perf_counter() - started)


async def notifier_round(storage: Storage, server: SmtpServer, src: MemorySource) -> tuple[float, int]:
    mailer = Mailer(
        SmtpSettings(
            "127.0.0.1", server.port, server.user, server.password, True, str(server.ca_file), connections=CONNECTIONS
        )
    )
    opts = Options(sender="Pipelines <no-reply@pipelines.example>", concurrency=4 * CONNECTIONS)
    n = Notifier(storage.store, src, mailer, lambda: T0, opts)
    started = time.perf_counter()
    counts = await n.poll()
    rate = counts["sent"] / (time.perf_counter() - started)
    await mailer.close()
    return rate, counts["sent"]


async def run(env: Env) -> Report:
    users, messages, rounds = env.size(1000, 10), env.size(2000, 40), env.size(3, 1)
    settings = env.settings(db_pool_size=CONNECTIONS * 2)
    storage = await Storage.open(settings, "agenda")
    report = Report(
        "notifier",
        f"Notifier: {messages:,} reminders to {users:,} users, a local SMTP server (STARTTLS, AUTH), "
        f"{CONNECTIONS} connections",
        ["path", "messages/s (median)", "rounds", "messages sent"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        server = SmtpServer(Path(tmp)).start()
        try:
            ours, raw, sent = [], [], 0
            for _ in range(rounds):
                src = world(users, messages)
                raw.append(await raw_loop(server, rendered(src)))
                rate, n = await notifier_round(storage, server, src)
                ours.append(rate)
                sent += n
            assert sent == messages * rounds, f"the notifier sent {sent} of {messages * rounds}"
            delivered = len(server.messages())
        finally:
            server.stop()
            await storage.close()
            await cleanup(settings)
    report.rows.append(["notifier (claim, send, record)", median(ours), rounds, sent])
    report.rows.append(["raw aiosmtplib loop", median(raw), rounds, messages * rounds])
    report.at_least("notifier messages/s to the local SMTP server", median(ours), GOAL)
    report.notes.append(
        f"the server received {delivered:,} messages (both paths); ratio notifier/raw "
        f"{median(ours) / max(median(raw), 1e-9):.2f}"
    )
    report.data = {"notifier_per_s": ours, "raw_per_s": raw, "users": users, "messages": messages}
    return report
