"""Tracing (decision 0027): off by default, switched on by the standard OTEL_* variables; on, the W3C trace context
goes from the HTTP command into the events' metadata, the relay's CloudEvent and a reaction's command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.ops import tracing
from shared.store.commands import Context

HERE = Path(__file__).parent


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": ""}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_TRACES_EXPORTER": "console,otlp", "OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),  # an endpoint alone does not switch it on
    ],
)
def test_tracing_is_off_unless_an_exporter_is_named(env: dict[str, str], on: bool) -> None:
    assert tracing.wanted(env) is on


def test_off_no_event_carries_a_trace_context() -> None:
    assert not tracing.ENABLED
    assert set(Context(actor="u-lan").metadata()) == {"actor", "correlation_id"}


def test_off_a_read_models_batch_gets_no_span_and_no_context() -> None:
    envelope = SimpleNamespace(traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate=None)
    assert not tracing.ENABLED
    with tracing.applying([SimpleNamespace(envelope=envelope)], "deals.board"):
        assert set(Context(actor="u-lan").metadata()) == {"actor", "correlation_id"}


def run(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PIPELINES_TRACING"))}
    return subprocess.run(
        [sys.executable, "-c", script], env=clean | env, capture_output=True, text=True, timeout=120, check=False
    )


def test_off_the_sdk_is_never_imported() -> None:
    script = (
        "import sys; from services.leads import main; from shared.ops import tracing;"
        "assert not tracing.setup('leads', 'api');"
        "assert not [m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'opentelemetry.instrumentation'))]"
    )
    off = run(script)
    assert off.returncode == 0, off.stderr
    compiled_out = run(
        script + ";assert tracing.COMPILED_OUT", PIPELINES_TRACING_COMPILED_OUT="1", OTEL_TRACES_EXPORTER="otlp"
    )
    assert compiled_out.returncode == 0, compiled_out.stderr


def test_on_the_trace_goes_from_the_request_through_the_relay_to_a_reaction() -> None:
    """tests/unit/shared/tracing_on.py, in its own interpreter: the tracer provider is global to a process."""
    done = run((HERE / "tracing_on.py").read_text(), OTEL_TRACES_EXPORTER="console")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    spans = ["POST /leads", "create pipelines.leads.events", "process LeadCaptured", "process deals.board"]
    assert f'"spans": {json.dumps(spans)}' in done.stdout
