"""Imports between dunning's packages go one way (docs/design.md, "Layout"): cli → workers,
producers → channels, broker, compliance, ledger → intents, errors, settings and the other
top-level modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "dunning"

#: Each package and the packages it may import besides itself and the top-level modules.
#: Entry points (cli, and the modules that run a whole system: ops, loadtest) may import
#: anything below them.
_LOWER = frozenset({"channels", "broker", "compliance", "ledger"})
_MIDDLE = frozenset({"producers", "workers", "receipts", "sandbox"})
#: Use cases over the ledger and the rule packs whose adapters the workers run: field visits
#: (tasks, outcomes recorded from the command line, the webhook and the console) and the
#: credit bureau (records, files).
_VISITS = frozenset({"visits", "bureau"})
ALLOWED: dict[str, frozenset[str]] = {
    **{name: frozenset() for name in _LOWER},
    **dict.fromkeys(_VISITS, _LOWER),
    **dict.fromkeys(_MIDDLE, _LOWER | _VISITS),
    "ops": _LOWER | _MIDDLE | _VISITS,
    "loadtest": _LOWER | _MIDDLE | _VISITS | {"ops"},
    "console": _LOWER | _MIDDLE | _VISITS | {"ops"},
    "cli": _LOWER | _MIDDLE | _VISITS | {"ops", "loadtest", "console"},
}
#: Known edges against the direction, each with its reason (none today).
EXCEPTIONS: set[tuple[str, str]] = set()


def _imported_packages(path: Path) -> set[str]:
    """The ``dunning.<name>`` of every import in ``path`` (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "dunning" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    subpackages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    wrong = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        where = str(path.relative_to(PACKAGE.parent))
        for imported in _imported_packages(path) & subpackages - {package}:
            if imported not in ALLOWED[package] and (where, imported) not in EXCEPTIONS:
                wrong.append(f"{where} imports dunning.{imported}")
    assert wrong == []


def test_every_package_has_its_place() -> None:
    subpackages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert subpackages == set(ALLOWED)


def test_the_top_level_modules_import_no_package_but_the_entry_point() -> None:
    subpackages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    wrong = [
        f"{path.name} imports dunning.{imported}"
        for path in sorted(PACKAGE.glob("*.py"))
        if path.name != "__main__.py"  # `python -m dunning` runs the command line
        for imported in _imported_packages(path) & subpackages
    ]
    assert wrong == []
