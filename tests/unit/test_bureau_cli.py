"""`dunning bureau export` and `dunning report bureau` on a ledger the bureau step wrote."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli.main import app
from dunning.ledger import Ledger
from tests.bureau_rig import NOV, BureauRig, bureau_intent, us_account


@pytest.fixture
async def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.open(url)
    try:
        rig = BureauRig(ledger, NOV)
        rig.notice("U1", NOV - timedelta(days=20))
        assert await rig.furnish(bureau_intent("U1", NOV, 111, us_account("U1"))) == "sent"
        second = bureau_intent("U2", NOV, 95, us_account("U2", "third_party"))
        assert await rig.furnish(second) == "gated"
    finally:
        ledger.close()
    return url


def test_export_writes_the_file_and_manifest_and_prints_where(
    database: str, tmp_path: Path
) -> None:
    out = tmp_path / "bureau"
    args = ["bureau", "export", "--cycle", "2026-11", "--format", "metro2", "--out", str(out),
            "--database-url", database]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest-2026-11-metro2.json").read_text("utf-8"))
    assert manifest["records"] == 1
    assert [e["account_id"] for e in manifest["excluded"]] == ["U2"]
    assert manifest["sha256"] in result.output
    assert (out / "metro2-2026-11.txt").is_file()


def test_the_report_counts_by_status_and_rule(database: str) -> None:
    args = ["report", "bureau", "--cycle", "2026-11", "--json", "--database-url", database]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["by_status"] == {"80": 1}
    assert report["excluded_by_rule"] == {"US.stage.late.1006.30a": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bureau", "export", "--cycle", "2026-13", "--format", "metro2", "--out", "x"],
         "--cycle: cycle '2026-13' is not YYYY-MM"),
        (["bureau", "export", "--cycle", "2026-11", "--format", "xml", "--out", "x"],
         "--format: 'xml' is not one of metro2, cn-csv"),
        (["report", "bureau", "--cycle", "11/2026"], "--cycle: cycle '11/2026' is not YYYY-MM"),
    ],
)  # fmt: skip
def test_bad_options_exit_2_naming_the_option(args: list[str], message: str, database: str) -> None:
    result = CliRunner().invoke(app, [*args, "--database-url", database])
    assert result.exit_code == 2
    assert message in result.output


def test_help_teaches_with_an_example() -> None:
    result = CliRunner().invoke(app, ["bureau", "export", "--help"])
    assert result.exit_code == 0
    assert "dunning bureau export --cycle 2026-11 --format metro2" in result.output
