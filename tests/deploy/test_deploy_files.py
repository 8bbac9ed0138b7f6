"""deploy/ without a Docker engine: the Kubernetes manifests validate against the schemas offline, the Dockerfile
and compose file parse and say what they should, every variable they set is a setting the code reads (and every
required one is set), and each compose service's command, run natively with the compose environment, answers
/readyz."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from shared.edge.keys import PublicKeys
from shared.ops.secret_files import file_settings, variables
from shared.ops.settings import PIPELINES, SERVICES, Settings
from shared.ops.stack import ROOT, Endpoints
from testkit.readonly import read_only_root
from testkit.roles import ROLES, ROLES_SQL, role_database
from testkit.services import TEST_KEYS, drop_everything, isolated_settings, process_env
from testkit.waiting import wait_until

DEPLOY = ROOT / "deploy"
MANIFESTS = list(yaml.safe_load_all((DEPLOY / "k8s" / "pipelines.yaml").read_text()))
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICE_NAMES = [f"{s}-{k}" for s in SERVICES for k in ("api", "relay", "projector")]
# the fourth process kind, the agenda's only (decision 0020): it reads its service's schema and the keyring too
PROCESS_NAMES = [*SERVICE_NAMES, "agenda-notifier"]
WEBHOOKS_NAMES = ["webhooks-api", "webhooks-dispatcher"]  # decision 0026: own schema and role, no keyring
REQUIRED = {"KAFKA_BOOTSTRAP_SERVERS", "PIPELINES_JWKS_URL", "PIPELINES_PII_MASTER_KEY", "PIPELINES_KEYRING_DIR"}
# OpenTelemetry's own variables the manifests set (decision 0027: shared/ops/tracing.py reads the switch, the SDK the rest)
OTEL = {"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"}


def setting_names() -> set[str]:
    """Every environment variable Settings reads."""
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if alias is not None and hasattr(alias, "choices"):
            names |= {str(c) for c in alias.choices}
        else:
            names.add(f"PIPELINES_{name.upper()}")
    # a secret may be given as a file (shared.ops.secret_files): the manifests mount Secrets so
    names |= {f"{v}_FILE" for f, info in file_settings(Settings).items() for v in variables(f, info, "PIPELINES_")}
    return names


@pytest.mark.parametrize("doc", MANIFESTS, ids=[f"{d['kind']}-{d['metadata']['name']}" for d in MANIFESTS])
def test_each_manifest_validates_against_the_kubernetes_schemas(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_every_part_has_a_deployment_probes_and_a_disruption_budget() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in MANIFESTS}
    for name in [*PROCESS_NAMES, *WEBHOOKS_NAMES, "signin", "web"]:
        assert ("Deployment", name) in kinds and ("PodDisruptionBudget", name) in kinds
    for d in MANIFESTS:
        if d["kind"] == "Deployment":
            (c,) = d["spec"]["template"]["spec"]["containers"]
            assert {"livenessProbe", "readinessProbe", "resources"} <= set(c)
            assert c["securityContext"]["runAsNonRoot"] is True
            # its traces under its own name (decision 0027); tracing off in the ConfigMap every pod reads
            assert {e["name"]: e.get("value") for e in c["env"]}["OTEL_SERVICE_NAME"] == d["metadata"]["name"]
            assert {"configMapRef": {"name": "pipelines"}} in c["envFrom"]
    (config,) = [d["data"] for d in MANIFESTS if d["kind"] == "ConfigMap"]
    assert config["OTEL_TRACES_EXPORTER"] == "none" and config["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http")
    # the apis and projectors scale by KEDA (deploy/k8s/keda.yaml): tests/deploy/test_monitoring.py


def test_the_dockerfile_is_multi_stage_non_root_and_one_image_for_all() -> None:
    parser = DockerfileParser(fileobj=(DEPLOY / "Dockerfile").open("rb"))
    instructions = [i["instruction"] for i in parser.structure]
    assert instructions.count("FROM") == 2
    assert any(i["instruction"] == "USER" and i["value"] != "root" for i in parser.structure)
    assert parser.structure[-2]["instruction"] == "ENTRYPOINT" and '"-m"' in parser.structure[-2]["value"]
    assert "uv sync --frozen" in parser.content


def test_the_compose_file_runs_every_part_with_healthchecks() -> None:
    services = COMPOSE["services"]
    assert {"kafka", "postgres", "mailpit", *PROCESS_NAMES, *WEBHOOKS_NAMES, "signin", "web"} == set(services)
    for name in [*PROCESS_NAMES, *WEBHOOKS_NAMES]:
        service, kind = name.rsplit("-", 1)
        assert services[name]["command"] == [f"services.{service}", kind]
        assert "healthcheck" in services[name]
    assert services["web"]["command"] == ["services.web"] and "healthcheck" in services["web"]
    assert services["signin"]["command"] == ["services.signin"] and "healthcheck" in services["signin"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in [*PROCESS_NAMES, *WEBHOOKS_NAMES, "signin", "web"]:  # its traces under its own name (decision 0027)
        env = services[name]["environment"]
        assert env["OTEL_SERVICE_NAME"] == name and env["OTEL_TRACES_EXPORTER"] == "${OTEL_TRACES_EXPORTER:-none}"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("${OTEL_EXPORTER_OTLP_ENDPOINT:-http")


def test_every_variable_set_is_a_setting_and_the_required_ones_are_set() -> None:
    known = setting_names() | OTEL
    for name in WEBHOOKS_NAMES:  # no personal data: the master key (their sealed secrets), no keyring
        env = COMPOSE["services"][name]["environment"]
        assert set(env) <= known and set(env) >= REQUIRED - {"PIPELINES_KEYRING_DIR"} | {"DATABASE_URL"}
    for name in PROCESS_NAMES:
        env = COMPOSE["services"][name]["environment"]
        assert set(env) <= known, set(env) - known
        assert set(env) >= REQUIRED and ("DATABASE_URL" in env or f"{name.split('-')[0].upper()}_DATABASE_URL" in env)
    web = COMPOSE["services"]["web"]["environment"]  # the board needs no database, only the APIs and Kafka
    assert set(web) <= known and {"KAFKA_BOOTSTRAP_SERVERS", "PIPELINES_JWKS_URL"} <= set(web)
    assert {f"PIPELINES_{s.upper()}_API_URL" for s in PIPELINES} <= set(web)  # the board shows the pipelines
    assert {"PIPELINES_SIGNIN_URL", "PIPELINES_DIRECTORY_API_URL"} <= set(web)  # signing in, the filters' lists
    k8s = {}
    for d in MANIFESTS:
        if d["kind"] in ("ConfigMap", "Secret"):
            k8s |= d.get("data", {}) | d.get("stringData", {})
        if d["kind"] == "Deployment":
            for c in d["spec"]["template"]["spec"]["containers"]:
                k8s |= {e["name"]: e["value"] for e in c.get("env", [])}
    assert set(k8s) <= known, set(k8s) - known
    assert set(k8s) >= REQUIRED
    assert all(f"{s.upper()}_DATABASE_URL" in k8s for s in SERVICES)


def test_the_notifier_has_an_smtp_server_and_its_password_only_from_a_secret() -> None:
    """The agenda's notifier (decision 0020): where it sends and what its links open, in compose (a local mail
    server) and in k8s (one replica by default; the password only in a Secret, never a plain variable)."""
    smtp = {"PIPELINES_SMTP_HOST", "PIPELINES_SMTP_PORT", "PIPELINES_SMTP_STARTTLS", "PIPELINES_BOARD_URL"}
    compose = COMPOSE["services"]["agenda-notifier"]
    assert smtp <= set(compose["environment"]) and "mailpit" in compose["depends_on"]
    (d,) = [d for d in MANIFESTS if d["kind"] == "Deployment" and d["metadata"]["name"] == "agenda-notifier"]
    assert d["spec"]["replicas"] == 1
    (c,) = d["spec"]["template"]["spec"]["containers"]
    env = {e["name"] for e in c["env"]}
    assert smtp <= env and "PIPELINES_SMTP_PASSWORD" not in env
    secrets = {x["metadata"]["name"]: x.get("stringData", {}) for x in MANIFESTS if x["kind"] == "Secret"}
    volumes = d["spec"]["template"]["spec"]["volumes"]
    refs = [s["secret"]["name"] for v in volumes for s in v.get("projected", {}).get("sources", []) if "secret" in s]
    assert any("PIPELINES_SMTP_PASSWORD" in secrets[r] for r in refs)
    assert "PIPELINES_SMTP_PASSWORD_FILE" in env, "read from its Secret's file (shared.ops.secret_files)"
    budget = next(
        x for x in MANIFESTS if x["kind"] == "PodDisruptionBudget" and x["metadata"]["name"] == d["metadata"]["name"]
    )
    assert budget["spec"] == budget["spec"] | {"maxUnavailable": 1}, "one replica: a drain may still move it"


def test_every_service_process_mounts_the_one_keyring_volume() -> None:
    """The epoch keyring (decision 0015): one volume, outside PostgreSQL, that every service process shares."""
    k8s_dir = next(d for d in MANIFESTS if d["kind"] == "ConfigMap")["data"]["PIPELINES_KEYRING_DIR"]
    claims = {d["metadata"]["name"]: d["spec"] for d in MANIFESTS if d["kind"] == "PersistentVolumeClaim"}
    assert claims["pipelines-keyring"]["accessModes"] == ["ReadWriteMany"], "pods on several nodes share it"
    for d in MANIFESTS:
        if d["kind"] == "Deployment" and d["metadata"]["name"] in PROCESS_NAMES:
            pod = d["spec"]["template"]["spec"]
            (volume,) = [v for v in pod["volumes"] if v["name"] == "keyring"]
            assert volume["persistentVolumeClaim"]["claimName"] == "pipelines-keyring"
            (c,) = pod["containers"]
            assert {"name": "keyring", "mountPath": k8s_dir} in c["volumeMounts"]
    for name in PROCESS_NAMES:
        service = COMPOSE["services"][name]
        assert f"keyring:{service['environment']['PIPELINES_KEYRING_DIR']}" in service["volumes"]
    assert "keyring" in COMPOSE["volumes"] and "volumes" not in COMPOSE["services"]["web"]
    assert "/var/lib/pipelines/keyring" in (DEPLOY / "Dockerfile").read_text(), "made, owned by the image's user"


def role_of(url: str) -> str:
    """The role a compose DATABASE_URL connects as; its password is the one compose requires for that role."""
    match = re.fullmatch(r"postgresql://(\w+):\$\{(\w+)_DB_PASSWORD:\?[^}]+\}@postgres:5432/pipelines", url)
    assert match and match[2] == match[1].upper(), url
    return match[1]


def test_compose_gives_each_process_only_its_own_secrets_and_publishes_on_loopback() -> None:
    """Issue 31: compose refuses to start without the keys (``${VAR:?}``, no publicly known default), runs each
    service as its role from roles.sql (made at the database's first start by init-roles.sh), gives the board no
    database and no personal-data key, and publishes ports on
    loopback unless COMPOSE_PUBLISH_ADDRESS says otherwise."""
    services = COMPOSE["services"]
    text = (DEPLOY / "compose.yaml").read_text()
    assert ":-MDEy" not in text and "POSTGRES_PASSWORD:-" not in text, "no known default key or password"
    for name in PROCESS_NAMES:
        env = services[name]["environment"]
        assert env["PIPELINES_PII_MASTER_KEY"].startswith("${PIPELINES_PII_MASTER_KEY:?")
        assert role_of(env["DATABASE_URL"]) == name.split("-")[0]
    signin = services["signin"]["environment"]
    assert role_of(signin["DATABASE_URL"]) == "signin" and signin["PIPELINES_PII_MASTER_KEY"].startswith("${")
    web = services["web"]["environment"]
    assert not {"DATABASE_URL", "PIPELINES_PII_MASTER_KEY", "PIPELINES_JWT_SIGNING_KEYS"} & set(web)
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "./postgres/init-roles.sh:/docker-entrypoint-initdb.d/10-roles.sh:ro" in postgres["volumes"]
    assert "./postgres/roles.sql:/pipelines/roles.sql:ro" in postgres["volumes"]
    init = (DEPLOY / "postgres" / "init-roles.sh").read_text()
    made = set(re.findall(r"CREATE ROLE (\w+) LOGIN", ROLES_SQL.read_text()))
    assert made == set(ROLES) == set(re.findall(r"-v (\w+)_password=", init))
    for role in ROLES:
        assert f'{role}_password="${role.upper()}_DB_PASSWORD"' in init
        assert postgres["environment"][f"{role.upper()}_DB_PASSWORD"].startswith(f"${{{role.upper()}_DB_PASSWORD:?")
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published and all(p.startswith("${COMPOSE_PUBLISH_ADDRESS:-127.0.0.1}:") for p in published)


@pytest.mark.pg
@pytest.mark.kafka
@pytest.mark.e2e
async def test_each_compose_command_answers_readyz_with_the_compose_environment(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    settings = isolated_settings(endpoints)
    processes = []
    roles = role_database(tmp_path / "roles")  # each process connects as the role compose names (roles.sql)
    role_urls = roles.__enter__()
    # not under /tmp: a read-only root gets a fresh /tmp (testkit/readonly.py), as a pod's Secrets are not in its /tmp
    (ROOT / ".cache").mkdir(exist_ok=True)
    secret_files = Path(tempfile.mkdtemp(prefix="secret-files-", dir=ROOT / ".cache"))
    try:
        for i, name in enumerate([*PROCESS_NAMES, *WEBHOOKS_NAMES, "signin", "web"]):
            compose = COMPOSE["services"][name]
            env = {  # defaults as compose takes them; the secrets compose requires (${X:?…}) are this test's
                k: re.sub(r"\$\{[A-Z_]+:-(.*)\}$", r"\1", str(v))
                for k, v in compose["environment"].items()
                if ":?" not in str(v)
            }
            port = 18500 + i
            env |= {  # the compose hosts are this machine's servers; each process gets its own port
                "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                "PIPELINES_API_HOST": "127.0.0.1",
                "PIPELINES_OPS_PORT": str(port),
                f"PIPELINES_{name.split('-')[0].upper()}_PORT": str(port),
                "PIPELINES_KEYRING_DIR": str(settings.keyring_dir),  # the compose volume: this test's keyrings
            }
            if "DATABASE_URL" in compose["environment"]:  # its own database: the schemas' deployed names
                env["DATABASE_URL"] = role_urls[role_of(compose["environment"]["DATABASE_URL"])]
                env |= {"PIPELINES_SCHEMA_PREFIX": "", "PIPELINES_PII_SCHEMA": "pii"}
            if name == "signin":  # the signing keys compose asks the operator for (${...:?...})
                env["PIPELINES_JWT_SIGNING_KEYS"] = json.dumps(TEST_KEYS.seeds())
            if name == "web":  # where the api processes above listen
                env |= {
                    f"PIPELINES_{n.split('-')[0].upper()}_API_URL": f"http://127.0.0.1:{p}"
                    for n, p, _ in processes
                    if n.endswith("-api")
                }
                (signin,) = [p for n, p, _ in processes if n == "signin"]  # the board checks it answers
                env["PIPELINES_SIGNIN_URL"] = f"http://127.0.0.1:{signin}"
            full = process_env(settings) | env
            if "PIPELINES_PII_MASTER_KEY" not in compose["environment"]:  # the board and sign-in get none
                full.pop("PIPELINES_PII_MASTER_KEY", None)
            if "DATABASE_URL" not in compose["environment"]:  # the board
                full.pop("DATABASE_URL", None)
            secrets = secret_files / name  # its secrets as files, as the Kubernetes manifests give them
            secrets.mkdir()
            for var in ("DATABASE_URL", "PIPELINES_PII_MASTER_KEY", "PIPELINES_JWT_SIGNING_KEYS"):
                if var in full:  # the value, and a line end the settings drop (shared.ops.secret_files)
                    (secrets / var).write_text(full.pop(var) + "\n")
                    (secrets / var).chmod(0o400)
                    full[f"{var}_FILE"] = str(secrets / var)
            command = [sys.executable, "-m", *compose["command"]]
            if compose.get("read_only"):  # on a read-only root, /tmp and the keyring writable (testkit/readonly.py)
                command = read_only_root(command, keyring=full["PIPELINES_KEYRING_DIR"], cwd=str(ROOT))
            log = (tmp_path / f"{name}.log").open("wb")
            processes.append(
                (
                    name,
                    port,
                    subprocess.Popen(
                        command,
                        cwd=ROOT,
                        env=full,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    ),
                )
            )
        async with httpx.AsyncClient() as http:

            async def ready(port: int) -> bool:
                try:
                    return (await http.get(f"http://127.0.0.1:{port}/readyz", timeout=2)).status_code == 200
                except httpx.HTTPError:
                    return False

            for name, port, process in processes:
                await wait_until(lambda port=port: ready(port), timeout=120, interval=0.5)
                assert process.poll() is None, name
    finally:
        for _, _, process in processes:
            process.terminate()
        for _, _, process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        roles.__exit__(None, None, None)
        shutil.rmtree(secret_files)
        await drop_everything(settings)


def secrets_read_by(pod: dict[str, Any]) -> set[str]:
    """Every Secret a pod's containers can read: envFrom, env valueFrom, and secret or projected volumes."""
    names = {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    names |= {s["secret"]["name"] for v in pod.get("volumes", []) for s in v.get("projected", {}).get("sources", [])
              if "secret" in s}  # fmt: skip
    for c in pod["containers"] + pod.get("initContainers", []):
        names |= {e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e}
        names |= {
            e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})
        }
    return names


