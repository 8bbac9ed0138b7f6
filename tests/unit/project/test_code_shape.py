"""The code stays in pieces a reader can hold: no function in services/, shared/ or tools/ over 80 lines but the
flat dispatch tables named below, and no module over 500 lines without a ``# long because:`` line saying why
(docs/decisions/0016-layout.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("services", "shared", "tools")
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500
# Flat dispatch tables: one short arm per case, long only because the cases are many. "path:function".
DISPATCH_TABLES: set[str] = set()


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def long_functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = node.end_lineno - first + 1
            if lines > MAX_FUNCTION_LINES:
                found.append((node.name, lines))
    return found


def test_no_function_is_over_80_lines_but_the_named_dispatch_tables() -> None:
    found = {f"{path.relative_to(ROOT)}:{name}": lines for path in modules() for name, lines in long_functions(path)}
    over = {where: n for where, n in found.items() if where not in DISPATCH_TABLES}
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines (split them, or name a flat dispatch table): {over}"
    assert set(found) >= DISPATCH_TABLES, f"no longer long, remove: {sorted(DISPATCH_TABLES - set(found))}"


def test_no_module_is_over_500_lines_without_saying_why() -> None:
    over = [
        f"{path.relative_to(ROOT)} ({n} lines)"
        for path in modules()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES and "# long because:" not in path.read_text()
    ]
    assert not over, f"modules over {MAX_MODULE_LINES} lines without a `# long because:` line: {over}"


def test_the_check_finds_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(f"@decorated\ndef f():\n{body}\n")
    assert long_functions(tmp_path / "m.py") == [("f", MAX_FUNCTION_LINES + 2)]
