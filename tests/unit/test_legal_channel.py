"""The strategy's ``legal`` step (docs/legal.md, "Legal handover"): the gate lets a legal intent
through, and its "send" builds a valid bag and records the litigation hold for an eligible late
account, or refuses a time-barred one with its rule id and writes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from dunning.channels.letter.law_firms import LawFirms
from dunning.clock import ManualClock
from dunning.compliance import ComplianceGate, load_packs
from dunning.errors import PermanentChannelError
from dunning.intents import Channel, ContactIntent, Stage, TemplateRef
from dunning.ledger import Ledger
from dunning.ops.handover import verify_bag
from dunning.ops.legal_channel import HandoverPaths, LegalChannel
from dunning.producers.accounts import Account, account_from_row
from dunning.producers.evaluator import evaluate
from dunning.producers.outcomes import NoOutcomes
from dunning.producers.strategy import parse_strategy
from dunning.records import IntentState
from tests.factories import make_intent
from tests.unit.test_evaluator import AS_OF, account, step
from tests.unit.test_evaluator import NOW as EVALUATED_AT
from tests.unit.test_handover import CONFIG, NOW, ROW, _send_letter

__all__: list[str] = []


def _evaluate(**changes: bool) -> list[tuple[Channel, str | None]]:
    legal = step("late.legal", "late", "legal", [1])
    legal["template"] = "legal_handover"
    strategy = parse_strategy({
        "strategy": {"name": "test"},
        "stages": {"early": {"from_days": 1, "to_days": 60}, "late": {"from_days": 61}},
        "variants": {"champion": {"weight": 1, "steps": [legal]}},
    })  # fmt: skip
    [result] = evaluate([account(61, **changes)], strategy, as_of=AS_OF, now=EVALUATED_AT,
                        outcomes=NoOutcomes())  # fmt: skip
    return [(i.channel, None) for i in result.intents] + [
        (s.channel, s.rule_id) for s in result.skipped
    ]


def test_the_legal_step_is_an_intent_of_its_own_channel() -> None:
    assert _evaluate() == [(Channel.LEGAL, None)]


@pytest.mark.parametrize("flag", ["paid", "disputed", "bankrupt", "cease"])
def test_flags_skip_the_legal_step_like_a_contact_step(flag: str) -> None:
    assert _evaluate(**{flag: True}) == [(Channel.LEGAL, "account_flag")]


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")


def _legal_intent(account: Account) -> ContactIntent:
    intent = make_intent(Channel.LEGAL, account_id=account.account_id, step="late.legal",
                         created_at=NOW)  # fmt: skip
    return dataclasses.replace(
        intent, person_id=account.person_id, debt_id=account.account_id, stage=Stage.LATE,
        template=TemplateRef("legal_handover", "zh-CN"),
    )  # fmt: skip


def _channel(ledger: Ledger, account: Account, tmp_path: Path) -> LegalChannel:
    paths = HandoverPaths(documents=tmp_path / "documents", letters=tmp_path / "letters",
                          outbox=tmp_path / "outbox")  # fmt: skip
    firms = LawFirms.load(CONFIG / "law_firms.toml")
    book = {account.account_id: account}
    return LegalChannel(ledger, firms, book.get, paths, ManualClock(NOW))


def _contract(tmp_path: Path) -> None:
    contract = tmp_path / "documents" / "CN-H1" / "contract-HT-2025-1.pdf"
    contract.parent.mkdir(parents=True)
    contract.write_bytes(b"%PDF-1.4 contract\n")


def test_an_eligible_late_accounts_legal_intent_yields_a_bag_and_the_litigation_hold(
    ledger: Ledger, tmp_path: Path
) -> None:
    account = account_from_row(ROW)
    _contract(tmp_path)
    _send_letter(ledger, account, tmp_path / "letters")
    intent = _legal_intent(account)
    ledger.record_published([intent], now=NOW)
    gate = ComplianceGate(load_packs(CONFIG / "compliance.toml"), jitter_s=0)
    claim = ledger.claim(intent, worker="t", now=NOW, reconcile_after_s=900,
                         gate=lambda h: gate.decide(intent, h, NOW))  # fmt: skip
    assert claim.kind != "gated"

    result = asyncio.run(_channel(ledger, account, tmp_path).send(intent, attempt=1))

    bag = tmp_path / "outbox" / "ENG-CN-2026-0001" / "CN-H1"
    assert result.status == "handed_over"
    assert result.detail["bag"] == str(bag)
    assert verify_bag(bag, ledger) == []
    held = ledger.history(account.person_id, since=NOW - timedelta(days=1)).suppressions
    assert [s.reason for s in held if s.debt_id == account.account_id] == ["litigation"]

    # Handed over: the hold keeps a later legal step from building a second bag.
    again = dataclasses.replace(intent, intent_id="legal-again", step="late.legal.again")
    ledger.record_published([again], now=NOW)
    claim = ledger.claim(again, worker="t", now=NOW, reconcile_after_s=900,
                         gate=lambda h: gate.decide(again, h, NOW))  # fmt: skip
    assert claim.kind == "gated"
    assert ledger.get_state(again.intent_id) is IntentState.SUPPRESSED


def test_a_time_barred_accounts_legal_intent_is_refused_with_its_rule_id(
    ledger: Ledger, tmp_path: Path
) -> None:
    account = account_from_row({**ROW, "due_date": "2022-06-20"})
    _contract(tmp_path)
    _send_letter(ledger, account, tmp_path / "letters")

    with pytest.raises(PermanentChannelError) as refused:
        asyncio.run(_channel(ledger, account, tmp_path).send(_legal_intent(account), attempt=1))

    assert refused.value.provider_code == "CN.legal.time_barred.188"
    assert not (tmp_path / "outbox").exists()
    held = ledger.history(account.person_id, since=NOW - timedelta(days=1)).suppressions
    assert [s.reason for s in held] == []


def test_a_legal_intent_before_any_lawyer_letter_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    account = account_from_row(ROW)
    _contract(tmp_path)
    sms = dataclasses.replace(_legal_intent(account), channel=Channel.SMS, step="late.sms",
                              intent_id="sms-1")  # fmt: skip
    ledger.record_published([sms], now=NOW)

    with pytest.raises(PermanentChannelError) as refused:
        asyncio.run(_channel(ledger, account, tmp_path).send(_legal_intent(account), attempt=1))

    assert refused.value.provider_code == "CN.legal.no_demand"
    assert not (tmp_path / "outbox").exists()
