"""Secrets as files: a setting that holds a secret may be given as ``<VAR>_FILE``, the path of a file whose content is
its value (a Kubernetes Secret mounted as files, a Docker secret under /run/secrets), instead of ``<VAR>`` itself.

- ``<VAR>`` is each name the setting is read from: ``PIPELINES_PII_MASTER_KEY_FILE``, ``DEALS_DATABASE_URL_FILE``,
  ``DATABASE_URL_FILE``, ``KAFKA_…`` as the setting's own names go.
- The file's content is the value, one trailing line end (``\\n`` or ``\\r\\n``) removed: ``echo … > file`` and an
  editor's last newline are no part of a key or a password.
- Both ``<VAR>`` and ``<VAR>_FILE`` set (in the environment or the ``.env`` file): the process refuses to start,
  naming both, rather than pick one silently. A file that cannot be read: it refuses to start naming the variable,
  the path and why.
- Only the settings in ``file_settings`` (every ``SecretStr``, the database URLs, which carry a password, the JWT
  signing keys, and what shares a Secret with those: the usernames, the active key id, the OpenID client's
  settings); any other setting is plain configuration.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

SUFFIX = "_FILE"
# beside SecretStr and the database URLs: what shares a Secret with them (the manifests mount Secrets as files)
ALSO = frozenset(
    {
        "jwt_signing_keys",
        "jwt_active_kid",
        "kafka_sasl_username",
        "smtp_username",
        "oidc_client_id",
        "oidc_redirect_url",
        "oidc_match",
    }
)


class SecretFileError(ValueError):
    """A ``<VAR>_FILE`` the process cannot use; the message names the variable."""


def variables(name: str, field: FieldInfo, prefix: str) -> list[str]:
    """The environment variables a setting is read from, upper case."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(c).upper() for c in alias.choices if isinstance(c, str)]
    if isinstance(alias, str):
        return [alias.upper()]
    return [f"{prefix}{name}".upper()]


def file_settings(settings_cls: type[BaseSettings]) -> dict[str, FieldInfo]:
    """The settings that may be given as a file: those holding a secret."""
    return {
        name: field
        for name, field in settings_cls.model_fields.items()
        if name in ALSO
        or name.endswith("database_url")
        or "SecretStr" in str(field.annotation)
        or field.annotation is SecretStr
    }


def read_secret(variable: str, path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretFileError(f"{variable}={path}: cannot read the file ({exc})") from None
    return text.removesuffix("\n").removesuffix("\r")


class SecretFilesSource(PydanticBaseSettingsSource):
    """The values of ``<VAR>_FILE`` files, keyed as the environment source keys them."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        config = self.settings_cls.model_config
        prefix = str(config.get("env_prefix") or "")
        environ = {k.upper(): v for k, v in dotenv_file(config.get("env_file")).items() if v is not None}
        environ |= {k.upper(): v for k, v in os.environ.items()}
        values: dict[str, Any] = {}
        for name, field in file_settings(self.settings_cls).items():
            for variable in variables(name, field, prefix):
                path = environ.get(variable + SUFFIX)
                if path is None:
                    continue
                if variable in environ:
                    raise SecretFileError(f"both {variable} and {variable}{SUFFIX} are set: give one")
                key = variable if field.validation_alias else name
                values[key] = read_secret(variable + SUFFIX, path)
        return values


def dotenv_file(env_file: Any) -> dict[str, str | None]:
    if isinstance(env_file, str | Path) and Path(env_file).is_file():
        return dict(dotenv_values(env_file))
    return {}
