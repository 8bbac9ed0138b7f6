"""`make test` runs every test directory: each one that holds tests is in PARALLEL or ALONE."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_every_test_directory_is_in_the_test_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    named = set()
    for var in ("PARALLEL", "ALONE"):
        m = re.search(rf"^{var} := (.+)$", makefile, re.M)
        assert m, var
        named |= set(m.group(1).split())
    holding = {f"tests/{d.name}" for d in (ROOT / "tests").iterdir() if d.is_dir() and any(d.rglob("test_*.py"))}
    assert holding <= named, f"not run by make test: {sorted(holding - named)}"
    assert named <= holding, f"named but holding no tests: {sorted(named - holding)}"
