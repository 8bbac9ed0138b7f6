"""Monitoring and autoscaling as code (decision 0025), offline: the rules pass `promtool check rules` and their unit
tests (`promtool test rules`), name only metrics and labels the processes export and link each alert to its section
of docs/OPERATIONS.md; the dashboard's queries read only those; the cluster's manifests (ServiceMonitor, PodMonitor,
PrometheusRule in deploy/k8s/monitoring.yaml, KEDA's ScaledObjects in deploy/k8s/keda.yaml)
validate against their operators' published CRDs (deploy/crds) and say what pipelines.yaml and the code say."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from prometheus_client import REGISTRY

import shared.ops.metrics  # noqa: F401  (registers every metric)
from shared.ops.settings import SERVICES, Settings
from shared.ops.stack import ROOT
from testkit.prometheus import DASHBOARD, PROMTOOL, RULES, quick_rules

MONITORING = ROOT / "deploy" / "monitoring"
K8S = ROOT / "deploy" / "k8s"
CRDS = ROOT / "deploy" / "crds"
SHIPPED = yaml.safe_load(RULES.read_text())
ALERTS = [r for g in SHIPPED["groups"] for r in g["rules"] if "alert" in r]
RECORDED = {r["record"] for g in SHIPPED["groups"] for r in g["rules"] if "record" in r}
MANIFESTS = list(yaml.safe_load_all((K8S / "pipelines.yaml").read_text()))
KEDA = list(yaml.safe_load_all((K8S / "keda.yaml").read_text()))
MONITORS = list(yaml.safe_load_all((K8S / "monitoring.yaml").read_text()))
SELECTOR = re.compile(r"\b(pipelines_[a-z_]+|up)\b(\{[^}]*\})?")


def exported() -> dict[str, set[str]]:
    """Every sample name the processes export (counters' _total, histograms' _bucket/_count/_sum), its labels."""
    names: dict[str, set[str]] = {"up": {"job", "instance"}}
    for collector, _ in list(REGISTRY._collector_to_names.items()):
        for family in collector.describe() if hasattr(collector, "describe") else []:
            if not family.name.startswith("pipelines_"):
                continue
            labels = set(getattr(collector, "_labelnames", ()))
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
            for suffix in suffixes:
                names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """The metrics an expression reads and the labels its matchers name."""
    found = []
    for name, matchers in SELECTOR.findall(expr):
        labels = set(re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", matchers)) if matchers else set()
        found.append((name, labels))
    return found


def dashboard_queries() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]


def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    assert Path(PROMTOOL).exists(), "promtool: `scripts/stack setup` installs Debian's prometheus"
    check = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(
        [PROMTOOL, "test", "rules", "rules.test.yaml"], cwd=MONITORING, capture_output=True, text=True, timeout=120
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load((MONITORING / "rules.test.yaml").read_text())["tests"]
    cases = [c for t in tests for c in t.get("alert_rule_test", [])]
    fired = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    names = {a["alert"] for a in ALERTS}
    assert names == fired, names ^ fired
    assert len(quiet) >= len(names) // 2, "most alerts are also shown quiet on series that must not fire them"


def test_rules_and_dashboard_read_only_metrics_and_labels_the_processes_export() -> None:
    known = exported()
    exprs = [r["expr"] for g in SHIPPED["groups"] for r in g["rules"]] + dashboard_queries()
    for expr in exprs:
        for name, labels in selectors(expr):
            assert name in known, f"{name} is no metric of shared/ops/metrics.py ({expr})"
            assert labels <= known[name], f"{name} has no label {labels - known[name]}"
        for recorded in re.findall(r"pipelines:[a-z_0-9:]+", expr):
            assert recorded in RECORDED, recorded


def test_the_service_label_is_made_one_for_every_service() -> None:
    """Stores and projectors label a service by its schema, relays and APIs by its name: the rules' regex names
    every service there is."""
    for expr in [r["expr"] for g in SHIPPED["groups"] for r in g["rules"] if "label_replace" in r["expr"]]:
        (names,) = set(re.findall(r'"\.\*\(([a-z|]+)\)"', expr))
        assert set(names.split("|")) == set(SERVICES)


def test_each_alert_waits_has_a_severity_words_and_a_runbook_section() -> None:
    headings = re.findall(r"^## (.+)$", (ROOT / "docs" / "OPERATIONS.md").read_text(), re.M)
    anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
    for alert in ALERTS:
        assert "for" in alert and alert["labels"]["severity"] in ("warning", "critical"), alert["alert"]
        notes = alert["annotations"]
        assert notes["summary"] and notes["description"], alert["alert"]
        path, _, anchor = notes["runbook_url"].partition("#")
        assert path == "docs/OPERATIONS.md" and anchor in anchors, notes["runbook_url"]


def test_the_dashboard_covers_what_an_operator_watches() -> None:
    titles = " ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for topic in (
        "throughput",
        "latency",
        "lag in events",
        "lag in seconds",
        "relay backlog",
        "dead letters",
        "errors",
    ):
        assert topic in titles, topic


def test_the_tests_override_keeps_every_rule_and_shortens_only_waits() -> None:
    quick = quick_rules(RULES, interval="1s", hold="3s", window="10s")
    assert [[r.get("alert") or r["record"] for r in g["rules"]] for g in quick["groups"]] == [
        [r.get("alert") or r["record"] for r in g["rules"]] for g in SHIPPED["groups"]
    ]
    for shipped, fast in zip(
        [r for g in SHIPPED["groups"] for r in g["rules"]],
        [r for g in quick["groups"] for r in g["rules"]],
        strict=True,
    ):
        same = re.sub(r"\[\d+[smh]\]|offset \d+[smh]", "W", shipped["expr"])
        assert same == re.sub(r"\[\d+[smh]\]|offset \d+[smh]", "W", fast["expr"])


def _literal(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


def test_the_prometheus_rule_carries_the_shipped_groups() -> None:
    (rule,) = [d for d in MONITORS if d["kind"] == "PrometheusRule"]
    if os.environ.get("PIPELINES_WRITE_MONITORING"):
        path = K8S / "monitoring.yaml"
        head, _, _ = path.read_text().rpartition("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n")
        rule["spec"]["groups"] = SHIPPED["groups"]

        class LiteralDumper(yaml.SafeDumper):  # multi-line strings as | blocks, in this dump only
            pass

        LiteralDumper.add_representer(str, _literal)
        path.write_text(head + yaml.dump(rule, Dumper=LiteralDumper, sort_keys=False, width=120, allow_unicode=True))
    assert rule["spec"]["groups"] == SHIPPED["groups"], "PIPELINES_WRITE_MONITORING=1 rewrites it"


def strict(schema: Any) -> Any:
    """A CRD's schema refusing fields it does not name (the API server would drop them without a word)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        open_ended = "additionalProperties" in out or out.get("x-kubernetes-preserve-unknown-fields")
        if "properties" in out and not open_ended:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schemas[f"{group}/{version['name']}", kind] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


