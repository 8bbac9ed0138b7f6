"""``python -m tools.asyncapi_cli ARGS…``: the pinned ``asyncapi`` CLI (installed into the cache if needed).

``validate-all`` validates every document under docs/events in one process (what the contract test runs)."""

from __future__ import annotations

import sys

from tools.asyncapi_cli import documents, run, validate


def main(argv: list[str]) -> int:
    result = validate(documents(), argv[1:]) if argv[:1] == ["validate-all"] else run(argv)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
