"""The agenda's notifier process (decision 0020, "Reminders" and "Never twice"): ``python -m services.agenda
notifier``. It reads due activities and alerts from the agenda's read models, the recipients from its replica of
the directory, and sends by SMTP (``PIPELINES_SMTP_*``), each delivery claimed on its own stream first.

Modules: ``plan`` (what is due to whom now: quiet hours, digests), ``render`` (the email, in the recipient's
language and time zone), ``smtp`` (aiosmtplib, STARTTLS, AUTH), ``source`` (the read models), ``worker`` (the loop,
claims, retries, metrics)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from services.agenda.notifier.plan import Rules
from services.agenda.notifier.smtp import Mailer, SmtpSettings
from services.agenda.notifier.source import ReadModelSource
from services.agenda.notifier.worker import Notifier, Options
from shared.edge.service import Storage, utc_now
from shared.ops.settings import Settings

SERVICE = "agenda"


def smtp_settings(s: Settings) -> SmtpSettings:
    if not s.smtp_host:
        raise SystemExit("the notifier needs an SMTP server: set PIPELINES_SMTP_HOST")
    return SmtpSettings(
        host=s.smtp_host,
        port=s.smtp_port,
        username=s.smtp_username,
        password=s.smtp_password.get_secret_value() if s.smtp_password else None,
        starttls=s.smtp_starttls,
        ca_file=s.smtp_ca_file,
        connections=s.smtp_connections,
    )


def options(s: Settings) -> Options:
    return Options(
        sender=s.smtp_from,
        board_url=s.board_url,
        max_attempts=s.notifier_max_attempts,
        lease=timedelta(seconds=s.notifier_lease_seconds),
        poll_s=s.notifier_poll_seconds,
        concurrency=4 * s.smtp_connections,
        rules=Rules(lead=timedelta(minutes=s.reminder_lead_minutes)),
    )


async def run_notifier(settings: Settings, stop: asyncio.Event) -> None:
    """Poll and send until ``stop``."""
    mailer = Mailer(smtp_settings(settings))
    storage = await Storage.open(settings, SERVICE)
    try:
        source = ReadModelSource(storage.read_models, storage.personal_data)
        await Notifier(storage.store, source, mailer, utc_now, options(settings)).run(stop)
    finally:
        await mailer.close()
        await storage.close()
