"""The ledger package is the only one that reads or writes the ledger's tables.

Everything else calls a :class:`dunning.ledger.Ledger` method: the engine is not handed out,
and SQLAlchemy and the table definitions are imported outside ``dunning/ledger/`` only where
the reason below says they do not touch the ledger's rows.
"""

from __future__ import annotations

import ast
from pathlib import Path

from dunning.ledger import Ledger

PACKAGE = Path(__file__).resolve().parents[2] / "dunning"

#: Modules outside dunning/ledger/ that may import SQLAlchemy, and why.
SQLALCHEMY_ALLOWED = {
    "producers/sources.py": "reads the lender's own database (the SQL account source)",
    "cli/common.py": "checks that the ledger database answers before a Ledger is made on it",
    "ops/checks.py": "`dunning config check` runs SELECT 1 against the database",
    "loadtest/isolation.py": "creates and drops the load test's own PostgreSQL schema",
}
#: Modules outside dunning/ledger/ that may import the table definitions, and why.
SCHEMA_ALLOWED = {
    "receipts/events.py": "refuses webhook values longer than the ledger's columns",
    "receipts/optouts.py": "refuses webhook values longer than the ledger's columns",
}


def _outside_ledger() -> dict[str, ast.Module]:
    return {
        path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] != "ledger"
    }


def _imported_modules(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_ledger_does_not_hand_out_its_engine() -> None:
    assert not hasattr(Ledger, "engine")
    uses = {
        name: node.lineno
        for name, tree in _outside_ledger().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in {"engine", "_engine"}
    }
    assert uses == {}


def test_sqlalchemy_is_imported_outside_the_ledger_only_where_allowed() -> None:
    importers = {
        name
        for name, tree in _outside_ledger().items()
        if any(m.split(".")[0] == "sqlalchemy" for m in _imported_modules(tree))
    }
    assert importers <= set(SQLALCHEMY_ALLOWED), sorted(importers - set(SQLALCHEMY_ALLOWED))


def test_the_ledger_tables_are_imported_outside_the_ledger_only_where_allowed() -> None:
    importers = {
        name
        for name, tree in _outside_ledger().items()
        if "dunning.ledger.schema" in _imported_modules(tree)
    }
    assert importers <= set(SCHEMA_ALLOWED), sorted(importers - set(SCHEMA_ALLOWED))
