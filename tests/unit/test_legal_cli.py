"""`dunning dispute` and `dunning handover` from the command line: the sample book's CN-100007
disputed and verified, then handed over into a bag that `handover verify` accepts."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from dunning.cli.main import app
from dunning.intents import Channel, Stage, TemplateRef
from dunning.ledger import Ledger
from tests.factories import make_intent

ROOT = Path(__file__).resolve().parents[2]
BOOK = str(ROOT / "config" / "accounts.sample.csv")
SENT_AT = datetime(2026, 10, 20, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in [k for k in os.environ if k.startswith("DUNNING_")]:
        monkeypatch.delenv(key)
    yield
    structlog.reset_defaults()


def invoke(args: list[str], tmp_path: Path) -> tuple[int, str]:
    env = {
        "DUNNING_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "DUNNING_LETTER_OUTBOX": str(tmp_path / "letters"),
        "DUNNING_CONFIG_DIR": str(ROOT / "config"),
        "DUNNING_NOW": "2026-12-01T02:00:00+00:00",
        "DUNNING_LOG_LEVEL": "error",
    }
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.output


def _letter_sent(tmp_path: Path) -> None:
    """CN-100007 (due 2026-09-20, late on 2026-12-01) got its lawyer letter on 20 October."""
    assert invoke(["db", "upgrade"], tmp_path)[0] == 0
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    letter = make_intent(Channel.LETTER, account_id="CN-100007", step="mid.letter",
                         created_at=SENT_AT)  # fmt: skip
    letter = dataclasses.replace(
        letter, person_id="P-CN-5007", debt_id="CN-100007", stage=Stage.MID,
        template=TemplateRef("lawyer_letter", "zh-CN"),
    )  # fmt: skip
    ledger.record_published([letter], now=SENT_AT)
    attempt = ledger.claim(letter, worker="t", now=SENT_AT, reconcile_after_s=900).attempt
    pdf = b"%PDF-1.4 lawyer letter\n"
    (tmp_path / "letters").mkdir()
    (tmp_path / "letters" / f"{letter.intent_id}.pdf").write_bytes(pdf)
    ledger.record_sent(letter.intent_id, attempt, provider_ref="x.pdf", status="dispatched",
                       detail={"sha256": hashlib.sha256(pdf).hexdigest()}, now=SENT_AT)  # fmt: skip
    ledger.close()


def test_dispute_verify_then_handover_build_and_verify(tmp_path: Path) -> None:
    _letter_sent(tmp_path)
    code, output = invoke(["dispute", "open", "CN-100007", "--note", "amount"], tmp_path)
    assert code == 0, output
    assert json.loads(output)["rule_id"] == "CN.dispute.objection"
    folders = ["--documents", str(tmp_path / "documents"), "--outbox", str(tmp_path / "outbox")]
    build = ["handover", "build", "CN-100007", "--book", BOOK, "--as-of", "2026-12-01", *folders]
    code, output = invoke(build, tmp_path)
    assert code == 1
    refused = {r["rule_id"] for r in json.loads(output)["refused"]}
    assert refused == {"CN.legal.dispute_open", "CN.legal.documents_missing"}

    statement = tmp_path / "statement.pdf"
    statement.write_bytes(b"%PDF-1.4 statement\n")
    code, output = invoke(["dispute", "verify", "CN-100007", "--document", str(statement)],
                          tmp_path)  # fmt: skip
    assert code == 0, output
    assert json.loads(output)["lifted"] == 1
    (tmp_path / "documents" / "CN-100007").mkdir(parents=True)
    (tmp_path / "documents" / "CN-100007" / "contract.pdf").write_bytes(b"%PDF-1.4 contract\n")
    code, output = invoke(build, tmp_path)
    assert code == 0, output
    result = json.loads(output)
    assert result["refused"] == []
    # Three years after the due date: the letter has no delivered receipt, so no interruption.
    assert result["limitation"]["ends_on"] == "2029-09-20"
    code, output = invoke(["handover", "verify", result["bag"]], tmp_path)
    assert code == 0, output
    assert "valid" in output


def test_from_strategy_takes_late_accounts_whose_lawyer_letter_went(tmp_path: Path) -> None:
    _letter_sent(tmp_path)
    folders = ["--documents", str(tmp_path / "documents"), "--outbox", str(tmp_path / "outbox")]
    code, output = invoke(
        ["handover", "build", "--from-strategy", "--book", BOOK, "--as-of", "2026-12-01",
         *folders], tmp_path,
    )  # fmt: skip
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["account_id"] for line in lines] == ["CN-100007"]
    assert code == 1  # no contract supplied
    assert [r["rule_id"] for r in lines[0]["refused"]] == ["CN.legal.documents_missing"]
