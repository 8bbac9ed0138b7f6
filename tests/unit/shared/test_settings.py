"""Settings that are checked when read: keys, database URLs per service, Kafka's SASL."""

from __future__ import annotations

import base64

import pytest

from shared.ops.settings import Settings, SettingsError


def test_master_key_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINES_PII_MASTER_KEY", raising=False)  # a shell with `scripts/stack env` evaluated has it
    with pytest.raises(SettingsError, match="not set"):
        Settings(_env_file=None).master_key()
    with pytest.raises(SettingsError, match="32 bytes"):
        Settings(pii_master_key=base64.b64encode(b"short").decode()).master_key()
    assert Settings(pii_master_key=base64.b64encode(b"k" * 32).decode()).master_key() == b"k" * 32


def test_database_url_per_service_wins() -> None:
    s = Settings(database_url="postgresql://all", deals_database_url="postgresql://deals")
    assert s.database_url_for("deals") == "postgresql://deals"
    assert s.database_url_for("leads") == "postgresql://all"
    with pytest.raises(SettingsError, match="LEADS_DATABASE_URL or DATABASE_URL"):
        Settings(database_url=None).database_url_for("leads")


def test_sasl_needs_its_credentials() -> None:
    with pytest.raises(SettingsError, match="SASL needs"):
        Settings(kafka_security_protocol="SASL_PLAINTEXT").kafka_options()
    options = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="deals",
        kafka_sasl_password="pw",
    ).kafka_options()
    assert options["sasl_plain_username"] == "deals"
