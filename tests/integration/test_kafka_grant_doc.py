"""docs/SUBSCRIBING.md, "Access on a secured cluster", as written, on the secure stack (SASL/SCRAM over TLS and
ACLs, testkit/secure.py): an operator makes another team's Kafka user with the documented command (its admin
properties over TLS, trusting the stack's CA), the doc's own consumer (its first ``python`` block, with the
documented settings: SASL_SSL, the CA file, SCRAM) is refused before the grant, and after it reads the deals' events
with a consumer group under the team's prefix; the team still cannot write, nor use a group outside its prefix;
revoke-read takes the access away again. And what the doc says of kcat there: Debian 12's (librdkafka 2.0.2) is
refused by Kafka 4 brokers over TLS too, valid credentials or not."""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from shared.messaging.kafka import admin_client
from shared.ops.stack import ROOT
from testkit import subscriber
from testkit.secure import SecureStack

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.slow]

TOPIC = "pipelines.deals.events"
EVENT = (
    b'{"specversion":"1.0","id":"6f1c1a2e-0b59-4c47-9a53-0c7f3a1e2d11","source":"/pipelines/deals",'
    b'"type":"pipelines.deals.DealWon","subject":"deal-1","time":"2026-12-01T08:00:00Z",'
    b'"datacontenttype":"application/json","dataschema":"http://127.0.0.1:8102/schemas/events/deals/DealWon.v1.json",'
    b'"data":{},"streamid":"deal-1","streamversion":1,"position":1,"schemaversion":1,'
    b'"recordedtime":"2026-12-01T08:00:00Z","correlationid":"c","causationid":"c"}'
)


def doc_lines(marker: str) -> str:
    (block,) = [b for b in re.findall(r"```bash\n(.*?)```", (ROOT / "docs" / "SUBSCRIBING.md").read_text(), re.S)
                if marker in b]  # fmt: skip
    return block


