"""Structured logs (structlog): JSON lines with the process, correlation ids, and never personal data.

Bind a correlation id for a unit of work with ``structlog.contextvars.bound_contextvars(correlation_id=...)``.
Keys that name personal data are masked whatever their value, and sealed tokens are shortened. Validation
errors (pydantic's ``input_value=…``) are logged without the input they quote, which may be anyone's data: in
structlog's lines and in the standard library's (uvicorn, aiokafka, asyncpg) alike.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

from shared.ops.settings import Settings
from shared.privacy.pii import is_token

PERSONAL_KEYS = frozenset(
    {"email", "phone", "full_name", "name", "address", "contact", "first_name", "last_name", "note", "password"}
)


_QUOTED_INPUT = re.compile(r"input_value=.*?(?=, input_type=|$)", re.MULTILINE)


def redact_inputs(text: str) -> str:
    return _QUOTED_INPUT.sub("input_value=***", text)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_inputs(super().format(record))


def _redact_quoted_inputs(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str) and "input_value=" in value:
            event_dict[key] = redact_inputs(value)
    return event_dict


def mask_personal_data(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if key in PERSONAL_KEYS:
            event_dict[key] = "***"
        elif is_token(value):
            event_dict[key] = value[:12] + "…"
    return event_dict


def configure_logging(settings: Settings, *, process: str) -> None:
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(_RedactingFormatter("%(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("aiokafka").setLevel(max(level, logging.WARNING))  # group joins at INFO are noise
    renderer: Any = structlog.processors.JSONRenderer() if settings.log_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_personal_data,
            structlog.processors.format_exc_info,
            _redact_quoted_inputs,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(process=process)
