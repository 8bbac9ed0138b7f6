"""KEDA's Prometheus triggers (deploy/k8s/keda.yaml, decisions 0025 and 0032) evaluated by Prometheus itself
(`promtool test rules`, Debian's 2.42) on series shaped like the processes' own: a projector scales on the largest
lag of one read model's consumer group on one topic, whatever generation consumes it (the live one, a rebuild's, the
one swapped in after it), a partition seen by two pods counted once, another service's lag never; an api on the
requests it is offered: those answered and those refused busy, probes and scrapes not, and with nothing refused yet
(no `pipelines_http_shed_total` series) the answered alone."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from shared.ops.settings import SERVICES
from shared.ops.stack import ROOT
from testkit.prometheus import PROMTOOL

KEDA = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "keda.yaml").read_text()))
SCALED = {d["metadata"]["name"]: d for d in KEDA if d["kind"] == "ScaledObject"}


def query(name: str, trigger: str) -> str:
    (found,) = [t for t in SCALED[name]["spec"]["triggers"] if t["name"] == trigger]
    assert found["type"] == "prometheus"
    return str(found["metadata"]["query"])


def lag(service: str, projection: str, state: str, topic: str, partition: int, pod: str, value: int) -> dict[str, str]:
    labels = f'service="{service}",projection="{projection}",state="{state}",topic="{topic}",partition="{partition}"'
    return {"series": f'pipelines_consumer_lag{{{labels},instance="{pod}"}}', "values": f"{value}x5"}


def projector_case(service: str, rebuilding: bool) -> dict[str, Any]:
    schema = f"pipelines_{service}"  # projectors label their service by its schema
    series = [
        lag(schema, "board", "active", "pipelines.deals.events", 0, "a", 300),
        lag(schema, "board", "active", "pipelines.deals.events", 1, "a", 400),  # the group on this topic: 700
        lag(schema, "board", "active", "pipelines.leads.events", 0, "a", 650),
        lag(schema, "reactions", "active", "pipelines.deals.events", 3, "a", 500),
        lag(schema, "reactions", "active", "pipelines.deals.events", 3, "b", 500),  # one partition, two pods: 500
        lag("pipelines_other", "board", "active", "pipelines.deals.events", 0, "c", 99_999),  # not this service
    ]
    if rebuilding:  # generation N+1 of "board" catching up with the history: its group's lag counts as well
        series += [lag(schema, "board", "building", "pipelines.deals.events", p, "a", 1_500) for p in range(3)]
    expected = 4_500 if rebuilding else 700
    return {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": query(f"{service}-projector", "lag"),
                "eval_time": "2m",
                "exp_samples": [{"labels": "{}", "value": expected}],
            }
        ],
    }


def api_case(service: str, shedding: bool) -> dict[str, Any]:
    def requests(route: str, per_minute: int) -> dict[str, str]:
        labels = f'service="{service}",method="POST",route="{route}",status="201"'
        return {"series": f"pipelines_http_request_seconds_count{{{labels}}}", "values": f"0+{per_minute}x10"}

    series = [
        requests("/things", 120),  # 2/s answered
        requests("/healthz", 6_000),  # probes and scrapes are no load to scale on
        requests("/metrics", 6_000),
        {"series": 'pipelines_http_request_seconds_count{service="other",route="/x"}', "values": "0+6000x10"},
    ]
    if shedding:
        series.append({"series": f'pipelines_http_shed_total{{service="{service}"}}', "values": "0+180x10"})  # 3/s
    return {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": query(f"{service}-api", "requests"),
                "eval_time": "5m",
                "exp_samples": [{"labels": "{}", "value": 5 if shedding else 2}],
            }
        ],
    }


def test_keda_queries_scale_on_every_generations_lag_and_on_the_offered_requests(tmp_path: Path) -> None:
    tests = [projector_case(s, r) for s in SERVICES for r in (False, True)]
    tests += [api_case(s, shed) for s in SERVICES for shed in (False, True)]
    (tmp_path / "keda.test.yaml").write_text(yaml.safe_dump({"rule_files": [], "tests": tests}, sort_keys=False))
    unit = subprocess.run(
        [PROMTOOL, "test", "rules", "keda.test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_no_trigger_names_a_consumer_group_or_a_generation() -> None:
    """A rebuild swaps in generation N (its consumer group `….g<N>`): nothing here may need renaming then."""
    assert not [d for d in KEDA if d["kind"] == "TriggerAuthentication"], "KEDA reads Prometheus, not Kafka"
    for name, so in SCALED.items():
        for trigger in so["spec"]["triggers"]:
            assert trigger["type"] in ("cpu", "prometheus"), name
            text = yaml.safe_dump(trigger)
            assert "consumerGroup" not in text and not re.search(r"\.g\d+\b", text), name


def test_the_queries_read_only_metrics_and_labels_the_processes_export() -> None:
    from tests.deploy.test_monitoring import exported, selectors

    known = exported()
    for so in SCALED.values():
        for trigger in [t for t in so["spec"]["triggers"] if t["type"] == "prometheus"]:
            for name, labels in selectors(trigger["metadata"]["query"]):
                assert name in known and labels <= known[name], (name, labels)