def run(script: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode()[-3000:]
    return done.stdout.decode()


def kcat_refusal(secure: SecureStack, user: str, password: str) -> str:
    """What Debian's kcat says when it reads the topic with ``user``'s SCRAM credentials over TLS (stderr)."""
    options = ["security.protocol=SASL_SSL", f"ssl.ca.location={secure.cafile}", "sasl.mechanisms=SCRAM-SHA-512"]
    options.append(f"sasl.username={user}")
    argv = ["kcat", "-C", "-b", secure.bootstrap, "-t", TOPIC, "-o", "beginning", "-e", "-m", "3"]
    for option in [*options, f"sasl.password={password}"]:
        argv += ["-X", option]
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert done.returncode != 0
    return done.stderr.decode()


def refused(script: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode == 2, (done.stdout + done.stderr).decode()[-3000:]
    return done.stderr.decode()


async def doc_consumer(python: Path, cwd: Path, env: dict[str, str], team: str) -> subprocess.CompletedProcess[bytes]:
    """The doc's consumer (``consumer.py``) run by the doc's line for ``team``, reading one message at most."""
    (line,) = [x for x in doc_lines("python3 consumer.py").splitlines() if "python3 consumer.py" in x]
    line = line.replace("=crm", f"={team}").replace("python3 ", f"{python} ")
    return await asyncio.to_thread(
        subprocess.run, ["bash", "-euo", "pipefail", "-c", line], cwd=cwd, env=env | {"MAX_MESSAGES": "1"},
        capture_output=True, timeout=90, check=False,
    )  # fmt: skip


async def consume(secure: SecureStack, user: str, password: str, group: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=secure.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **secure.options(user, password),
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        async with asyncio.timeout(20):
            while not got:
                batches = await consumer.getmany(timeout_ms=1000)
                got += [r.value or b"" for records in batches.values() for r in records]
        await consumer.commit()
        return got
    finally:
        await consumer.stop()


async def write(secure: SecureStack, user: str, password: str | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=secure.bootstrap, acks="all", **secure.options(user, password))
    await producer.start()
    try:  # as the relay writes it (structured mode: the SDK reads its content-type)
        await producer.send_and_wait(TOPIC, EVENT, key=b"deal-1", headers=[("content-type", CONTENT_TYPE)])
    finally:
        await producer.stop()


CONTENT_TYPE = b"application/cloudevents+json; charset=utf-8"
REFUSED = (TopicAuthorizationFailedError, GroupAuthorizationFailedError, ClusterAuthorizationFailedError)


async def test_an_operator_grants_another_teams_group_read_access_as_documented(
    secure_stack: SecureStack, tmp_path: Path
) -> None:
    with secure_stack.exclusive():  # another worker's test on the shared stack waits (reset deletes every topic)
        await granted_as_documented(secure_stack, tmp_path)


async def granted_as_documented(secure: SecureStack, tmp_path: Path) -> None:
    await secure.reset()
    async with admin_client(secure.bootstrap, **secure.options("admin")) as admin:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    await write(secure, "deals")  # the deals service's own user publishes its events
    team, password = f"crm{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(18)  # a new team on the shared stack
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")  # the doc's lines run from a checkout, admin.properties here
    (tmp_path / "consumer.py").write_text(subscriber.consumer_code())
    python = await asyncio.to_thread(subscriber.cached_python)  # the doc's install line, in the ignored cache
    env = subscriber.consumer_env() | {
        "KAFKA_BOOTSTRAP_SERVERS": secure.bootstrap,  # the stack's TLS listener
        "PIPELINES_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "PIPELINES_KAFKA_SSL_CAFILE": secure.cafile,
        "PIPELINES_KAFKA_SASL_USERNAME": "admin",
        "PIPELINES_KAFKA_SASL_PASSWORD": secure.passwords["admin"],
        "TEAM_PASSWORD": password,
    }
    run(doc_lines("cat > admin.properties"), tmp_path, env)
    assert oct((tmp_path / "admin.properties").stat().st_mode & 0o777) == "0o600"
    run(doc_lines("add-user crm").replace("add-user crm", f"add-user {team}"), tmp_path, env)
    refused_before = await doc_consumer(python, tmp_path, env, team)  # its user exists, but nothing is granted yet
    assert refused_before.returncode != 0
    assert re.search(r"(Group|Topic)AuthorizationFailedError", refused_before.stderr.decode()), refused_before.stderr

    grant = doc_lines("grant-read crm")
    run(grant.replace("grant-read crm crm.", f"grant-read {team} {team}."), tmp_path, env)
    reads = await doc_consumer(python, tmp_path, env, team)  # the doc's consumer, over TLS, as the team
    assert reads.returncode == 0, reads.stderr.decode()[-3000:]
    assert reads.stdout.decode().split() == ["pipelines.deals.DealWon", "deal-1", "1", "1", "0"]
    # what the doc says of kcat on a secured cluster: Debian 12's (librdkafka 2.0.2) is refused by Kafka 4 brokers
    tried = await asyncio.to_thread(kcat_refusal, secure, team, password)
    assert "invalid credentials" in tried, "Debian's kcat authenticates now: update docs/SUBSCRIBING.md"
    with pytest.raises(REFUSED):  # a group outside its prefix
        await consume(secure, team, password, f"pipelines.{team}")
    with pytest.raises(REFUSED):  # it reads, it does not write
        await write(secure, team, password)
    with pytest.raises(KafkaError):  # a wrong password does not get in
        await consume(secure, team, "not-" + password, f"{team}.deals")

    for bad in (f"grant-read {team} pipelines. {TOPIC}", f"grant-read '{team};id' {team}. {TOPIC}"):
        # the services' own group prefix, a name that is no Kafka name: refused before anything is asked of Kafka
        assert "kafka-access:" in refused(grant.split(" grant-read ")[0] + " " + bad, tmp_path, env)
    revoke = grant.replace("grant-read crm crm.", f"revoke-read {team} {team}.")
    run(revoke, tmp_path, env)
    with pytest.raises(REFUSED):
        await consume(secure, team, password, f"{team}.other")
