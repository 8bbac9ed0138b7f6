"""Which servers the fixtures use: environment, then testcontainers when Docker answers, then the local stack."""

from __future__ import annotations

import pytest

from shared.ops.stack import LocalStack, StackError, choose_source

BOTH = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "DATABASE_URL": "postgresql://u:p@127.0.0.1/db"}


def never_called() -> bool:
    raise AssertionError("docker must not be probed when the environment gives the endpoints")


def test_environment_wins_without_probing_docker() -> None:
    assert choose_source(BOTH, never_called) == "env"


def test_docker_when_it_answers() -> None:
    assert choose_source({}, lambda: True) == "testcontainers"


def test_local_stack_without_docker() -> None:
    assert choose_source({}, lambda: False) == "local"


def test_half_given_environment_is_an_error() -> None:
    with pytest.raises(StackError, match="DATABASE_URL not set"):
        choose_source({"KAFKA_BOOTSTRAP_SERVERS": "x:1"}, lambda: True)


def test_forced_local_even_with_docker_and_env() -> None:
    assert choose_source({**BOTH, "PIPELINES_INFRA": "local"}, lambda: True) == "local"


def test_forced_testcontainers_without_docker_is_an_error() -> None:
    with pytest.raises(StackError, match="no Docker engine"):
        choose_source({"PIPELINES_INFRA": "testcontainers"}, lambda: False)


def test_unknown_forced_source_is_an_error() -> None:
    with pytest.raises(StackError, match="expected env, testcontainers or local"):
        choose_source({"PIPELINES_INFRA": "cloud"}, lambda: False)


def test_stack_env_output_is_parsed() -> None:
    out = (
        "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1,127.0.0.1:2,127.0.0.1:3\n"
        "export DATABASE_URL=postgresql://pipelines:pw@127.0.0.1:5/pipelines\n"
        "export PIPELINES_KAFKA_REPLICATION_FACTOR=3\n"
    )
    e = LocalStack._parse_env(out)
    assert e.kafka_bootstrap_servers == "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"
    assert e.database_url.endswith("/pipelines")
    assert e.replication_factor == 3
    assert e.source == "local"
