"""Least privilege and pod security in the Kubernetes manifests (issue 31; decision 0025, "Least privilege and pod
security"), offline: each workload reads exactly the Secret keys it needs; every Deployment runs as Pod Security
"restricted" asks, in the namespace that enforces it; the NetworkPolicies allow exactly the flows the Deployments'
settings point at (and the few the table below names, each with its reason), nothing else; checkov finds nothing
that is not skipped in the manifests with a reason. A new Deployment that misses any of it fails here."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from shared.ops.secret_files import file_settings, variables
from shared.ops.settings import SERVICES, Settings
from shared.ops.stack import ROOT
from testkit.readonly import read_only_root
from testkit.roles import ROLES
from tools import checkov

K8S = ROOT / "deploy" / "k8s"
NAMESPACE = "pipelines"
FILES = sorted(p.name for p in K8S.glob("*.yaml"))
ALL = {name: list(yaml.safe_load_all((K8S / name).read_text())) for name in FILES}
MANIFESTS = ALL["pipelines.yaml"]
POLICIES = [d for d in ALL["network.yaml"] if d["kind"] == "NetworkPolicy"]
DEPLOYMENTS = {d["metadata"]["name"]: d for d in MANIFESTS if d["kind"] == "Deployment"}
SECRETS = {
    d["metadata"]["name"]: d.get("stringData", {}) | d.get("data", {}) for d in MANIFESTS if d["kind"] == "Secret"
}
CONFIG = {d["metadata"]["name"]: d["data"] for d in MANIFESTS if d["kind"] == "ConfigMap"}

# ------------------------------------------------------------------ what each workload may read, and why
KAFKA_USER = {"PIPELINES_KAFKA_SASL_USERNAME", "PIPELINES_KAFKA_SASL_PASSWORD"}  # its own Kafka user (the ACLs')
PII = {"PIPELINES_PII_MASTER_KEY"}  # seals and opens personal data (decision 0006), or derives a key from it


def service_process(service: str) -> set[str]:
    """A service's api, relay and projector: its own database role, the personal-data key, its Kafka user."""
    return {f"{service.upper()}_DATABASE_URL"} | PII | KAFKA_USER


NEEDS: dict[str, set[str]] = {
    **{f"{s}-{kind}": service_process(s) for s in SERVICES for kind in ("api", "relay", "projector")},
    # the reminders go out through an SMTP account (decision 0020)
    "agenda-notifier": service_process("agenda") | {"PIPELINES_SMTP_USERNAME", "PIPELINES_SMTP_PASSWORD"},
    # the only holder of the signing keys (decision 0022); its failed-attempt counters are keyed from the master key
    "signin": {"SIGNIN_DATABASE_URL", "PIPELINES_JWT_SIGNING_KEYS", "PIPELINES_JWT_ACTIVE_KID"} | PII | KAFKA_USER,
    # the board: the APIs with each user's token, Kafka for its live notices; no database, no personal-data key
    "web": KAFKA_USER,
    # the webhooks (decision 0026): their own role; the subscriptions' secrets are sealed under a key derived from
    # the master key
    "webhooks-api": {"WEBHOOKS_DATABASE_URL"} | PII | KAFKA_USER,
    "webhooks-dispatcher": {"WEBHOOKS_DATABASE_URL"} | PII | KAFKA_USER,
}
# Secrets the manifests leave to the operator, read only where named (optional: the pod starts without them)
OPTIONAL = {"signin": {"pipelines-oidc"}}


def pod_of(name: str) -> dict[str, Any]:
    return dict(DEPLOYMENTS[name]["spec"]["template"]["spec"])


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod["containers"]) + list(pod.get("initContainers", []))


