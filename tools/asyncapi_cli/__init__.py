"""The official AsyncAPI CLI (npm ``@asyncapi/cli``, pinned in package.json and package-lock.json beside this file).

``install()`` puts it in the ignored cache (``<cache>/asyncapi-cli-<lock hash>``, as ``scripts/stack setup`` does,
``npm ci --ignore-scripts``): the network once, offline after that. Its anonymous usage metrics are off (a config
file in that folder). ``run(args)`` runs ``asyncapi <args>``; ``validate(paths)`` runs its validate command on each
document in one Node process (``validate-all.cjs``: the CLI takes one file a call and starts slowly).

``python -m tools.asyncapi_cli validate docs/events/leads/asyncapi.json`` (any ``asyncapi`` arguments) installs it if
needed and runs it; ``python -m tools.asyncapi_cli validate-all`` validates every document under docs/events.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from shared.ops import npm

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def cache_dir() -> Path:
    """Where the CLI is installed: named by the lock file's hash, so a new lock installs anew."""
    return npm.cache_dir(HERE, "asyncapi-cli")


def install() -> Path:
    """``npm ci`` into the cache unless already there, its usage metrics off."""
    return npm.install(HERE, "asyncapi-cli", lambda home: (home / "analytics.json").write_text(json.dumps(_NO_METRICS)))


_NO_METRICS = {"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "pipelines"}


def environment(home: Path) -> dict[str, str]:
    """The CLI's environment: no usage metrics sent (they would also wait on the network)."""
    return {**os.environ, "ASYNCAPI_METRICS_CONFIG_PATH": str(home / "analytics.json"), "NO_COLOR": "1"}


def run(args: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``asyncapi <args>``, its output captured as text."""
    home = install()
    binary = home / "node_modules" / ".bin" / "asyncapi"
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [str(binary), *args], env=environment(home), capture_output=True, text=True, **kwargs
    )


def validate(paths: Sequence[Path | str], flags: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """The CLI's ``validate`` on every document, in one Node process; returncode 1 when any is invalid."""
    home = install()
    script = HERE / "validate-all.cjs"
    return subprocess.run(
        ["node", str(script), str(home), *flags, "--", *map(str, paths)],
        env=environment(home),
        capture_output=True,
        text=True,
        check=False,
    )


def documents() -> list[Path]:
    """Every AsyncAPI document under docs/events."""
    return sorted((ROOT / "docs" / "events").glob("*/asyncapi.json"))
