"""The agenda's notifier (issue 25 item 3): reminders through a real SMTP server process (aiosmtpd with STARTTLS and
AUTH, testkit.smtp) — content, language, time zone, quiet hours, digest — never twice with two notifiers or after a
notifier died inside the SMTP transaction, and a failing server answered with DeliveryFailed, then a retry.

The deliveries' streams are in the in-memory store (the claims race on its expected versions as on PostgreSQL's);
what crosses a server here is SMTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.agenda import delivery as dl
from services.agenda.notifier.plan import Activity, Alert, Recipient, Rules, in_quiet_hours, plan, quiet_ends
from services.agenda.notifier.render import Mail
from services.agenda.notifier.smtp import Mailer, SmtpSettings
from services.agenda.notifier.source import MemorySource
from services.agenda.notifier.worker import Notifier, Options
from shared.store.memory import InMemoryEventStore
from testkit.smtp import SmtpServer

# 2026-03-02 01:50 UTC = 08:50 in Ho Chi Minh City (UTC+7), 09:50 in Tokyo (UTC+9)
T0 = datetime(2026, 3, 2, 1, 50, tzinfo=UTC)
BOARD = "https://board.example.vn"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path_factory.mktemp("smtp")).start()
    yield server
    server.stop()


@pytest.fixture
def server(smtp: SmtpServer) -> SmtpServer:
    smtp.clear()
    return smtp


def mailer(s: SmtpServer, **kw: object) -> Mailer:
    return Mailer(SmtpSettings("127.0.0.1", s.port, s.user, s.password, True, str(s.ca_file), timeout_s=10, **kw))


def activity(owner: str, due: datetime, title: str = "Gọi anh Minh về báo giá", kind: str = "phone") -> Activity:
    return Activity(uuid.uuid4(), owner, kind, title, due, "deal", str(uuid.uuid4()))


AN = Recipient("an", "an@example.vn", "vi", "Asia/Ho_Chi_Minh")
BEN = Recipient("ben", "ben@example.com", "en", "Asia/Tokyo")


def notifier(source: MemorySource, store: InMemoryEventStore, clock: Clock, send: object, **kw: object) -> Notifier:
    opts = Options(sender="Pipelines <no-reply@pipelines.example>", board_url=BOARD, backoff_base_s=60, **kw)
    return Notifier(store, source, send, clock, opts)


def by_item(msgs: list[EmailMessage]) -> dict[str, EmailMessage]:
    return {str(m["X-Pipelines-Item"]).strip(): m for m in msgs}


# ---------------------------------------------------------------------------------------------- pure rules
def test_quiet_hours_span_midnight_and_end_in_the_local_morning() -> None:
    r = Recipient("q", "q@x.vn", quiet_start=time(21, 30), quiet_end=time(7, 0))  # Ho Chi Minh City
    assert in_quiet_hours(r, datetime(2026, 3, 1, 15, 0, tzinfo=UTC))  # 22:00 local
    assert in_quiet_hours(r, datetime(2026, 3, 1, 23, 59, tzinfo=UTC))  # 06:59 local
    assert not in_quiet_hours(r, datetime(2026, 3, 2, 0, 0, tzinfo=UTC))  # 07:00 local
    assert quiet_ends(r, datetime(2026, 3, 1, 15, 0, tzinfo=UTC)) == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    day = Recipient("d", "d@x.vn", quiet_start=time(12, 0), quiet_end=time(13, 0))
    assert in_quiet_hours(day, datetime(2026, 3, 2, 5, 30, tzinfo=UTC))  # 12:30 local
    assert not in_quiet_hours(day, datetime(2026, 3, 2, 6, 0, tzinfo=UTC))


def test_the_plan_reminds_before_due_once_overdue_and_skips_the_unreachable() -> None:
    rules = Rules(lead=timedelta(minutes=15))
    soon, late, later = (
        activity("an", T0 + timedelta(minutes=10)),
        activity("an", T0 - timedelta(hours=2)),
        activity("an", T0 + timedelta(hours=2)),
    )
    gone = activity("cy", T0 + timedelta(minutes=5))
    users = {"an": AN, "cy": Recipient("cy", None)}  # cy erased: no email
    p = plan(users, [soon, late, later, gone], [], T0, rules)
    assert sorted(m.item for m in p.messages) == sorted(
        [f"activity:{soon.activity_id}:due:{soon.due_at.isoformat()}", f"activity:{late.activity_id}:overdue"]
    )
    assert dl.delivery_id("an", "x") == dl.delivery_id("an", "x") != dl.delivery_id("ben", "x")


def test_a_deactivated_user_is_told_nothing_and_a_digest_in_quiet_hours_waits() -> None:
    gone = Recipient("an", "an@example.vn", active=False)
    assert plan({"an": gone}, [activity("an", T0 + timedelta(minutes=5))], [], T0, Rules()).messages == []
    # the digest at 06:30 local, quiet hours until 07:00: held at 06:45, sent at 07:00
    early = Recipient(
        "an", "an@example.vn", reminders="digest", digest_at=time(6, 30), quiet_start=time(22, 0), quiet_end=time(7, 0)
    )
    due = [activity("an", datetime(2026, 3, 2, 3, 0, tzinfo=UTC))]
    held = plan({"an": early}, due, [], datetime(2026, 3, 1, 23, 45, tzinfo=UTC), Rules())
    assert (held.messages, held.held) == ([], 1)
    sent = plan({"an": early}, due, [], datetime(2026, 3, 2, 0, 0, tzinfo=UTC), Rules())
    assert [m.item for m in sent.messages] == ["digest:2026-03-02"]


# ---------------------------------------------------------------------------------------------- through SMTP
async def test_a_due_reminder_reaches_its_owner_in_their_language_and_time_zone(server: SmtpServer) -> None:
    sent_before = REGISTRY.get_sample_value("pipelines_notifier_sent_total", {"what": "due"}) or 0
    store, clock, send = InMemoryEventStore(), Clock(T0), mailer(server)
    call, meet = (
        activity("an", T0 + timedelta(minutes=10)),
        activity("ben", T0 + timedelta(minutes=5), "Demo for ACME", "meeting"),
    )
    src = MemorySource({"an": AN, "ben": BEN}, [call, meet])
    counts = await notifier(src, store, clock, send).poll()
    await send.close()
    assert counts["sent"] == 2
    assert REGISTRY.get_sample_value("pipelines_notifier_sent_total", {"what": "due"}) == sent_before + 2
    got = by_item(server.messages())
    vi = got[f"activity:{call.activity_id}:due:{call.due_at.isoformat()}"]
    assert vi["To"] == "an@example.vn" and vi["Content-Language"] == "vi"
    assert vi["Subject"] == "Nhắc việc: Gọi điện “Gọi anh Minh về báo giá” lúc 09:00 02/03/2026 (Asia/Ho_Chi_Minh)"
    assert f"{BOARD}/audit?deal={call.subject_ref}" in vi.get_content()  # the deal's timeline on the board
    en = got[f"activity:{meet.activity_id}:due:{meet.due_at.isoformat()}"]
    assert en["Subject"] == "Reminder: Meeting “Demo for ACME” at 10:55 02/03/2026 (Asia/Tokyo)"
    assert "Open the board: " in en.get_content()
    assert en["Message-ID"] == dl.message_id(dl.delivery_id("ben", en["X-Pipelines-Item"].strip()), "pipelines.example")
    recorded = await store.read_stream(dl.stream_of(dl.delivery_id("ben", en["X-Pipelines-Item"].strip())))
    assert [r.event_type for r in recorded] == ["pipelines.agenda.DeliveryClaimed", "pipelines.agenda.DeliverySent"]
    # a second round, a restart (a new notifier on the same store): nothing again
    again = notifier(src, store, clock, mailer(server))
    assert (await again.poll())["sent"] == 0
    assert len(server.messages()) == 2


async def test_nothing_goes_in_quiet_hours_it_waits_for_their_end(server: SmtpServer) -> None:
    night = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)  # 22:00 in Ho Chi Minh City
    quiet = Recipient("an", "an@example.vn", "vi", "Asia/Ho_Chi_Minh", time(21, 0), time(7, 0))
    late = activity("an", night - timedelta(minutes=30))
    store, clock, send = InMemoryEventStore(), Clock(night), mailer(server)
    n = notifier(MemorySource({"an": quiet}, [late]), store, clock, send, rules=Rules(overdue_window=timedelta(days=1)))
    counts = await n.poll()
    assert counts["held"] == 1 and counts["sent"] == 0 and server.messages() == []
    clock.now = datetime(2026, 3, 2, 0, 1, tzinfo=UTC)  # 07:01 local
    assert (await n.poll())["sent"] == 1
    await send.close()
    (m,) = server.messages()
    assert m["Subject"].startswith("Quá hạn: Gọi điện") and "hạn lúc 21:30 01/03/2026" in m["Subject"]


async def test_a_digest_goes_once_a_local_morning_with_what_is_due_that_day(server: SmtpServer) -> None:
    dawn = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # 06:00 on 2 March in Ho Chi Minh City
    digester = Recipient("an", "an@example.vn", "en", "Asia/Ho_Chi_Minh", reminders="digest", digest_at=time(7, 30))
    today = [activity("an", datetime(2026, 3, 2, h, 0, tzinfo=UTC), f"call {h}") for h in (2, 9)]
    tomorrow = activity("an", datetime(2026, 3, 2, 18, 0, tzinfo=UTC), "tomorrow's")  # 01:00 on 3 March local
    store, clock, send = InMemoryEventStore(), Clock(dawn), mailer(server)
    n = notifier(MemorySource({"an": digester}, [*today, tomorrow]), store, clock, send)
    assert (await n.poll())["sent"] == 0  # before 07:30 local: no digest, no reminder of its own either
    clock.now = datetime(2026, 3, 2, 1, 45, tzinfo=UTC)  # 08:45 local: the 09:00 call is 15 minutes away
    assert (await n.poll())["sent"] == 1
    clock.now += timedelta(hours=1)
    assert (await n.poll())["sent"] == 0  # once a day
    await send.close()
    (m,) = server.messages()
    assert m["Subject"] == "Your agenda for 02/03/2026: 2 activities"
    body = m.get_content()
    assert "09:00 (Asia/Ho_Chi_Minh)  Call: call 2" in body and "16:00 (Asia/Ho_Chi_Minh)  Call: call 9" in body
    assert "tomorrow's" not in body and f"{BOARD}/sales" in body


async def test_an_alert_reaches_the_users_it_concerns(server: SmtpServer) -> None:
    alert = Alert(
        uuid.uuid4(), "deal_stuck", "Deal ACME has not moved for 14 days", "deal-1", T0 - timedelta(hours=1), ("ben",)
    )
    store, clock, send = InMemoryEventStore(), Clock(T0), mailer(server)
    assert (await notifier(MemorySource({"an": AN, "ben": BEN}, [], [alert]), store, clock, send).poll())["sent"] == 1
    await send.close()
    (m,) = server.messages()
    assert m["To"] == "ben@example.com" and m["Subject"] == "Alert: Deal ACME has not moved for 14 days"
    assert "Raised at 09:50 02/03/2026 (Asia/Tokyo)." in m.get_content() and f"{BOARD}/alerts" in m.get_content()


async def test_two_notifiers_at_once_send_each_reminder_once(server: SmtpServer) -> None:
    users = {f"u{i}": Recipient(f"u{i}", f"u{i}@example.vn") for i in range(20)}
    items = [activity(f"u{i % 20}", T0 + timedelta(minutes=1 + i % 10), f"call {i}") for i in range(60)]
    store, clock = InMemoryEventStore(), Clock(T0)
    a, b = mailer(server), mailer(server)
    na, nb = (notifier(MemorySource(users, items), store, clock, s) for s in (a, b))
    ca, cb = await asyncio.gather(na.poll(), nb.poll())
    await a.close()
    await b.close()
    assert ca["sent"] + cb["sent"] == 60
    msgs = server.messages()
    assert len(msgs) == 60 and len({m["Message-ID"] for m in msgs}) == 60


async def test_a_notifier_dead_inside_the_transaction_is_followed_by_one_resend_with_the_same_message_id(
    server: SmtpServer,
) -> None:
    """The first notifier's message reached the server, then it died before recording it: its lease lapses and the
    next claim sends again — the same Message-ID, so the person has one message per item."""
    store, clock = InMemoryEventStore(), Clock(T0)
    src = MemorySource(
        {"an": AN, "ben": BEN}, [activity("an", T0 + timedelta(minutes=3)), activity("ben", T0 + timedelta(minutes=4))]
    )
    real = mailer(server)

    class DiesAfterData:
        async def send(self, mail: Mail) -> None:
            await real.send(mail)
            raise asyncio.CancelledError  # killed: nothing after the send runs

    with pytest.raises(asyncio.CancelledError):
        await notifier(src, store, clock, DiesAfterData()).poll()
    second = notifier(src, store, clock, real)
    assert (await second.poll())["sent"] == 0  # the dead one's lease holds
    clock.now += timedelta(seconds=61)
    assert (await second.poll())["sent"] == 2
    await real.close()
    per_person = Counter((m["To"], m["Message-ID"]) for m in server.messages())
    ids = {to: {mid for t, mid in per_person if t == to} for to, _ in per_person}
    assert {to: len(v) for to, v in ids.items()} == {"an@example.vn": 1, "ben@example.com": 1}  # one item each
    assert sum(per_person.values()) in (3, 4)  # the dead one reached the server once or twice before it died


async def test_a_failing_server_is_recorded_then_retried_with_backoff(tmp_path: Path) -> None:
    failing = SmtpServer(tmp_path / "failing", fail_first=1).start()
    try:
        store, clock, send = InMemoryEventStore(), Clock(T0), mailer(failing)
        due = activity("an", T0 + timedelta(minutes=5))
        n = notifier(MemorySource({"an": AN}, [due]), store, clock, send, max_attempts=3)
        assert (await n.poll())["failed"] == 1
        stream = dl.stream_of(dl.delivery_id("an", f"activity:{due.activity_id}:due:{due.due_at.isoformat()}"))
        _claimed, failed = [r.to_event() for r in await store.read_stream(stream)]
        assert isinstance(failed, dl.DeliveryFailed) and "451" in failed.error and failed.retry_at is not None
        assert T0 + timedelta(seconds=30) <= failed.retry_at <= T0 + timedelta(seconds=60)  # 60 s base, jittered
        assert (await n.poll())["sent"] == 0  # not before retry_at
        clock.now = failed.retry_at
        assert (await n.poll())["sent"] == 1
        await send.close()
        events = [r.to_event() for r in await store.read_stream(stream)]
        assert [type(e).__name__ for e in events] == [
            "DeliveryClaimed",
            "DeliveryFailed",
            "DeliveryClaimed",
            "DeliverySent",
        ]
        first, _failed, again, sent = events
        assert isinstance(again, dl.DeliveryClaimed) and again.attempt == 2
        assert isinstance(first, dl.DeliveryClaimed) and isinstance(sent, dl.DeliverySent)
        assert first.message_id == sent.message_id
        assert len(failing.messages()) == 1
    finally:
        failing.stop()


async def test_the_last_attempt_gives_up(tmp_path: Path) -> None:
    failing = SmtpServer(tmp_path / "down", fail_first=10).start()
    try:
        store, clock, send = InMemoryEventStore(), Clock(T0), mailer(failing)
        due = activity("an", T0 + timedelta(minutes=14))
        n = notifier(MemorySource({"an": AN}, [due]), store, clock, send, max_attempts=2)
        await n.poll()
        clock.now += timedelta(minutes=2)
        assert (await n.poll())["failed"] == 1
        clock.now += timedelta(minutes=5)
        assert (await n.poll()) == {"sent": 0, "failed": 0, "lost": 0, "skipped": 1, "held": 0, "errors": 0}
        stream = dl.stream_of(dl.delivery_id("an", f"activity:{due.activity_id}:due:{due.due_at.isoformat()}"))
        last = (await store.read_stream(stream))[-1].to_event()
        assert isinstance(last, dl.DeliveryFailed) and last.retry_at is None and last.attempt == 2
        await send.close()
    finally:
        failing.stop()


async def test_a_title_cannot_add_a_header(server: SmtpServer) -> None:
    sneaky = activity("ben", T0 + timedelta(minutes=5), "Call\r\nBcc: thief@evil.example\r\n\r\nhi", "phone")
    store, clock, send = InMemoryEventStore(), Clock(T0), mailer(server)
    assert (await notifier(MemorySource({"ben": BEN}, [sneaky]), store, clock, send).poll())["sent"] == 1
    await send.close()
    (m,) = server.messages()
    assert m["Bcc"] is None and m["Subject"].startswith("Reminder: Call “Call  Bcc: thief@evil.example    hi”")
    assert json.loads(server.mail_file.read_text())["to"] == ["ben@example.com"]


async def test_an_alert_naming_nobody_goes_to_the_role_its_kind_names(server: SmtpServer) -> None:
    order = Alert(uuid.uuid4(), "order_at_risk", "ACME: still cutting", "production-order-1", T0, ())
    maker = Recipient("mai", "mai@example.vn", "vi", roles=("production",))
    idle = Recipient("old", "old@example.vn", roles=("production",), active=False)
    store, clock, send = InMemoryEventStore(), Clock(T0), mailer(server)
    src = MemorySource({"an": AN, "mai": maker, "old": idle}, [], [order])
    assert (await notifier(src, store, clock, send).poll())["sent"] == 1
    await send.close()
    (m,) = server.messages()
    assert m["To"] == "mai@example.vn" and m["Subject"] == "Cảnh báo: ACME: still cutting"


def test_backoff_doubles_is_capped_and_jittered() -> None:
    import random

    rng = random.Random(7)
    waits = [dl.backoff(a, 30, 600, rng).total_seconds() for a in range(1, 8)]
    assert all(15 <= waits[0] <= 30 for _ in [0]) and 30 <= waits[1] <= 60 and 60 <= waits[2] <= 120
    assert all(300 <= w <= 600 for w in waits[5:])
