"""The legal handover (docs/legal.md, "Legal handover"): the limitation computation, the gate's
refusals with their rule ids, and a BagIt bag that validates, whose notices match the hashes the
ledger recorded at send time, that is byte-identical when built twice, and whose ``litigation``
suppression stops a queued SMS."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dunning.channels.letter.fonts import CjkFont
from dunning.channels.letter.law_firms import LawFirms
from dunning.compliance import ComplianceGate, load_packs
from dunning.compliance.legal import limitation
from dunning.intents import Channel, ContactIntent, Stage, TemplateRef
from dunning.ledger import Ledger
from dunning.ops.handover import Handover, build_handover, verify_bag
from dunning.producers.accounts import Account, account_from_row
from dunning.records import IntentState
from tests import pdfcheck
from tests.factories import make_intent
from tests.unit.test_letter_pdf import font

__all__ = ["font"]  # fixture, imported for pytest

CONFIG = Path(__file__).resolve().parents[2] / "config"
SENT_AT = datetime(2026, 10, 9, 2, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
ROW = {
    "account_id": "CN-H1", "person_id": "P-H1", "name": "赵丽", "timezone": "Asia/Shanghai",
    "locale": "zh-CN", "jurisdiction": "CN", "currency": "CNY", "amount_due": "45000.00",
    "due_date": "2026-06-20", "principal": "40000.00", "interest": "3000.00",
    "penalty_interest": "1500.00", "fees": "500.00", "contract_number": "HT-2025-1",
    "contract_date": "2025-03-18",
}  # fmt: skip


def test_cn_limitation_runs_afresh_from_a_delivered_demand_and_a_part_payment() -> None:
    plain = limitation("CN", due_date=date(2022, 5, 10), as_of=date(2025, 5, 11))
    assert (plain.ends_on, plain.barred) == (date(2025, 5, 10), True)
    kept = limitation(
        "CN", due_date=date(2022, 5, 10), as_of=date(2025, 5, 11),
        demands=(date(2023, 1, 5),), last_payment_date=date(2023, 8, 1),
    )  # fmt: skip
    assert (kept.ends_on, kept.barred) == (date(2026, 8, 1), False)
    assert any("2023-01-05: interrupted" in step for step in kept.steps)
    assert kept.steps[-1].startswith("2026-08-01: last day")


def test_us_limitation_comes_from_the_book_and_unknown_is_not_a_pass() -> None:
    unknown = limitation("US", due_date=date(2020, 1, 1), as_of=date(2026, 1, 1))
    assert unknown.ends_on is None
    barred = limitation("US", due_date=date(2020, 1, 1), as_of=date(2026, 1, 1),
                        statute_of_limitations=date(2025, 12, 31))  # fmt: skip
    assert barred.barred


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")


def _for(account: Account, channel: Channel, step: str, template: str) -> ContactIntent:
    intent = make_intent(channel, account_id=account.account_id, step=step, created_at=SENT_AT)
    return dataclasses.replace(
        intent, person_id=account.person_id, debt_id=account.account_id, stage=Stage.MID,
        template=TemplateRef(template, "zh-CN"),
    )  # fmt: skip


def _send_letter(ledger: Ledger, account: Account, letters: Path) -> tuple[ContactIntent, str]:
    letter = _for(account, Channel.LETTER, "mid.letter", "lawyer_letter")
    ledger.record_published([letter], now=SENT_AT)
    attempt = ledger.claim(letter, worker="t", now=SENT_AT, reconcile_after_s=900).attempt
    pdf = b"%PDF-1.4 the letter as sent\n"
    letters.mkdir(parents=True, exist_ok=True)
    (letters / f"{letter.intent_id}.pdf").write_bytes(pdf)
    digest = hashlib.sha256(pdf).hexdigest()
    ledger.record_sent(letter.intent_id, attempt, provider_ref=f"{letter.intent_id}.pdf",
                       status="dispatched", detail={"sha256": digest}, now=SENT_AT)  # fmt: skip
    return letter, digest


def _send_email(ledger: Ledger, account: Account, emails: Path) -> ContactIntent:
    email = _for(account, Channel.EMAIL, "mid.email", "mid_reminder")
    ledger.record_published([email], now=SENT_AT)
    attempt = ledger.claim(email, worker="t", now=SENT_AT, reconcile_after_s=900).attempt
    raw = b"Message-ID: <x@example.com>\r\n\r\nthe email as sent\r\n"
    emails.mkdir(parents=True, exist_ok=True)
    (emails / f"{email.intent_id}.eml").write_bytes(raw)
    ledger.record_sent(email.intent_id, attempt, provider_ref="<x@example.com>", status="accepted",
                       detail={"sha256": hashlib.sha256(raw).hexdigest()}, now=SENT_AT)  # fmt: skip
    return email


def _build(
    ledger: Ledger, account: Account, tmp_path: Path, outbox: str, font: CjkFont | None = None
) -> Handover:
    engagement = LawFirms.load(CONFIG / "law_firms.toml").for_jurisdiction("CN")
    return build_handover(
        ledger, account, engagement, documents=tmp_path / "documents",
        letters=tmp_path / "letters", outbox=tmp_path / outbox, as_of=NOW.date(), now=NOW,
        font=font, emails=tmp_path / "emails",
    )  # fmt: skip


def _files(bag: Path) -> dict[str, bytes]:
    return {str(p.relative_to(bag)): p.read_bytes() for p in sorted(bag.rglob("*")) if p.is_file()}


def test_an_eligible_account_yields_a_valid_reproducible_bag(
    ledger: Ledger, tmp_path: Path, font: CjkFont
) -> None:
    account = account_from_row(ROW)
    contract = tmp_path / "documents" / "CN-H1" / "contract-HT-2025-1.pdf"
    contract.parent.mkdir(parents=True)
    contract.write_bytes(b"%PDF-1.4 contract\n")
    letter, digest = _send_letter(ledger, account, tmp_path / "letters")
    email = _send_email(ledger, account, tmp_path / "emails")
    queued = _for(account, Channel.SMS, "late.sms", "late_reminder")
    ledger.record_published([queued], now=NOW - timedelta(hours=1))

    first = _build(ledger, account, tmp_path, "one", font)
    assert first.refusals == ()
    second = _build(ledger, account, tmp_path, "two", font)
    assert _files(first.bag) == _files(second.bag)
    assert verify_bag(first.bag, ledger) == []
    payload = first.bag / "data"
    assert (payload / "notices" / f"{letter.intent_id}.pdf").is_file()
    assert hashlib.sha256((payload / "notices" / f"{letter.intent_id}.pdf").read_bytes()
                          ).hexdigest() == digest  # fmt: skip
    assert (payload / "documents" / "contract-HT-2025-1.pdf").is_file()
    assert (payload / "notices" / f"{email.intent_id}.eml").is_file()
    assert b'"schema": "dunning.handover/1"' in (payload / "manifest.json").read_bytes()
    assert b"Asia/Shanghai" in (payload / "history.json").read_bytes()
    assert b"+08:00" in (payload / "history.csv").read_bytes()
    summary = "".join(pdfcheck.text((payload / "account.pdf").read_bytes()).split())
    assert "HT-2025-1" in summary
    assert "赵丽" in summary

    gate = ComplianceGate(load_packs(CONFIG / "compliance.toml"), jitter_s=0)
    claim = ledger.claim(queued, worker="t", now=NOW, reconcile_after_s=900,
                         gate=lambda h: gate.decide(queued, h, NOW))  # fmt: skip
    assert claim.kind == "gated"
    assert ledger.get_state(queued.intent_id) is IntentState.SUPPRESSED

    tampered = payload / "notices" / f"{letter.intent_id}.pdf"
    tampered.write_bytes(b"%PDF-1.4 another letter\n")
    assert verify_bag(first.bag, ledger)


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"disputed": "true"}, "CN.legal.dispute_open"),
        ({"bankrupt": "true"}, "CN.legal.bankrupt"),
        ({"attorney_represented": "true"}, "CN.legal.attorney_represented"),
        ({"paid": "true"}, "CN.legal.paid"),
        ({"due_date": "2022-06-20"}, "CN.legal.time_barred.188"),
        ({}, "CN.legal.documents_missing"),
    ],
)
def test_refusals_name_their_rule(
    ledger: Ledger, tmp_path: Path, changes: dict[str, str], rule: str
) -> None:
    account = account_from_row({**ROW, **changes})
    if changes:
        contract = tmp_path / "documents" / "CN-H1" / "contract.pdf"
        contract.parent.mkdir(parents=True)
        contract.write_bytes(b"%PDF-1.4 contract\n")
    _send_letter(ledger, account, tmp_path / "letters")
    result = _build(ledger, account, tmp_path, "out")
    assert [r.rule_id for r in result.refusals] == [rule]
    assert result.bag is None
    assert not (tmp_path / "out").exists()