def test_only_the_signin_service_holds_the_signing_keys() -> None:
    """Decision 0022: the signing keys are in one Secret, readable by the sign-in Deployment alone (by any route: envFrom,
    env, volumes); every other workload gets public keys only (a JWKS with no private member) and the JWKS URL; in
    compose only the sign-in service is given them."""
    holding = {
        d["metadata"]["name"]
        for d in MANIFESTS
        if d["kind"] in ("Secret", "ConfigMap")
        and {"PIPELINES_JWT_SIGNING_KEYS", "PIPELINES_JWT_ACTIVE_KID"}
        & set(d.get("stringData", {}) | d.get("data", {}))
    }
    assert holding == {"pipelines-signing-keys"}
    workloads = [d for d in MANIFESTS if d["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet")]
    readers = [d["metadata"]["name"] for d in workloads if holding & secrets_read_by(d["spec"]["template"]["spec"])]
    assert readers == ["signin"]
    config = next(d for d in MANIFESTS if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "pipelines")["data"]
    assert config["PIPELINES_JWKS_URL"].startswith("http://signin/")
    PublicKeys.from_jwks(config["PIPELINES_JWT_PUBLIC_KEYS"])  # refuses a private member
    compose = [n for n, v in COMPOSE["services"].items() if "PIPELINES_JWT_SIGNING_KEYS" in v.get("environment", {})]
    assert compose == ["signin"]
    for name in [*PROCESS_NAMES, "web"]:
        env = COMPOSE["services"][name]["environment"]
        assert "PIPELINES_JWT_ACTIVE_KID" not in env and env["PIPELINES_JWKS_URL"].startswith("http://signin:")
        PublicKeys.from_jwks(re.sub(r"\$\{[A-Z_]+:-(.*)\}$", r"\1", env["PIPELINES_JWT_PUBLIC_KEYS"]))