def secret_keys_read_by(pod: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Every Secret key a pod's containers can read (envFrom, env valueFrom, secret and projected volumes), and the
    optional Secrets it names that the manifests do not ship."""
    keys: set[str] = set()
    optional: set[str] = set()

    def whole(name: str, is_optional: bool) -> None:
        if name in SECRETS:
            keys.update(SECRETS[name])
        else:
            assert is_optional, f"{name}: a Secret the manifests do not ship, and not optional"
            optional.add(name)

    for volume in pod.get("volumes", []):
        if "secret" in volume:
            whole(volume["secret"]["secretName"], volume["secret"].get("optional", False))
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                whole(source["secret"]["name"], source["secret"].get("optional", False))
    for c in containers(pod):
        for ref in c.get("envFrom", []):
            if "secretRef" in ref:
                whole(ref["secretRef"]["name"], ref["secretRef"].get("optional", False))
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                keys.add(ref["key"])
    return keys, optional


def test_each_workload_reads_exactly_the_secret_keys_it_needs() -> None:
    assert set(DEPLOYMENTS) == set(NEEDS), f"a row in NEEDS for each Deployment: {set(DEPLOYMENTS) ^ set(NEEDS)}"
    for name in DEPLOYMENTS:
        keys, optional = secret_keys_read_by(pod_of(name))
        assert keys == NEEDS[name], f"{name}: extra {keys - NEEDS[name]}, missing {NEEDS[name] - keys}"
        assert optional == OPTIONAL.get(name, set()), name
    homes: dict[str, list[str]] = {}
    for secret, data in SECRETS.items():
        for key in data:
            homes.setdefault(key, []).append(secret)
    shared = {k: v for k, v in homes.items() if len(v) > 1 and k not in KAFKA_USER}
    assert not shared, f"one Secret for each value (the master key, a database URL): {shared}"
    assert homes["PIPELINES_PII_MASTER_KEY"] == ["pipelines-pii"]
    for key, (secret,) in ((k, v) for k, v in homes.items() if k.endswith("_DATABASE_URL")):
        role = key.removesuffix("_DATABASE_URL").lower()
        assert secret == f"pipelines-{role}-database" and role in ROLES, secret
        assert urlsplit(SECRETS[secret][key]).username == role, "each connects as its own role (roles.sql)"
    for name in DEPLOYMENTS:  # and no Secret value in a plain variable or the ConfigMap
        plain = {e["name"] for c in containers(pod_of(name)) for e in c.get("env", []) if "value" in e}
        assert not plain & set(homes), name
    assert not set(homes) & {k for data in CONFIG.values() for k in data}


# ------------------------------------------------------------------ Pod Security "restricted", and the conventions
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,  # the image's user and group (deploy/Dockerfile)
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "privileged": False,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def test_every_deployment_runs_as_pod_security_restricted_asks() -> None:
    for name, d in DEPLOYMENTS.items():
        labels = {"app.kubernetes.io/name": "pipelines", "app.kubernetes.io/component": name}
        assert d["metadata"]["labels"] == d["spec"]["selector"]["matchLabels"] == labels, name
        assert d["spec"]["template"]["metadata"]["labels"] == labels, name
        pod = pod_of(name)
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"] == pod["securityContext"] | POD_SECURITY, name
        assert not {"hostNetwork", "hostPID", "hostIPC", "serviceAccountName"} & set(pod), name
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for volume in volumes.values():
            assert {"emptyDir", "persistentVolumeClaim", "secret", "configMap", "projected"} & set(volume), volume
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), f"{name}: an emptyDir is bounded"
        assert "emptyDir" in volumes["tmp"], f"{name}: /tmp is a volume (the root filesystem is read-only)"
        for c in containers(pod):
            assert c["securityContext"] == c["securityContext"] | CONTAINER_SECURITY, name
            assert "add" not in c["securityContext"]["capabilities"], name
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory", "ephemeral-storage"} <= set(c["resources"][bound]), f"{name} {bound}"
            assert c["imagePullPolicy"] == "Always" and c["image"].startswith("registry.example.vn/pipelines:")
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "--uid 10001 --gid 10001" in dockerfile and "--gid 10001 pipelines" in dockerfile
    assert "PYTHONDONTWRITEBYTECODE=1" in dockerfile, "nothing writes beside the code"


def test_every_object_is_in_the_namespace_that_enforces_restricted() -> None:
    (namespace,) = ALL["namespace.yaml"]
    assert namespace["kind"] == "Namespace" and namespace["metadata"]["name"] == NAMESPACE
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    for name, docs in ALL.items():
        for d in docs:
            if d["kind"] != "Namespace":
                assert d["metadata"].get("namespace") == NAMESPACE, f"{name}: {d['kind']} {d['metadata']['name']}"


def test_compose_runs_every_pipelines_process_on_a_read_only_root() -> None:
    """compose's analogue of readOnlyRootFilesystem: a read-only container, a tmpfs at /tmp (the keyring is a volume);
    tests/deploy/test_deploy_files.py starts each command so, natively (testkit/readonly.py)."""
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
    ours = {n: s for n, s in compose.items() if n not in ("kafka", "postgres", "mailpit")}
    assert set(ours) >= set(DEPLOYMENTS)
    for name, service in ours.items():
        assert service.get("read_only") is True and "/tmp" in service.get("tmpfs", []), name


def test_the_read_only_root_leaves_a_process_only_tmp_and_the_keyring(tmp_path: Path) -> None:
    """What the compose e2e test starts each process in (testkit/readonly.py): the code, the home directory and the
    rest refuse a write; /tmp (fresh, empty) and the keyring directory take one, and the keyring's is the real one."""
    keyring = tmp_path / "keyring"
    probe = (
        "import os, sys\n"
        "def tried(path):\n"
        "    try:\n"
        "        with open(path, 'w') as f: f.write('x')\n"
        "        return 'written'\n"
        "    except OSError as e: return e.strerror\n"
        "print(os.path.exists(sys.argv[1]))\n"
        "for path in sys.argv[2:]: print(tried(path))\n"
    )
    (tmp_path / "host").write_text("the host's /tmp")  # hidden by the fresh one
    paths = [str(tmp_path / "host"), f"{ROOT}/probe", f"{Path.home()}/probe", "/tmp/probe", f"{keyring}/probe"]
    command = read_only_root([sys.executable, "-c", probe, *paths], keyring=str(keyring), cwd=str(ROOT))
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["False", *["Read-only file system"] * 2, "written", "written"]
    assert (keyring / "probe").read_text() == "x" and not (ROOT / "probe").exists()


@pytest.mark.parametrize("name", ["network.yaml", "namespace.yaml"])
def test_the_new_manifests_validate_against_the_kubernetes_schemas(name: str) -> None:
    for d in ALL[name]:
        kubernetes_validate.validate(d, "1.30.0", strict=True)


# ------------------------------------------------------------------ the network: what the policies allow
@dataclass(frozen=True)
class End:
    """One end of a flow: a pod (its namespace and labels) or an address outside the cluster."""

    name: str
    namespace: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    ip: str | None = None
    label_map: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def pod(cls, name: str, namespace: str, labels: dict[str, str]) -> End:
        return cls(name, namespace, tuple(sorted(labels.items())), None, labels)


OUTSIDE = {  # the pods and addresses around the namespace, as the policies name them
    "postgresql": End.pod("postgresql", NAMESPACE, {"app.kubernetes.io/name": "postgresql"}),
    "kafka": End.pod("kafka", NAMESPACE, {"app.kubernetes.io/name": "kafka"}),
    "kube-dns": End.pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}),
    "prometheus": End.pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
    "ingress": End.pod("ingress", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
    "keda": End.pod("keda", "keda", {"app": "keda-operator"}),
    "stranger": End.pod("stranger", NAMESPACE, {"run": "debug"}),  # a pod someone starts in the namespace
    "elsewhere": End.pod("elsewhere", "default", {"app": "other"}),
    "internet": End("internet", ip="203.0.113.7"),
    "private": End("private", ip="10.20.30.40"),  # the cluster's and the company's networks
    "metadata": End("metadata", ip="169.254.169.254"),  # the cloud's metadata service
}
PODS = {n: End.pod(n, NAMESPACE, d["spec"]["template"]["metadata"]["labels"]) for n, d in DEPLOYMENTS.items()}
ENDS = {**PODS, **OUTSIDE}
CONTAINER_PORTS = {p["containerPort"] for n in DEPLOYMENTS for c in containers(pod_of(n)) for p in c.get("ports", [])}
PORTS = {(p, "TCP") for p in CONTAINER_PORTS | {22, 25, 53, 80, 443, 587, 5432, 9092, 9093}} | {(53, "UDP")}
Flow = tuple[str, str, int, str]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        has, value = e["key"] in labels, labels.get(e["key"])
        ok = {
            "In": has and value in e.get("values", []),
            "NotIn": not has or value not in e.get("values", []),
            "Exists": has,
            "DoesNotExist": not has,
        }[e["operator"]]
        if not ok:
            return False
    return True


