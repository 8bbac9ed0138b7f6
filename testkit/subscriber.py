"""docs/SUBSCRIBING.md's Python consumer as a team runs it: its code, and a virtual environment with what the doc's
install line installs, made once in the ignored cache (keyed by that line, so a new pin makes a new one) for the
tests that run the consumer against a stack. tests/integration/test_subscribing_doc.py makes a fresh one instead:
that test proves the install line itself."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from shared.ops.stack import ROOT

DOC = ROOT / "docs" / "SUBSCRIBING.md"


def blocks(language: str) -> list[str]:
    """The doc's fenced blocks of ``language``, in order."""
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def install_line() -> str:
    """The doc's pinned install line (``python3 -m pip install 'pkg==x' …``)."""
    line = next(b for b in blocks("bash") if "pip install" in b).strip()
    assert line.startswith("python3 -m pip install ") and "==" in line, line
    return line


def consumer_code() -> str:
    """The doc's consumer: its first ``python`` block."""
    return blocks("python")[0]


def make_venv(where: Path) -> Path:
    """A new virtual environment at ``where`` with what the install line installs (pip's cache in the ignored
    .cache); its python."""
    python = shutil.which("python3.11") or sys.executable
    subprocess.run([python, "-m", "venv", str(where)], check=True, timeout=120)
    line = install_line().replace("python3 -m pip", f"{where}/bin/python -m pip", 1)
    env = os.environ | {"PIP_CACHE_DIR": str(ROOT / ".cache" / "pip"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(["bash", "-c", f"{line} --quiet"], check=True, timeout=300, env=env)
    return where / "bin" / "python"


def cached_python() -> Path:
    """The python of the cached environment, made on first use (one maker at a time: xdist workers share it)."""
    key = hashlib.sha256(install_line().encode()).hexdigest()[:12]
    where = ROOT / ".cache" / f"subscriber-venv-{key}"
    where.parent.mkdir(parents=True, exist_ok=True)
    with open(where.parent / f"subscriber-venv-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (where / ".complete").exists():
            shutil.rmtree(where, ignore_errors=True)
            make_venv(where)
            (where / ".complete").touch()
    return where / "bin" / "python"


def consumer_env() -> dict[str, str]:
    """The environment the consumer runs in: this one's, without what points Python at the project's venv."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
