"""The one version of Pipelines: ``pyproject.toml``'s ``[project] version``.

Everything that shows a version reads it from here: each API's OpenAPI document (``info.version``), ``/healthz``,
``pipelines --version``, and the image's tag and OCI labels (``deploy/Dockerfile`` takes it as a build argument;
``tests/deploy`` checks the manifests name it). Installed, it is the package's metadata; from a checkout that was
not installed, the file itself.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _version() -> str:
    if PYPROJECT.is_file():  # a checkout: the file is the source, even when an older build is installed
        return str(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"])
    return metadata.version("pipelines")


VERSION = _version()
