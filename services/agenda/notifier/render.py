"""A reminder as an email: in the recipient's language (en | vi) and time zone, with a link to the board."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, parseaddr

from services.agenda.notifier.plan import Activity, Message

KINDS = {  # shared.core.channels.ActivityKind
    "en": {
        "phone": "Call",
        "email": "Email",
        "meeting": "Meeting",
        "video_call": "Video call",
        "chat": "Chat",
        "sms": "SMS",
        "zalo": "Zalo message",
        "in_person": "Visit",
        "site_visit": "Site visit",
        "free_trial": "Free trial",
        "offer": "Offer",
        "demo": "Demo",
        "task": "Task",
    },
    "vi": {
        "phone": "Gọi điện",
        "email": "Email",
        "meeting": "Cuộc họp",
        "video_call": "Gọi video",
        "chat": "Trò chuyện",
        "sms": "Tin nhắn SMS",
        "zalo": "Tin nhắn Zalo",
        "in_person": "Gặp trực tiếp",
        "site_visit": "Khảo sát hiện trường",
        "free_trial": "Dùng thử",
        "offer": "Báo giá",
        "demo": "Trình diễn sản phẩm",
        "task": "Việc cần làm",
    },
}
TEXT = {
    "en": {
        "due": "Reminder: {kind} “{title}” at {time}",
        "overdue": "Overdue: {kind} “{title}” was due {time}",
        "alert": "Alert: {summary}",
        "digest": "Your agenda for {day}: {n} activities",
        "line": "- {time}  {kind}: {title}",
        "overdue_line": "- {time}  {kind}: {title} (overdue)",
        "open": "Open the board: {link}",
        "raised": "Raised at {time}.",
        "why": "You receive this because the activity or alert is yours in Pipelines.",
    },
    "vi": {
        "due": "Nhắc việc: {kind} “{title}” lúc {time}",
        "overdue": "Quá hạn: {kind} “{title}” hạn lúc {time}",
        "alert": "Cảnh báo: {summary}",
        "digest": "Lịch làm việc ngày {day}: {n} hoạt động",
        "line": "- {time}  {kind}: {title}",
        "overdue_line": "- {time}  {kind}: {title} (quá hạn)",
        "open": "Mở bảng công việc: {link}",
        "raised": "Phát sinh lúc {time}.",
        "why": "Bạn nhận được thư này vì hoạt động hoặc cảnh báo này thuộc về bạn trong Pipelines.",
    },
}


@dataclass(frozen=True)
class Envelope:
    sender: str
    board_url: str
    message_id: str
    date: datetime


def _when(m: Message, t: datetime, *, day: bool = True) -> str:
    local = t.astimezone(m.recipient.zone)
    fmt = "%H:%M %d/%m/%Y" if day else "%H:%M"
    return f"{local.strftime(fmt)} ({m.recipient.time_zone})"


def _kind(lang: str, a: Activity) -> str:
    return KINDS[lang].get(a.kind, a.kind)


def board_link(base: str, a: Activity) -> str:
    """Where the board shows what the activity is about: a deal's timeline, the leads' inbox, else the sales board
    (the board has no agenda page of its own; the agenda is ``GET /agenda`` of the agenda's API)."""
    if a.subject_type == "deal" and a.subject_ref:
        return f"{base}/audit?deal={a.subject_ref}"
    return f"{base}/marketing" if a.subject_type == "lead" else f"{base}/sales"


def subject_and_body(m: Message, board_url: str) -> tuple[str, str]:
    lang = m.recipient.language if m.recipient.language in TEXT else "vi"
    t = TEXT[lang]
    base = board_url.rstrip("/")
    lines: list[str] = []
    if m.what in ("due", "overdue"):
        a = m.activities[0]
        subject = t[m.what].format(kind=_kind(lang, a), title=a.title, time=_when(m, a.due_at))
        link = board_link(base, a)
        lines.append(subject)
    elif m.what == "alert" and m.alert is not None:
        subject = t["alert"].format(summary=m.alert.summary)
        link = f"{base}/alerts"
        lines += [subject, t["raised"].format(time=_when(m, m.alert.raised_at))]
    else:
        day = m.day.strftime("%d/%m/%Y") if m.day else ""
        subject = t["digest"].format(day=day, n=len(m.activities))
        link = f"{base}/sales"
        lines.append(subject)
        today = m.day
        for a in m.activities:
            overdue = today is not None and a.due_at.astimezone(m.recipient.zone).date() < today
            key = "overdue_line" if overdue else "line"
            when = _when(m, a.due_at, day=overdue)
            lines.append(t[key].format(time=when, kind=_kind(lang, a), title=a.title))
    lines += ["", t["open"].format(link=link), "", t["why"]]
    return subject, "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Mail:
    """A message as SMTP sends it: the envelope's sender and recipient, and the message's bytes (CRLF lines)."""

    sender: str
    recipient: str
    data: bytes


def _header(value: str) -> str:
    """A header's value on one line (a title's line breaks and control characters become spaces: no header can be
    injected through one), as it is when ASCII, else RFC 2047 encoded words (UTF-8, base64), folded."""
    value = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in value)
    if value.isascii():
        return value
    return Header(value, "utf-8", maxlinelen=76, header_name="Subject").encode(linesep="\r\n")


def email_message(m: Message, env: Envelope) -> Mail:
    """The message, plain text in UTF-8; its ``Message-ID`` is the delivery's (the same for every attempt).

    Written here rather than by ``email.message.EmailMessage``: its header parsing and folding cost a few ms of CPU
    per message, most of what one send cost (bench/notifier.py)."""
    assert m.recipient.email is not None
    subject, body = subject_and_body(m, env.board_url)
    head = [
        f"From: {_header(env.sender)}",
        f"To: {m.recipient.email}",
        f"Subject: {_header(subject)}",
        f"Date: {format_datetime(env.date)}",
        f"Message-ID: {env.message_id}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: base64",
        f"Content-Language: {m.recipient.language}",
        "Auto-Submitted: auto-generated",
        f"X-Pipelines-Item: {m.item}",
    ]
    text = base64.encodebytes(body.encode()).replace(b"\n", b"\r\n")
    data = "\r\n".join(head).encode() + b"\r\n\r\n" + text
    return Mail(parseaddr(env.sender)[1], m.recipient.email, data)