def peer_matches(peer: dict[str, Any], end: End, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        if end.ip is None:
            return False
        address = ipaddress.ip_address(end.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(x) for x in block.get("except", [])
        )
    if end.ip is not None:
        return False
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": str(end.namespace)})
    else:
        in_namespace = end.namespace == policy_namespace
    return in_namespace and selects(peer.get("podSelector", {}), end.label_map)


def rule_allows(rule: dict[str, Any], peers_key: str, other: End, port: int, protocol: str) -> bool:
    ports = rule.get("ports")  # none: every port and protocol
    if ports and not any(p.get("protocol", "TCP") == protocol and p.get("port", port) == port for p in ports):
        return False
    peers = rule.get(peers_key) or [{"namespaceSelector": {}}, {"ipBlock": {"cidr": "0.0.0.0/0"}}]
    return any(peer_matches(peer, other, NAMESPACE) for peer in peers)


def side_allows(end: End, direction: str, other: End, port: int, protocol: str) -> bool:
    """Whether the policies selecting ``end`` let it send (Egress) to or receive (Ingress) from ``other``."""
    if end.namespace != NAMESPACE:
        return True  # not ours to restrict
    chosen = [
        p["spec"]
        for p in POLICIES
        if direction in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], end.label_map)
    ]
    if not chosen:
        return True
    key, peers = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    return any(rule_allows(rule, peers, other, port, protocol) for spec in chosen for rule in spec.get(key, []))


