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
LEFT = {
    ("deals", "GET /analytics/lost-reasons"),
    ("deals", "GET /analytics/next-steps"),
    ("deals", "GET /analytics/scorecard"),
    ("deals", "GET /analytics/stages"),
    ("deals", "GET /analytics/success-factors"),
    ("deals", "GET /analytics/target-plan"),
    ("deals", "GET /analytics/win-rate"),
    ("deals", "GET /board"),
    ("deals", "GET /deals"),
    ("deals", "GET /deals/{deal_id}/diff"),
    ("deals", "GET /deals/{deal_id}/state"),
    ("deals", "GET /follow-ups"),
    ("deals", "GET /forecast"),
    ("deals", "GET /forecast/changes"),
    ("leads", "GET /campaigns"),
    ("leads", "GET /funnel"),
    ("leads", "GET /nurture"),
    ("leads", "GET /segments"),
    ("production", "GET /analytics/cycle-times"),
    ("production", "GET /analytics/delivery"),
    ("production", "GET /analytics/quality"),
    ("production", "GET /board"),
    ("production", "GET /demand"),
    ("production", "GET /orders"),
    ("directory", "GET /analytics/customers/repeat-revenue"),
    ("directory", "GET /analytics/customers/segments"),
    ("directory", "GET /customers/duplicates"),
    ("directory", "GET /imports/{import_id}"),
    ("directory", "GET /organisations"),
    ("directory", "GET /organisations/{organisation_id}/360"),
    ("directory", "GET /people"),
    ("directory", "GET /rates"),
    ("directory", "GET /teams"),
    ("agenda", "GET /agenda"),
    ("webhooks", "GET /subscriptions"),
    ("webhooks", "GET /subscriptions/{subscription_id}"),
    ("webhooks", "GET /subscriptions/{subscription_id}/deliveries"),
    ("webhooks", "GET /subscriptions/{subscription_id}/deliveries/{delivery_id}"),
}


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
