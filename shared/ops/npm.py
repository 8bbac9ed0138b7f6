"""npm packages the tools and tests run (the AsyncAPI CLI, the test OpenID Provider), installed into the ignored
cache as ``scripts/stack setup`` does: ``npm ci --ignore-scripts`` of the package.json and package-lock.json committed
in ``package_dir``, into ``<cache>/<name>-<lock hash>`` (a new lock installs anew); the network once, offline after."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from shared.ops.stack import ROOT

NPM_CI = ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]


def cache_dir(package_dir: Path, name: str) -> Path:
    digest = hashlib.sha256((package_dir / "package-lock.json").read_bytes()).hexdigest()[:12]
    return Path(os.environ.get("PIPELINES_CACHE_DIR") or ROOT / ".cache") / f"{name}-{digest}"


def install(package_dir: Path, name: str, after: Callable[[Path], object] | None = None) -> Path:
    """``npm ci`` into the cache unless already there (one installer at a time: pytest-xdist workers share it);
    ``after(home)`` runs once, before the install is marked complete."""
    home = cache_dir(package_dir, name)
    if (home / ".complete").exists():
        return home
    if shutil.which("npm") is None:
        raise RuntimeError("npm is missing: run scripts/stack setup (it installs Node from Debian when needed)")
    home.mkdir(parents=True, exist_ok=True)
    with (home.parent / f"{home.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / ".complete").exists():
            for file in ("package.json", "package-lock.json"):
                shutil.copyfile(package_dir / file, home / file)
            subprocess.run(NPM_CI, cwd=home, check=True, stdout=subprocess.DEVNULL)
            if after is not None:
                after(home)
            (home / ".complete").touch()
    return home
