"""``python -m tools.checkov [install]``: install checkov into its cache, or run it over deploy/ (exit 1 on a finding)."""

from __future__ import annotations

import sys

from tools import checkov


def main(argv: list[str]) -> int:
    if argv[:1] == ["install"]:
        print(checkov.install())
        return 0
    findings = checkov.failed(checkov.scan())
    for line in findings:
        print(line)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
