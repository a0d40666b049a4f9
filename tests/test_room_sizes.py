"""`make lint`'s room-size check: modules over 400 lines and functions over 60 are named."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_sizes", ROOT / "tools" / "check_sizes.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _function(name: str, lines: int) -> str:
    """A function of exactly `lines` lines, def line and docstring included."""
    body = "".join(f"    x{n} = {n}\n" for n in range(lines - 2))
    return f'def {name}():\n    """Doc."""\n{body}'


def test_the_source_tree_holds_the_limits() -> None:
    """Every module of the package and every function in it is within its limit today."""
    assert _checker().offenders() == []


def test_long_modules_and_functions_are_named_with_their_place(tmp_path: Path) -> None:
    """A 61-line function and a 401-line module are reported; 60 and 400 lines pass."""
    check = _checker()
    package = tmp_path / "src" / "syndicate"
    package.mkdir(parents=True)
    (package / "fits.py").write_text(_function("just_fits", 60) + "\n" * (400 - 60))
    (package / "big.py").write_text(_function("too_long", 61) + "\n" * (401 - 61))
    found = check.offenders(package)
    assert found == [
        "src/syndicate/big.py:1: module has 401 lines (limit 400)",
        "src/syndicate/big.py:1: too_long has 61 lines (limit 60)",
    ]


def test_migrations_and_the_demo_vocabulary_are_exempt(tmp_path: Path) -> None:
    """Frozen history and the demo's word lists may be as long as they need."""
    check = _checker()
    package = tmp_path / "src" / "syndicate"
    (package / "store" / "migrations" / "versions").mkdir(parents=True)
    (package / "demo").mkdir()
    long_module = _function("upgrade", 80) + "\n" * 500
    (package / "store" / "migrations" / "versions" / "0001_initial.py").write_text(long_module)
    (package / "demo" / "vocabulary.py").write_text("\n" * 600)
    assert check.offenders(package) == []
