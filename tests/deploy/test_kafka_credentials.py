"""The Kubernetes manifests give each process the Kafka user the secure stack's ACLs are written for, as the secure
end-to-end run does (tests/e2e/test_lead_to_follow_up.py, ``[secure]``): each service's three processes their
service's user, the board the web user; SCRAM-SHA-512 like scripts/stack; the deployed topic names the ACLs name."""

from __future__ import annotations

import re
from typing import Any

import yaml

from shared.ops.settings import SERVICES
from shared.ops.stack import ROOT

MANIFESTS = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "pipelines.yaml").read_text()))


def secret_data(name: str) -> dict[str, Any]:
    (secret,) = [d for d in MANIFESTS if d["kind"] == "Secret" and d["metadata"]["name"] == name]
    return dict(secret["stringData"])


def test_each_process_signs_in_to_kafka_as_its_own_service_and_the_board_as_web() -> None:
    config = next(d for d in MANIFESTS if d["kind"] == "ConfigMap")["data"]
    assert config["PIPELINES_KAFKA_SECURITY_PROTOCOL"].startswith("SASL")
    assert config["PIPELINES_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"  # the mechanism the stack's users have
    assert "PIPELINES_TOPIC_PREFIX" not in config, "the ACLs name the pipelines.* topics and groups"
    users = {}
    for d in MANIFESTS:
        if d["kind"] != "Deployment":
            continue
        (container,) = d["spec"]["template"]["spec"]["containers"]
        # an optional Secret the manifests leave to the operator (pipelines-oidc) holds no Kafka user
        # its Secrets, mounted as files (tests/deploy/test_hardened.py checks each key's <VAR>_FILE)
        volumes = d["spec"]["template"]["spec"]["volumes"]
        refs = [
            s["secret"]["name"] for v in volumes for s in v.get("projected", {}).get("sources", []) if "secret" in s
        ]
        refs = [r for r in refs if any(x["kind"] == "Secret" and x["metadata"]["name"] == r for x in MANIFESTS)]
        kafka = [secret_data(r) for r in refs if "PIPELINES_KAFKA_SASL_USERNAME" in secret_data(r)]
        assert len(kafka) == 1, f"{d['metadata']['name']}: one Kafka user, not {len(kafka)}"
        assert "PIPELINES_TOPIC_PREFIX" not in {e["name"] for e in container.get("env", [])}
        users[d["metadata"]["name"]] = kafka[0]["PIPELINES_KAFKA_SASL_USERNAME"]
    expected = {f"{s}-{kind}": s for s in SERVICES for kind in ("api", "relay", "projector")} | {"web": "web"}
    expected["agenda-notifier"] = "agenda"  # the agenda's fourth process kind signs in as the agenda (decision 0020)
    expected["signin"] = "signin"  # the sign-in service: the revoked sessions only (decision 0022)
    expected |= {"webhooks-api": "webhooks", "webhooks-dispatcher": "webhooks"}  # every topic, read only (0026)
    assert users == expected
    # the users scripts/stack --secure makes (and writes ACLs for): these, and the admin
    made = re.search(r"for u in (admin [a-z ]+); do", (ROOT / "scripts" / "stack").read_text())
    assert made and set(made.group(1).split()) == {"admin", *expected.values()}
