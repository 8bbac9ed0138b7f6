"""Secrets as files (shared.ops.secret_files): ``<VAR>_FILE`` names a file whose content is the setting, one trailing
line end removed; both ``<VAR>`` and ``<VAR>_FILE`` set, or a file that cannot be read, stop the process with a
message naming the variable; plain configuration is never read from a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.ops.secret_files import SecretFileError
from shared.ops.settings import Settings


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in ("DATABASE_URL", "DEALS_DATABASE_URL", "PIPELINES_PII_MASTER_KEY", "PIPELINES_JWT_SIGNING_KEYS"):
        monkeypatch.delenv(name, raising=False)


def secret(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_bytes(content.encode())
    return str(path)


def test_a_secret_is_read_from_its_file_without_the_trailing_line_end(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = "postgresql://deals:s3cret@postgres:5432/pipelines"
    key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    seeds = {"k1": "seed"}
    monkeypatch.setenv("DEALS_DATABASE_URL_FILE", secret(tmp_path, "db", url + "\n"))  # a name of its own
    monkeypatch.setenv("PIPELINES_PII_MASTER_KEY_FILE", secret(tmp_path, "pii", key + "\r\n"))  # the prefixed name
    monkeypatch.setenv("PIPELINES_JWT_SIGNING_KEYS_FILE", secret(tmp_path, "jwt", json.dumps(seeds)))  # none
    settings = Settings()
    assert settings.deals_database_url == url
    assert settings.database_url_for("deals") == url
    assert settings.pii_master_key is not None and settings.pii_master_key.get_secret_value() == key
    assert len(settings.master_key()) == 32
    assert {k: v.get_secret_value() for k, v in settings.jwt_signing_keys.items()} == seeds


def test_only_one_line_end_is_removed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIPELINES_SMTP_PASSWORD_FILE", secret(tmp_path, "smtp", " pass word \n\n"))
    password = Settings().smtp_password
    assert password is not None and password.get_secret_value() == " pass word \n"


def test_the_plain_variable_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEALS_DATABASE_URL", "postgresql://deals:pw@db/p")
    assert Settings().deals_database_url == "postgresql://deals:pw@db/p"


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_both_set_stops_the_process_naming_both(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str) -> None:
    if where == ".env":
        (tmp_path / ".env").write_text("PIPELINES_PII_MASTER_KEY=abc\n")
    else:
        monkeypatch.setenv("PIPELINES_PII_MASTER_KEY", "abc")
    monkeypatch.setenv("PIPELINES_PII_MASTER_KEY_FILE", secret(tmp_path, "pii", "abc"))
    with pytest.raises(SecretFileError, match="both PIPELINES_PII_MASTER_KEY and PIPELINES_PII_MASTER_KEY_FILE"):
        Settings()


@pytest.mark.parametrize("kind", ["missing", "a directory", "not text"])
def test_a_file_that_cannot_be_read_stops_the_process_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "secret"
    if kind == "a directory":
        path.mkdir()
    elif kind == "not text":
        path.write_bytes(b"\xff\xfe\x00")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("PIPELINES_KAFKA_SASL_PASSWORD_FILE", str(path))
    with pytest.raises(SecretFileError, match=f"PIPELINES_KAFKA_SASL_PASSWORD_FILE={path}: cannot read the file"):
        Settings()


def test_plain_configuration_is_not_read_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIPELINES_LOG_LEVEL_FILE", secret(tmp_path, "level", "DEBUG"))
    assert Settings().log_level == "INFO"
