"""Every line a process logs is one JSON object with its service and process kind, whichever logger wrote it.

structlog's lines, the standard library's (uvicorn's, aiokafka's), a logged exception and an uncaught one: each is
one line that parses as JSON, carries ``service``, ``process`` and ``level``, the bound correlation id, and a
traceback as the ``exception`` field rather than as lines of text.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from shared.ops.logs import configure_logging
from shared.ops.settings import Settings

NAMES = ("aiokafka", "uvicorn.access")


@pytest.fixture
def restored() -> Iterator[None]:
    """Everything configure_logging changes, put back afterwards."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: (logging.getLogger(n).level, logging.getLogger(n).disabled) for n in NAMES}
    hooks = (sys.excepthook, threading.excepthook, sys.unraisablehook)
    try:
        yield
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)
        for n, (lvl, disabled) in levels.items():
            logging.getLogger(n).setLevel(lvl)
            logging.getLogger(n).disabled = disabled
        logging.captureWarnings(False)
        sys.excepthook, threading.excepthook, sys.unraisablehook = hooks


def leads_api(*, json: bool = True) -> None:
    """Logging as a leads API process configures it (in the test itself: capsys's streams are per phase)."""
    configure_logging(Settings(_env_file=None, log_level="DEBUG", log_json=json), service="leads", process="api")


def lines(captured: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """structlog's lines (stdout), then the standard library's (stderr): each must be one JSON object."""
    out = captured.readouterr()
    return [json.loads(line) for text in (out.out, out.err) for line in text.splitlines()]


def boom() -> None:
    raise ValueError("a bug, input_value='0912 345 678'")


def test_every_logger_writes_json_lines_with_service_and_process(
    restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    leads_api()
    log = structlog.get_logger("services.leads")
    with structlog.contextvars.bound_contextvars(correlation_id="c-1"):
        log.info("lead.created", lead_id="l-1", email="an@example.vn")
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
        logging.getLogger("aiokafka").warning("Heartbeat failed for group %s", "deals")
        logging.getLogger("aiokafka").info("Joined group: noise")  # below aiokafka's floor
        logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /leads HTTP/1.1" 200')  # ours replaces it
    found = lines(capsys)
    assert [line["event"] for line in found] == [
        "lead.created",
        "Started server process [42]",
        "Heartbeat failed for group deals",
    ]
    assert all(line["service"] == "leads" and line["process"] == "api" for line in found)
    assert all(line["correlation_id"] == "c-1" and "timestamp" in line for line in found)
    assert [line["level"] for line in found] == ["info", "info", "warning"]
    assert [line.get("logger") for line in found] == [None, "uvicorn.error", "aiokafka"]
    assert found[0]["email"] == "***"


def test_a_traceback_is_a_field_of_one_line(restored: None, capsys: pytest.CaptureFixture[str]) -> None:
    leads_api()
    try:
        boom()
    except ValueError:
        structlog.get_logger().exception("projection.failed")
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    found = lines(capsys)
    assert [line["event"] for line in found] == ["projection.failed", "Exception in ASGI application"]
    for line in found:
        assert line["level"] == "error" and line["service"] == "leads" and line["process"] == "api"
        assert line["exception"].startswith("Traceback (most recent call last):")
        assert "in boom" in line["exception"] and "ValueError: a bug" in line["exception"]
        assert "0912" not in line["exception"]  # a quoted input is redacted from tracebacks too


def test_uncaught_exceptions_and_warnings_are_json_lines(restored: None, capsys: pytest.CaptureFixture[str]) -> None:
    leads_api()
    try:
        boom()
    except ValueError as error:
        sys.excepthook(type(error), error, error.__traceback__)
    worker = threading.Thread(target=boom)
    worker.start()
    worker.join()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
    found = lines(capsys)
    assert [line["event"] for line in found[:2]] == ["process.uncaught_exception", "thread.uncaught_exception"]
    assert all("ValueError: a bug" in line["exception"] for line in found[:2])
    assert found[2]["logger"] == "py.warnings" and "deprecated thing" in found[2]["event"]
    assert all(line["service"] == "leads" for line in found)


def test_the_console_mode_is_for_people(restored: None, capsys: pytest.CaptureFixture[str]) -> None:
    leads_api(json=False)
    structlog.get_logger().info("relay.started")
    logging.getLogger("uvicorn.error").warning("Shutting down")
    out = capsys.readouterr()
    assert "relay.started" in out.out and "Shutting down" in out.err
    assert not out.out.lstrip().startswith("{") and not out.err.lstrip().startswith("{")
