"""The read routes say what they answer (issue 31 item 5, decision 0029): each GET answering JSON has a response
model (a schema of its own, not "any object") and an example in its OpenAPI document, so the documented schema is
real and the fuzz runs (testkit.fuzz) check every answer against it.

``LEFT`` lists the routes still without: it may only shrink. A new read route without a model and an example fails.
"""

from __future__ import annotations

import pytest

from testkit.apps import apps
from testkit.bounds import undocumented_reads

APPS = apps()
LEFT: set[tuple[str, str]] = set()  # (service, route): none left; it stays empty


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_read_route_has_a_response_model_and_an_example(name: str) -> None:
    found = undocumented_reads(APPS[name].openapi())
    left = {route for service, route in LEFT if service == name}
    assert found - left == set(), "give these a response model with an example (services/<name>/api/answers.py)"
    assert left - found == set(), "documented now: remove them from LEFT"


def test_the_shared_reads_and_each_aggregate_are_documented() -> None:
    for name in ("deals", "leads", "production", "directory", "agenda"):
        doc = APPS[name].openapi()
        for path in ("/healthz", "/readyz"):
            assert f"GET {path}" not in undocumented_reads(doc)
        histories = [p for p in doc["paths"] if p.endswith("/history")]
        assert histories and not {f"GET {p}" for p in histories} & undocumented_reads(doc)
