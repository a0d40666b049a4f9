"""Hold the house's room sizes: no module over 400 lines, no function over 60.

Run by `make lint`. Prints every offender as `path:line: what` and exits 1 if there is any.
A function's length runs from its `def` line to its last line, docstring included.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "syndicate"
# Data, not logic: migrations are frozen history; the demo vocabulary is the demo's word lists.
EXEMPT_MODULES = ("store/migrations/", "demo/vocabulary.py")


def offenders(package: Path = PACKAGE) -> list[str]:
    """Every module and function of the package over its size limit, one line each."""
    found: list[str] = []
    root = package.parent.parent  # the repository, above src/
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative.startswith(EXEMPT_MODULES):
            continue
        source = path.read_text(encoding="utf-8")
        shown = path.relative_to(root).as_posix()
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{shown}:1: module has {lines} lines (limit {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source, filename=shown)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(
                        f"{shown}:{node.lineno}: {node.name} has {length} lines"
                        f" (limit {MAX_FUNCTION_LINES})"
                    )
    return found


def main() -> int:
    """Print the offenders; fail if there are any."""
    found = offenders()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