CUSTOM = [*MONITORS, *KEDA]


@pytest.mark.parametrize("doc", CUSTOM, ids=[f"{d['kind']}-{d['metadata']['name']}" for d in CUSTOM])
def test_each_custom_resource_validates_against_its_operators_crd(doc: dict[str, Any]) -> None:
    schema = crd_schemas()[doc["apiVersion"], doc["kind"]]
    # the schemas' patterns are Go's (RE2): the validator checks the fields given, not the schema's own syntax
    jsonschema.Draft7Validator(schema).validate({k: v for k, v in doc.items() if k != "metadata"})
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])


def test_the_crds_say_where_they_come_from() -> None:
    readme = (CRDS / "README.md").read_text()
    for path in CRDS.glob("*.yaml"):
        assert path.name in readme
    assert "v0.93.0" in readme and "v2.20.2" in readme


def deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in MANIFESTS if d["kind"] == "Deployment"}


def test_apis_and_projectors_scale_by_keda_alone_with_no_replica_count() -> None:
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in KEDA if d["kind"] == "ScaledObject"}
    assert set(scaled) == {f"{s}-{k}" for s in SERVICES for k in ("api", "projector")}
    assert not [d for d in MANIFESTS if d["kind"] == "HorizontalPodAutoscaler"], "KEDA makes each HPA itself"
    for name, d in deployments().items():
        assert ("replicas" in d["spec"]) != (name in scaled), f"{name}: a replica count or an autoscaler, not both"
    partitions = Settings().kafka_partitions
    for name, so in scaled.items():
        kinds = {t["type"] for t in so["spec"]["triggers"]}
        if name.endswith("-api"):
            assert kinds == {"cpu", "prometheus"}
        else:
            assert kinds == {"prometheus"} and so["spec"]["maxReplicaCount"] <= partitions  # test_keda_queries.py


def test_every_deployment_spreads_over_zones_and_nodes() -> None:
    for name, d in deployments().items():
        pod = d["spec"]["template"]
        spread = pod["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, name
        for c in spread:
            assert c["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(), name


def test_the_monitors_scrape_every_part_once() -> None:
    services = {d["metadata"]["name"] for d in MANIFESTS if d["kind"] == "Service"}
    (pods,) = [d for d in MONITORS if d["kind"] == "PodMonitor"]
    (expression,) = pods["spec"]["selector"]["matchExpressions"]
    by_pod = set(expression["values"])
    assert not services & by_pod and services | by_pod == set(deployments()), "each part once, by a Service or a pod"
    for d in MONITORS:
        for endpoint in d["spec"].get("endpoints", []) + d["spec"].get("podMetricsEndpoints", []):
            assert endpoint["honorLabels"] is True, "the metrics' own `service` label stays"


def test_docs_name_the_operators_and_their_versions() -> None:
    ops = (ROOT / "docs" / "OPERATIONS.md").read_text()
    for words in ("deploy/k8s/keda.yaml", "deploy/k8s/monitoring.yaml", "deploy/monitoring/dashboard.json", "KEDA"):
        assert words in ops, words
