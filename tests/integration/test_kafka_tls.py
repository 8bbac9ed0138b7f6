"""The secure stack's clients talk SASL/SCRAM over TLS (``scripts/stack --secure``, decision 0024 "TLS").

On the session's secure stack (testkit/secure.py): `env` gives clients the TLS listener, protocol SASL_SSL and the run
dir's CA; the broker there presents a certificate for 127.0.0.1 that CA signed; a client that does not trust that
CA, or that speaks SASL without TLS, does not get in; one that does, with a service's credentials, does; the brokers'
keystore is PKCS12 and private, and the CA's key is gone once it has signed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from shared.messaging.kafka import kafka_ready
from shared.ops.stack import STACK_SCRIPT
from testkit.secure import SecureStack

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.slow]


def handshake(address: str, context: ssl.SSLContext) -> tuple[dict[str, Any], str | None]:
    """A TLS handshake with the broker at ``address``: its certificate (as ``getpeercert``) and the TLS version."""
    host, port = address.rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.getpeercert() or {}, tls.version()


def run_dir(secure: SecureStack) -> Path:
    return Path(secure.cafile).parent.parent  # <run dir>/tls/ca.pem


def what_the_stack_says(secure: SecureStack) -> tuple[dict[str, str], dict[str, str], str, list[Path]]:
    """``scripts/stack env`` of its run dir, its ports, the keystore's mode and the private keys left in tls/."""
    done = subprocess.run(
        [str(STACK_SCRIPT), "--run-dir", str(run_dir(secure)), "env"], capture_output=True, text=True, check=True
    )
    printed = dict(x.removeprefix("export ").split("=", 1) for x in done.stdout.splitlines() if x.startswith("export"))
    ports = dict(line.split("=", 1) for line in (run_dir(secure) / "ports").read_text().split())
    tls = run_dir(secure) / "tls"
    return printed, ports, oct((tls / "broker.p12").stat().st_mode & 0o777), sorted(tls.glob("*.key"))


async def test_clients_of_the_secure_stack_talk_scram_over_tls_trusting_its_ca(secure_stack: SecureStack) -> None:
    secure = secure_stack
    printed, ports, keystore_mode, keys = await asyncio.to_thread(what_the_stack_says, secure)
    assert printed["PIPELINES_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert printed["PIPELINES_KAFKA_SSL_CAFILE"] == secure.cafile
    assert printed["KAFKA_BOOTSTRAP_SERVERS"] == f"127.0.0.1:{ports['KAFKA_TLS_PORT_1']}" == secure.bootstrap
    assert keystore_mode == "0o600"  # the brokers' PKCS12 keystore: its key inside, the owner's alone
    assert not keys, "the CA's and the broker's private keys are not left beside the keystore"

    # the broker's certificate: for 127.0.0.1, signed by the run dir's CA (checked, hostname included), TLS 1.2+
    cert, version = await asyncio.to_thread(
        handshake, secure.bootstrap, ssl.create_default_context(cafile=secure.cafile)
    )
    assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]
    assert "Pipelines local stack CA" in str(cert["issuer"])
    assert version in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLCertVerificationError):  # a client trusting only the system's CAs
        await asyncio.to_thread(handshake, secure.bootstrap, ssl.create_default_context())

    # a service's credentials over TLS get in; the same credentials without TLS on that listener do not
    assert await kafka_ready(secure.bootstrap, timeout_s=10, **secure.options("deals"))
    no_tls = secure.options("deals") | {"security_protocol": "SASL_PLAINTEXT"}
    no_tls.pop("ssl_context")
    producer = AIOKafkaProducer(bootstrap_servers=secure.bootstrap, request_timeout_ms=3000, **no_tls)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
