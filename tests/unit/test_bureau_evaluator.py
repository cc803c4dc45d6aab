"""The evaluator and the bureau step: facts on the intent, flags and stop outcomes skip only
the contact steps, and a refusing pre-check still publishes the record's intent."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from dunning.intents import Channel, ContactIntent, decode_intent, encode_intent
from dunning.producers.accounts import Account, BureauColumns
from dunning.producers.evaluator import Evaluation, evaluate
from dunning.producers.outcomes import InMemoryOutcomes, NoOutcomes, OutcomeKind
from dunning.producers.strategy import Strategy, parse_strategy
from dunning.records import GateDecision
from tests.unit.test_evaluator import AS_OF, NOW, account, step


def strategy() -> Strategy:
    bureau = step("late.bureau", "late", "bureau", [1])
    bureau["template"] = "credit_bureau_report"
    return parse_strategy({
        "strategy": {"name": "test"},
        "stages": {"early": {"from_days": 1, "to_days": 60}, "late": {"from_days": 61}},
        "variants": {"champion": {"weight": 1, "steps": [
            step("late.sms", "late", "sms", [1]), bureau,
        ]}},
    })  # fmt: skip


def late(**changes: Any) -> Account:
    return account(61, **changes)


def run(*accounts: Account, **kwargs: Any) -> list[Evaluation]:
    kwargs.setdefault("outcomes", NoOutcomes())
    return list(evaluate(accounts, strategy(), as_of=AS_OF, now=NOW, **kwargs))


def bureau_intent(evaluation: Evaluation) -> ContactIntent:
    (intent,) = [i for i in evaluation.intents if i.channel is Channel.BUREAU]
    return intent


def test_the_bureau_intent_carries_the_account_facts_through_the_codec() -> None:
    columns = BureauColumns("credit_card", None, date(2024, 1, 2), Decimal("20000.00"), "REV")
    [result] = run(late(bureau=columns, last_payment_date=date(2026, 9, 1)))
    intent = bureau_intent(result)
    assert decode_intent(encode_intent(intent)) == intent
    facts = intent.facts
    assert facts is not None
    assert (facts.account_type, facts.terms, facts.credit_limit) == (
        "credit_card", "REV", Decimal("20000.00"),
    )  # fmt: skip
    assert facts.due_date == AS_OF - timedelta(days=61)
    assert facts.last_payment_date == date(2026, 9, 1)
    assert [i.facts for i in result.intents if i.channel is Channel.SMS] == [None]


def test_a_third_party_account_defaults_to_a_collection() -> None:
    [result] = run(late(collector_role="third_party"))
    facts = bureau_intent(result).facts
    assert facts is not None
    assert (facts.collector_role, facts.account_type) == ("third_party", "collection")


@pytest.mark.parametrize("flag", ["paid", "disputed", "bankrupt", "cease"])
def test_flags_skip_the_contact_steps_but_not_the_record(flag: str) -> None:
    [result] = run(late(**{flag: True}))
    assert [i.channel for i in result.intents] == [Channel.BUREAU]
    assert [(s.channel, s.rule_id) for s in result.skipped] == [(Channel.SMS, "account_flag")]
    facts = bureau_intent(result).facts
    assert facts is not None
    assert (facts.paid, facts.disputed) == (flag == "paid", flag == "disputed")


def test_stop_outcomes_skip_the_contact_steps_but_not_the_record() -> None:
    outcomes = InMemoryOutcomes()
    outcomes.add("A-1", OutcomeKind("paid"), NOW - timedelta(days=3))
    [result] = run(late(), outcomes=outcomes)
    assert [i.channel for i in result.intents] == [Channel.BUREAU]
    assert [s.reason for s in result.skipped] == ["outcome: paid"]


def test_a_refusing_precheck_still_publishes_the_record_for_the_worker_to_refuse() -> None:
    def gate(intent: ContactIntent) -> GateDecision:
        return GateDecision("refuse", "US.stage.late.1006.30a", "no notice")

    [result] = run(late(), precheck=gate)
    assert [i.channel for i in result.intents] == [Channel.BUREAU]
    assert [s.rule_id for s in result.skipped] == ["US.stage.late.1006.30a"]


def test_the_book_columns_reach_the_account(tmp_path: Any) -> None:
    from dunning.producers.accounts import account_from_row

    row = {
        "account_id": "A-9", "person_id": "P-9", "name": "Jane Doe", "timezone": "UTC",
        "locale": "en-US", "jurisdiction": "US", "currency": "USD", "amount_due": "10.00",
        "due_date": "2026-09-01", "account_type": "revolving_loan", "terms": "loc",
        "credit_limit": "900.00", "date_opened": "2025-02-03", "charged_off": "yes",
        "bureau_delete": "error", "original_creditor": "Acme Bank",
    }  # fmt: skip
    bureau = account_from_row(row).bureau
    assert dataclasses.astuple(bureau) == (
        "revolving_loan", "Acme Bank", date(2025, 2, 3), Decimal("900.00"), "LOC", True, "error",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("account_type", "mortgage", "account_type: 'mortgage' is not one of"),
        ("terms", "7Y", "terms: '7Y' is not a number of months"),
        ("bureau_delete", "fraud", "bureau_delete: 'fraud' is not one of"),
        ("credit_limit", "1,000", "credit_limit:"),
        ("date_opened", "03/02/2025", "date_opened:"),
    ],
)
def test_bad_bureau_columns_are_named(column: str, value: str, message: str) -> None:
    from dunning.producers.accounts import RowError, account_from_row

    row = {
        "account_id": "A-9", "person_id": "P-9", "name": "Jane Doe", "timezone": "UTC",
        "locale": "en-US", "jurisdiction": "US", "currency": "USD", "amount_due": "10.00",
        "due_date": "2026-09-01", column: value,
    }  # fmt: skip
    with pytest.raises(RowError, match=message.replace("(", r"\(")):
        account_from_row(row)


def test_a_jurisdiction_without_furnishing_rules_gets_no_record_intent() -> None:
    def gate(intent: ContactIntent) -> GateDecision:
        return GateDecision("refuse", "UK.bureau.no_rules", "nothing is reported")

    [result] = run(late(), precheck=gate)
    assert result.intents == ()
    assert {s.rule_id for s in result.skipped} == {"UK.bureau.no_rules"}
