"""Sending by SMTP (aiosmtplib): STARTTLS when asked (the certificate checked, against ``ca_file`` when given), AUTH
when a username is set; a few connections kept open and reused, one dropped on any error."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

import aiosmtplib

from services.agenda.notifier.render import Mail


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    ca_file: str | None = None  # the certificate authority to trust (None: the system's)
    timeout_s: float = 30.0
    connections: int = 4


class SendError(Exception):
    """The server refused the message or could not be reached: worth trying again later."""


class Mailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(settings.connections)

    def _tls(self) -> ssl.SSLContext | None:
        if not self.settings.starttls:
            return None
        return ssl.create_default_context(cafile=self.settings.ca_file)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            start_tls=s.starttls,
            tls_context=self._tls(),
            timeout=s.timeout_s,
        )
        await client.connect()
        if s.username:
            await client.login(s.username, s.password or "")
        return client

    async def send(self, mail: Mail) -> None:
        """Send one message (raises ``SendError``)."""
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                await client.sendmail(mail.sender, [mail.recipient], mail.data)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()
                raise SendError(f"{type(exc).__name__}: {str(exc)[:300]}") from exc
            self._idle.append(client)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(Exception):
                await client.quit()
