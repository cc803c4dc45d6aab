"""A promise to pay holds collection steps until its day; a kept one closes; a broken one sends
the broken_promise follow-up the next day. Runs as `dunning evaluate` does (evaluate, publish
to the ledger, record what became of promises) over a SQLite ledger."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli.main import app
from dunning.intents import PostalAddress
from dunning.ledger import Ledger
from dunning.producers import Account, Evaluation, evaluate
from dunning.producers.ledger_outcomes import LedgerOutcomes
from dunning.producers.promises import LedgerPromises
from dunning.producers.risk_log import RiskLog
from dunning.producers.strategy import Strategy, load_strategy, parse_strategy

CONFIG = Path(__file__).resolve().parents[2] / "config"
DAY0 = date(2026, 11, 20)


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()


@pytest.fixture
def strategy() -> Strategy:
    return load_strategy(CONFIG / "strategy.segmented.toml")


def account(account_id: str, **changes: object) -> Account:
    return dataclasses.replace(
        Account(
            account_id=account_id,
            person_id=f"P-{account_id}",
            name="Zhao Lei",
            phone="+8613800138000",
            email="zhao.lei@example.com",
            address=PostalAddress(("1 Century Avenue",), "Shanghai", "200120", "CN"),
            timezone="Asia/Shanghai",
            locale="zh-CN",
            jurisdiction="CN",
            collector_role="first_party",
            currency="CNY",
            amount_due=Decimal("3000"),
            principal=Decimal("3000"),
            due_date=DAY0 - timedelta(days=4),  # never paid: first-payment default, challenger
        ),
        **changes,
    )


def run(ledger: Ledger, strategy: Strategy, day: date, *book: Account) -> dict[str, Evaluation]:
    now = datetime.combine(day, time(1), tzinfo=UTC)  # 09:00 in Shanghai
    log = RiskLog(ledger, as_of=day, now=now)
    out = {}
    for evaluation in evaluate(
        book, strategy, as_of=day, now=now, outcomes=LedgerOutcomes(ledger),
        promises=LedgerPromises(ledger),
    ):  # fmt: skip
        ledger.record_published(list(evaluation.intents), now=now)
        log.add(evaluation)
        out[evaluation.account.account_id] = evaluation
    log.flush()
    return out


def test_a_promise_holds_steps_then_a_broken_one_is_followed_up_once(
    ledger: Ledger, strategy: Strategy
) -> None:
    first = run(ledger, strategy, DAY0, account("A"))["A"]
    assert [i.step for i in first.intents] == ["early.call"]
    made = datetime.combine(DAY0, time(3), tzinfo=UTC)
    promise = ledger.add_promise(
        "A", None, pay_by=DAY0 + timedelta(days=4), amount=None, source="voice", now=made
    )
    assert promise.intent_id == first.intents[0].intent_id

    held = run(ledger, strategy, DAY0 + timedelta(days=2), account("A"))["A"]  # day 6: a call
    assert held.blocked == "promise_to_pay"
    assert held.intents == ()
    assert [(s.step, s.reason) for s in held.skipped] == [("early.call", "promise_to_pay")]

    broken = run(ledger, strategy, DAY0 + timedelta(days=5), account("A"))["A"]
    assert broken.promise_status == "broken"
    steps = [(i.step, i.template.name, i.channel.value) for i in broken.intents]
    assert steps == [  # day 9 of the challenger's early stage has its call too
        ("early.call", "early_reminder", "voice"),
        ("broken_promise", "broken_promise", "sms"),
    ]
    [closed] = ledger.promises_of(["A"])["A"]
    assert closed.status == "broken"
    assert "promise_broken" in [e.kind for e in ledger.timeline(first.intents[0].intent_id)]

    after = run(ledger, strategy, DAY0 + timedelta(days=6), account("A"))["A"]
    assert "broken_promise" not in [i.step for i in after.intents]

    # The broken promise now counts for the segment rules and the scorecard.
    data = tomllib.loads((CONFIG / "strategy.segmented.toml").read_text(encoding="utf-8"))
    data["segments"].insert(0, {"name": "promise_breakers", "broken_promises": {"from": 1}})
    breakers = parse_strategy(data, "s.toml")
    later = run(ledger, breakers, DAY0 + timedelta(days=7), account("A"))["A"]
    assert later.segment == "promise_breakers"
    assert later.score is not None
    assert any(r.startswith("R05") for r in later.score.reasons)


def test_a_payment_in_the_book_keeps_the_promise(ledger: Ledger, strategy: Strategy) -> None:
    run(ledger, strategy, DAY0, account("B"))
    made = datetime.combine(DAY0, time(3), tzinfo=UTC)
    ledger.add_promise(
        "B", None, pay_by=DAY0 + timedelta(days=4), amount=Decimal("3000"), source="sms", now=made
    )
    paid = account("B", last_payment_date=DAY0 + timedelta(days=1))
    kept = run(ledger, strategy, DAY0 + timedelta(days=2), paid)["B"]
    assert kept.promise_status == "kept"
    assert kept.blocked is None
    [closed] = ledger.promises_of(["B"])["B"]
    assert closed.status == "kept"


def test_a_book_promise_is_recorded_and_followed_up_the_day_after(
    ledger: Ledger, strategy: Strategy
) -> None:
    promised = account("C", promise_to_pay_until=DAY0 + timedelta(days=1))
    assert run(ledger, strategy, DAY0, promised)["C"].blocked == "promise_to_pay"
    [recorded] = ledger.promises_of(["C"])["C"]
    assert (recorded.source, recorded.status) == ("book", "open")
    next_day = run(ledger, strategy, DAY0 + timedelta(days=2), promised)["C"]
    assert "broken_promise" in [i.step for i in next_day.intents]


def test_promise_add_command_records_and_shows_in_the_timeline(
    ledger: Ledger, strategy: Strategy, ledger_url: str
) -> None:
    [intent] = run(ledger, strategy, DAY0, account("D"))["D"].intents
    runner = CliRunner()
    env = {"DUNNING_NOW": "2026-11-20T05:00:00+00:00"}
    added = runner.invoke(
        app,
        ["promise", "add", "D", "--date", "2026-11-25", "--amount", "1500.00",
         "--database-url", ledger_url],
        env=env,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert f"dunning intent show {intent.intent_id}" in added.output
    shown = runner.invoke(
        app, ["intent", "show", intent.intent_id, "--json", "--database-url", ledger_url], env=env
    )
    assert shown.exit_code == 0, shown.output
    assert '"promise_made"' in shown.output
    assert '"pay_by": "2026-11-25"' in shown.output
    too_far = runner.invoke(
        app, ["promise", "add", "D", "--date", "2027-02-01", "--database-url", ledger_url], env=env
    )
    assert too_far.exit_code == 2
    assert "30 days ahead" in too_far.output