def allowed_flows() -> set[Flow]:
    flows = set()
    for src in ENDS.values():
        for dst in ENDS.values():
            if NAMESPACE not in (src.namespace, dst.namespace):
                continue
            for port, protocol in PORTS:
                if side_allows(src, "Egress", dst, port, protocol) and side_allows(dst, "Ingress", src, port, protocol):
                    flows.add((src.name, dst.name, port, protocol))
    return flows


def settings_of(name: str) -> dict[str, str]:
    """What a Deployment's processes read: its ConfigMaps, Secrets and env."""
    env: dict[str, str] = {}
    for c in containers(pod_of(name)):
        for ref in c.get("envFrom", []):
            if "configMapRef" in ref:
                env |= CONFIG[ref["configMapRef"]["name"]]
            if "secretRef" in ref:
                env |= SECRETS.get(ref["secretRef"]["name"], {})
        env |= {e["name"]: str(e["value"]) for e in c.get("env", []) if "value" in e}
        env |= secret_files_of(pod_of(name), c)
    return env


def secret_files_of(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """The settings a container reads from its Secrets' files: each ``<VAR>_FILE`` (shared.ops.secret_files) resolved
    through its mount and projected volume to the Secret key the file is, as ``<VAR>: value``."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    found: dict[str, str] = {}
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", []) if "projected" in volumes[m["name"]]}
    for e in container.get("env", []):
        directory, _, key = str(e.get("value", "")).rpartition("/")
        if not e["name"].endswith("_FILE") or directory not in mounts:
            continue  # not a Secret's file (PIPELINES_SMTP_CA_FILE: a CA certificate the image or a volume holds)
        mount = mounts[directory]
        sources = volumes[mount["name"]]["projected"]["sources"]
        values = [SECRETS[s["secret"]["name"]][key] for s in sources if key in SECRETS.get(s["secret"]["name"], {})]
        assert len(values) == 1, f"{e['name']}: {key} is in one Secret of the volume, not {len(values)}"
        found[e["name"].removesuffix("_FILE")] = values[0]
    return found


def test_secrets_are_files_named_by_their_settings_never_environment_values() -> None:
    """Every Secret a pod reads is a read-only projected volume (0400: the owner, and the pods' group by fsGroup);
    each of its keys is named by the matching ``<VAR>_FILE``, which the settings read (shared.ops.secret_files)."""
    for name in DEPLOYMENTS:
        pod = pod_of(name)
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"], name
        for c in containers(pod):
            assert not [r for r in c.get("envFrom", []) if "secretRef" in r], f"{name}: a Secret as environment"
            assert not [e for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})], name
            mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
            for volume in [v for v in pod.get("volumes", []) if "projected" in v or "secret" in v]:
                assert "secret" not in volume and volume["projected"]["defaultMode"] == 0o400, name
                assert mounts[volume["name"]]["readOnly"] is True, name
                shipped = [
                    s["secret"]["name"] for s in volume["projected"]["sources"] if not s["secret"].get("optional")
                ]
                keys = {k for s in shipped for k in SECRETS[s]}
                assert set(secret_files_of(pod, c)) == keys, f"{name}: a _FILE for each key, no other"
                assert keys <= FROM_FILES, f"{name}: settings that cannot be given as files {keys - FROM_FILES}"


# every variable a setting may be given by as <VAR>_FILE
FROM_FILES = {v for f, info in file_settings(Settings).items() for v in variables(f, info, "PIPELINES_")}


def destination(host: str, port: int) -> tuple[str, int]:
    """Where a host name leads: a Service of the manifests (its pods, at the target port), PostgreSQL, a Kafka
    broker, or the internet."""
    services = {d["metadata"]["name"]: d["spec"] for d in MANIFESTS if d["kind"] == "Service"}
    if host in services:
        spec = services[host]
        (target,) = [p["targetPort"] for p in spec["ports"] if p["port"] == port]
        (pod,) = [n for n, e in PODS.items() if selects({"matchLabels": spec["selector"]}, e.label_map)]
        return pod, target
    if host == "postgres":
        return "postgresql", port
    if host == "kafka" or host.endswith(".kafka"):
        return "kafka", port
    return "internet", port


def flows_the_settings_name(name: str) -> set[Flow]:
    env = settings_of(name)
    flows = {(name, "kube-dns", 53, "UDP"), (name, "kube-dns", 53, "TCP")}
    for key, value in env.items():
        if (
            key.endswith("_API_URL")
            or key in ("PIPELINES_SIGNIN_URL", "PIPELINES_JWKS_URL")
            or key.endswith("DATABASE_URL")
        ):
            url = urlsplit(value)
            assert url.hostname, f"{name}: {key}"
            default = {"http": 80, "https": 443, "postgresql": 5432}[url.scheme]
            flows.add((name, *destination(url.hostname, url.port or default), "TCP"))
        if key == "KAFKA_BOOTSTRAP_SERVERS":
            for server in value.split(","):
                host, _, port = server.rpartition(":")
                flows.add((name, *destination(host, int(port)), "TCP"))
        if key == "PIPELINES_SMTP_HOST":
            flows.add((name, *destination(value, int(env["PIPELINES_SMTP_PORT"])), "TCP"))
    return flows


# the flows no setting names, each with its reason
def flows_by_design() -> set[Flow]:
    flows: set[Flow] = set()
    for name, d in DEPLOYMENTS.items():  # Prometheus scrapes every process at its metrics port
        port = int(d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"])
        flows.add(("prometheus", name, port, "TCP"))
    flows.add(("ingress", "web", 8100, "TCP"))  # the users' browsers, through the ingress controller
    flows.add(("signin", "internet", 443, "TCP"))  # an OpenID Provider, when configured (PIPELINES_OIDC_ISSUER)
    flows.add(("webhooks-dispatcher", "internet", 443, "TCP"))  # the subscribers' https URLs (decision 0026)
    flows |= {("kafka", "kafka", p, proto) for p, proto in PORTS}  # brokers and controllers among themselves
    flows.add(("postgresql", "postgresql", 5432, "TCP"))  # streaming replication
    for end in ("postgresql", "kafka", "stranger"):  # every pod of the namespace resolves names; nothing else
        flows |= {(end, "kube-dns", 53, "UDP"), (end, "kube-dns", 53, "TCP")}
    return flows


def test_the_network_policies_allow_exactly_the_flows_the_settings_name() -> None:
    expected = flows_by_design().union(*(flows_the_settings_name(n) for n in DEPLOYMENTS))
    allowed = allowed_flows()
    assert not expected - allowed, f"needed and not allowed: {sorted(expected - allowed)}"
    assert not allowed - expected, f"allowed and not needed: {sorted(allowed - expected)}"
    # what an attacker inside one pod would try first
    for src in ("web", "leads-api", "webhooks-dispatcher", "signin", "stranger"):
        for dst in ("private", "metadata"):
            assert not {f for f in allowed if f[:2] == (src, dst)}, (src, dst)
    assert not {f for f in allowed if f[0] == "web" and f[1] == "postgresql"}, "the board has no database"
    assert not {f for f in allowed if f[0] in ("elsewhere", "stranger") and f[1] != "kube-dns"}


def test_the_policies_are_one_default_deny_and_named_flows() -> None:
    (deny,) = [p for p in POLICIES if not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    text = (K8S / "network.yaml").read_text()
    for p in POLICIES:  # each says why, in a comment above it
        assert re.search(rf"# .+\n(#.*\n)*apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: "
                         rf"{p['metadata']['name']}\n", text), p["metadata"]["name"]  # fmt: skip


# ------------------------------------------------------------------ checkov, from its own virtual environment
# every check left by choice, with its reason in the manifest or the Dockerfile (docs/decisions/0025)
SKIPPED = {"CKV_K8S_43", "CKV_DOCKER_7", "CKV_DOCKER_2"}


def test_checkov_finds_nothing_left_without_a_reason() -> None:
    reports = {r["check_type"]: r for r in checkov.scan()}
    assert set(reports) == {"kubernetes", "dockerfile"}
    assert checkov.failed(list(reports.values())) == []
    assert reports["kubernetes"]["summary"]["passed"] > 1000 and reports["dockerfile"]["summary"]["passed"] > 50
    skipped = {c["check_id"] for r in reports.values() for c in r["results"]["skipped_checks"]}
    assert skipped == SKIPPED, skipped ^ SKIPPED
    for name, d in DEPLOYMENTS.items():
        notes = [v for k, v in d["metadata"].get("annotations", {}).items() if k.startswith("checkov.io/skip")]
        assert all(re.fullmatch(r"CKV2?_[A-Z0-9_]+=\S.{20,}", n) for n in notes), name
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    for check in ("CKV_DOCKER_7", "CKV_DOCKER_2"):
        assert re.search(rf"^# checkov:skip={check}: \S.{{20,}}$", dockerfile, re.M), check
