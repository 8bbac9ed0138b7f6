"""A real SMTP server process for the notifier's tests: aiosmtpd in a subprocess, STARTTLS required (a certificate
made here with ``cryptography``, its own CA file for the client to trust) and AUTH (PLAIN/LOGIN, one user).

Each message it accepts is appended to ``<dir>/mail.jsonl`` as one JSON line (envelope sender and recipients, the
raw message); ``SmtpServer.messages()`` reads them back parsed. ``fail_first=N``: the first N transactions are
refused with 451 (a server failing for a while). The process can be killed (``kill()``) and started again.

``delay_s``: each DATA is recorded, then answered that long after (a client killed meanwhile has delivered its
message without knowing it). ``python -m testkit.smtp DIR PORT USER PASSWORD FAIL_FIRST DELAY_S`` is the server itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from shared.ops.stack import free_port

USER = "notifier"
PASSWORD = "s3cret-for-tests"  # the test server's


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost: (cert.pem, key.pem); the cert is its own CA file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class SmtpServer:
    """The server process, as a test drives it."""

    directory: Path
    port: int = 0
    fail_first: int = 0
    delay_s: float = 0.0  # how long each DATA, once recorded, waits for its answer (a slow server)
    proc: subprocess.Popen[bytes] | None = None
    ca_file: Path = field(init=False)
    user: str = USER
    password: str = PASSWORD

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_file, _ = make_certificate(self.directory)
        self.port = self.port or free_port()

    @property
    def mail_file(self) -> Path:
        return self.directory / "mail.jsonl"

    def start(self, timeout_s: float = 15.0) -> SmtpServer:
        args = [str(self.directory), str(self.port), self.user, self.password, str(self.fail_first), str(self.delay_s)]
        log = (self.directory / "server.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "testkit.smtp", *args], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the SMTP server exited: {(self.directory / 'server.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(100).startswith(b"220"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("the SMTP server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def messages(self) -> list[EmailMessage]:
        if not self.mail_file.exists():
            return []
        out = []
        for line in self.mail_file.read_text().splitlines():
            raw = json.loads(line)["data"]
            out.append(email.message_from_string(raw, policy=email.policy.default))
        return out

    def clear(self) -> None:
        self.mail_file.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- the server process
def _serve(directory: Path, port: int, user: str, password: str, fail_first: int, delay_s: float) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    mail_file = directory / "mail.jsonl"  # opened per message: a test clears it between its cases
    failing = {"left": fail_first}

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
            if failing["left"] > 0:
                failing["left"] -= 1
                return "451 4.3.0 try again later"
            raw = envelope.content.decode("utf-8", "replace")
            record = {"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "data": raw, "at": time.time()}
            with mail_file.open("a") as mail:
                mail.write(json.dumps(record) + "\n")
            if delay_s:
                await asyncio.sleep(delay_s)  # the message is taken; the client waits for the answer
            return "250 OK"

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
        ready_timeout=10,
    )
    controller.start()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    while not stop["now"]:
        time.sleep(0.1)
    controller.stop()


if __name__ == "__main__":
    d, p, u, pw, f, delay = sys.argv[1:7]
    _serve(Path(d), int(p), u, pw, int(f), float(delay))
