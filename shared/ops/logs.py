"""Structured logs (structlog): one JSON object a line, from every logger of the process, never personal data.

``configure_logging`` gives structlog's lines and the standard library's (uvicorn, aiokafka, asyncpg, httpx,
warnings, an uncaught exception) the same processors: each line carries ``service``, ``process`` (api,
relay, projector, all, web), ``level``, ``timestamp``, the ``correlation_id`` when one is bound, and a traceback as
the ``exception`` field, not as lines of text. Standard-library lines add ``logger``. Bind a correlation id for a
unit of work with ``structlog.contextvars.bound_contextvars(correlation_id=...)``.

Keys that name personal data are masked whatever their value, and sealed tokens are shortened. Validation errors
(pydantic's ``input_value=…``) are logged without the input they quote, which may be anyone's data: in structlog's
lines and in the standard library's alike. ``log_json=False`` renders the same fields for a console.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, TextIO

import structlog
from structlog.typing import Processor

from shared.ops.settings import Settings
from shared.privacy.pii import is_token

PERSONAL_KEYS = frozenset(
    {"email", "phone", "full_name", "name", "address", "contact", "first_name", "last_name", "note", "password"}
)


_QUOTED_INPUT = re.compile(r"input_value=.*?(?=, input_type=|$)", re.MULTILINE)


def redact_inputs(text: str) -> str:
    return _QUOTED_INPUT.sub("input_value=***", text)


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


def _process_fields(service: str, process: str) -> Processor:
    """Every line says which service and which process kind wrote it (threads' lines too: not a contextvar)."""

    def add(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        event_dict.setdefault("process", process)
        return event_dict

    return add


def processors(service: str, process: str) -> list[Processor]:
    """What every line goes through before it is rendered, whichever logger wrote it."""
    return [
        structlog.contextvars.merge_contextvars,
        _process_fields(service, process),
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_personal_data,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,  # the traceback as the `exception` field
        _redact_quoted_inputs,
    ]


def stdlib_formatter(service: str, process: str, *, json: bool = True) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of the standard library's records: the same processors and renderer as structlog's lines."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *processors(service, process)],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _renderer(json)],
    )


def _renderer(json: bool) -> Processor:
    return structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()


class _Handler(logging.StreamHandler[TextIO]):
    """Ours, so that configuring again replaces it and leaves others' handlers (pytest's) alone."""


def configure_logging(settings: Settings, *, service: str, process: str) -> None:
    """Route structlog and the standard library's logging through the same processors, for this process."""
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    handler = _Handler()  # the standard library's lines to stderr, structlog's to stdout
    handler.setFormatter(stdlib_formatter(service, process, json=settings.log_json))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(max(level, logging.WARNING))  # group joins at INFO are noise
    logging.getLogger("uvicorn.access").disabled = True  # shared.edge.middleware.Correlation writes the access line
    logging.captureWarnings(True)
    structlog.configure(
        processors=[*processors(service, process), _renderer(settings.log_json)],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    _log_uncaught()


_crashes = logging.getLogger("pipelines.uncaught")


def _log_uncaught() -> None:
    """An exception nothing caught is a log line like any other, not a traceback printed as text."""

    def on_exception(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        _crashes.critical("process.uncaught_exception", exc_info=(kind, error, tb))

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            error = (args.exc_type, args.exc_value, args.exc_traceback)
            _crashes.error("thread.uncaught_exception", exc_info=error)

    def on_unraisable(args: Any) -> None:  # sys.UnraisableHookArgs; its `object` is not logged: it may be data
        error = (args.exc_type, args.exc_value, args.exc_traceback) if args.exc_value is not None else None
        _crashes.warning("process.unraisable_exception", exc_info=error)

    sys.excepthook = on_exception
    threading.excepthook = on_thread_exception
    sys.unraisablehook = on_unraisable
