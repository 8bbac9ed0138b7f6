"""checkov, the policy linter the deployment files are checked with (issue 31; decision 0025, "Least privilege and
pod security"), in a virtual environment of its own: ``checkov==3.3.30`` and its dependencies, every version and hash
pinned in ``requirements.txt`` beside this file (``uv pip compile --generate-hashes requirements.in``), never in the
project's ``.venv`` (its dependencies would pin the project's).

``install()`` makes ``<cache>/checkov-<requirements hash>`` (uv when ``scripts/python-env`` has installed it, else the
standard library's venv and pip; ``--require-hashes``): the network once, offline after that; a new requirements
file installs anew. ``scan()`` runs it over the Kubernetes manifests and the Dockerfile and returns its JSON report.

``python -m tools.checkov install`` installs it; ``python -m tools.checkov`` prints what it finds (exit 1 on any).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REQUIREMENTS = HERE / "requirements.txt"
# what it checks, one run each (both at once): the image, and every Kubernetes manifest (compose files are no checkov
# framework). One run given both a file and a directory leaves the file's framework out now and then (3.3.30)
TARGETS = (("dockerfile", "--file", "deploy/Dockerfile"), ("kubernetes", "--directory", "deploy/k8s"))


def cache_dir() -> Path:
    """Named by the requirements' hash: new pins install anew."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    return Path(os.environ.get("PIPELINES_CACHE_DIR") or ROOT / ".cache") / f"checkov-{digest}"


def install() -> Path:
    """The virtual environment, made unless already complete (one installer at a time: test workers share it)."""
    home = cache_dir()
    if (home / ".complete").exists():
        return home
    home.parent.mkdir(parents=True, exist_ok=True)
    with (home.parent / f"{home.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / ".complete").exists():
            shutil.rmtree(home, ignore_errors=True)
            _make(home)
            (home / ".complete").touch()
    return home


def _make(home: Path) -> None:
    uv = ROOT / ".cache" / "uv-venv" / "bin" / "uv"
    quiet = subprocess.DEVNULL
    if uv.exists():
        env = {**os.environ, "UV_CACHE_DIR": str(ROOT / ".cache" / "uv"), "UV_PYTHON_DOWNLOADS": "never"}
        subprocess.run(
            [str(uv), "venv", "-q", "--python", sys.executable, str(home)], check=True, env=env, stdout=quiet
        )
        install = [str(uv), "pip", "install", "-q", "--python", str(home / "bin" / "python")]
        subprocess.run([*install, "--require-hashes", "-r", str(REQUIREMENTS)], check=True, env=env, stdout=quiet)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, stdout=quiet)
        pip = [str(home / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "--require-hashes", "-r", str(REQUIREMENTS)], check=True, stdout=quiet)


def scan() -> list[dict[str, Any]]:
    """checkov over ``TARGETS``: one report per framework (passed, failed and skipped checks). Offline: no
    download of Bridgecrew's extra policies, no guideline mapping fetched."""
    home = install()
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    runs = [
        subprocess.Popen(
            [str(home / "bin" / "checkov"), "--compact", "--output", "json", "--skip-download", "--framework", *target],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for target in TARGETS
    ]
    reports = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        if run.returncode not in (0, 1):  # 1: findings
            raise RuntimeError(f"checkov failed ({run.returncode}): {err[-2000:]}")
        report = json.loads(out)
        reports += report if isinstance(report, list) else [report]
    return reports


def failed(reports: list[dict[str, Any]]) -> list[str]:
    """One line per failed check: its id, name and where."""
    return [
        f"{c['check_id']} {c['check_name']}: {c['file_path']} {c['resource']}"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
