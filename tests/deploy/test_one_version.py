"""One version from one source (issue 31): pyproject.toml's, shown by every API's OpenAPI document and /healthz,
by `pipelines --version`, and carried by the image (build argument, OCI labels, tags in compose and Kubernetes);
the base image pinned by digest."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from dockerfile_parse import DockerfileParser
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shared.ops.version import VERSION
from testkit.apps import apps
from tools.cli import app as cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def test_the_version_is_pyprojects() -> None:
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"] == VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)


def test_the_image_carries_the_version_and_a_pinned_base() -> None:
    parser = DockerfileParser(fileobj=(DEPLOY / "Dockerfile").open("rb"))
    args = [i["value"] for i in parser.structure if i["instruction"] == "ARG"]
    assert f"VERSION={VERSION}" in args
    base = next(a.split("=", 1)[1] for a in args if a.startswith("PYTHON_BASE="))
    assert re.fullmatch(r"python:3\.11-slim-\w+@sha256:[0-9a-f]{64}", base), "the base is pinned by digest"
    assert [i["value"].split()[0] for i in parser.structure if i["instruction"] == "FROM"] == ["${PYTHON_BASE}"] * 2
    labels = " ".join(i["value"] for i in parser.structure if i["instruction"] == "LABEL")
    for key in ("title", "version", "revision", "description", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert 'org.opencontainers.image.version="${VERSION}"' in labels


def test_compose_and_kubernetes_run_this_version() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    ours = {s["image"] for s in compose["services"].values() if s["image"].startswith("pipelines:")}
    assert ours == {f"pipelines:{VERSION}"}
    images = set(re.findall(r"image: (\S*pipelines:\S+)", (DEPLOY / "k8s" / "pipelines.yaml").read_text()))
    assert images and {i.rsplit(":", 1)[1] for i in images} == {VERSION}


def test_every_openapi_document_and_healthz_say_the_version() -> None:
    for name, app in apps().items():
        if app.openapi_url:  # the board serves no document
            assert app.openapi()["info"]["version"] == VERSION, name
        assert TestClient(app).get("/healthz").json() == {"status": "ok", "version": VERSION}, name


def test_the_cli_prints_its_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"pipelines {VERSION}"
