"""The stage evaluator and the intent publisher, on in-memory outcomes and a list publisher."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import structlog
from typer.testing import CliRunner

from dunning.broker import reset_memory_server
from dunning.broker.base import Delivery, OutboundMessage
from dunning.broker.topology import INTENTS_EXCHANGE, Topology
from dunning.cli import main
from dunning.cli.evaluate import parse_interval_s
from dunning.errors import ConfigError
from dunning.intents import (
    Channel,
    ContactIntent,
    PostalAddress,
    Stage,
    decode_intent,
    encode_intent,
)
from dunning.producers.accounts import Account
from dunning.producers.evaluator import Evaluation, EvaluationSummary, evaluate
from dunning.producers.outcomes import InMemoryOutcomes, NoOutcomes, OutcomeKind
from dunning.producers.publisher import IntentPublisher
from dunning.producers.strategy import Strategy, parse_strategy
from dunning.producers.synthetic import synthetic_book
from dunning.records import GateDecision

AS_OF = date(2026, 11, 28)
NOW = datetime(2026, 11, 28, 1, 30, tzinfo=UTC)


def step(step_id: str, stage: str, channel: str, days: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "stage": stage,
        "channel": channel,
        "template": step_id.replace(".", "_"),
        "days": days,
        **extra,
    }


def strategy() -> Strategy:
    return parse_strategy(
        {
            "strategy": {"name": "test"},
            "stages": {
                "pre_due": {"from_days": -5, "to_days": 0},
                "early": {"from_days": 1, "to_days": 30},
                "mid": {"from_days": 31, "to_days": 60},
                "late": {"from_days": 61},
            },
            "variants": {
                "champion": {
                    "weight": 1,
                    "steps": [
                        step("early.sms", "early", "sms", [3]),
                        step("early.email", "early", "email", [3]),
                        step(
                            "early.call",
                            "early",
                            "voice",
                            [3],
                            if_no_delivered={"channel": "sms", "within_days": 2},
                        ),
                        step(
                            "mid.letter",
                            "mid",
                            "letter",
                            [5],
                            legal=True,
                            if_unanswered_calls={"at_least": 3, "within_days": 30},
                        ),
                    ],
                }
            },
        }
    )


def account(days_past_due: int = 3, **changes: Any) -> Account:
    base = Account(
        account_id="A-1",
        person_id="P-1",
        name="张伟",
        phone="+8613800138000",
        email="zhang.wei@example.com",
        address=PostalAddress(("世纪大道100号",), "上海", "200120", "CN", "上海市"),
        timezone="Asia/Shanghai",
        locale="zh-CN",
        jurisdiction="CN",
        collector_role="first_party",
        currency="CNY",
        amount_due=Decimal("1234.50"),
        principal=Decimal("1200"),
        due_date=AS_OF - timedelta(days=days_past_due),
    )
    return dataclasses.replace(base, **changes)


def run(*accounts: Account, **kwargs: Any) -> list[Evaluation]:
    kwargs.setdefault("outcomes", NoOutcomes())
    return list(evaluate(accounts, strategy(), as_of=AS_OF, now=NOW, **kwargs))


def channels(evaluation: Evaluation) -> set[Channel]:
    return {i.channel for i in evaluation.intents}


def test_due_steps_become_valid_intents() -> None:
    [result] = run(account())
    assert result.stage is Stage.EARLY
    assert result.days_past_due == 3
    assert channels(result) == {Channel.SMS, Channel.VOICE, Channel.EMAIL}
    for intent in result.intents:
        assert decode_intent(encode_intent(intent)) == intent  # honours the contract
        assert intent.strategy == "test"
        assert intent.variant == "champion"
        assert intent.not_before is None
        assert intent.template.locale == "zh-CN"
        assert intent.debt_id == "A-1"
    # End of the day after the evaluation day, in Shanghai.
    expires = result.intents[0].expires_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert expires == datetime(2026, 11, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_no_step_due_yields_no_intents() -> None:
    [result] = run(account(days_past_due=4))
    assert result.intents == ()
    assert result.skipped == ()
    [far] = run(account(days_past_due=-30))
    assert far.stage is None


def test_re_evaluation_yields_the_same_ids_and_a_new_day_new_ones() -> None:
    first = {i.intent_id for e in run(account()) for i in e.intents}
    second = {i.intent_id for e in run(account()) for i in e.intents}
    assert first == second
    assert len(first) == 3
    later = dataclasses.replace(account(), due_date=account().due_date + timedelta(days=1))
    next_day = evaluate(
        [later], strategy(), as_of=AS_OF + timedelta(days=1), now=NOW, outcomes=NoOutcomes()
    )
    assert not first & {i.intent_id for e in next_day for i in e.intents}


@pytest.mark.parametrize(
    ("flag", "reason"),
    [
        ("paid", "paid"),
        ("cease", "cease"),
        ("disputed", "dispute"),
        ("bankrupt", "bankrupt"),
        ("deceased", "deceased"),
        ("attorney_represented", "attorney"),
        ("hardship", "hardship"),
    ],
)
def test_blocking_flags_skip_every_step_with_the_reason(flag: str, reason: str) -> None:
    [result] = run(account(**{flag: True}))
    assert result.intents == ()
    assert result.blocked == reason
    assert {s.reason for s in result.skipped} == {reason}
    assert len(result.skipped) == 3


def test_flags_become_suppression_records_even_without_a_step_due() -> None:
    [result] = run(account(days_past_due=4, disputed=True, sms_opt_out=True))
    by_reason = {s.reason: s for s in result.suppressions}
    assert by_reason["dispute"].channel is None
    assert by_reason["dispute"].debt_id == "A-1"
    assert by_reason["opt_out"].channel is Channel.SMS
    assert all(s.source == "account_flag" and s.person_id == "P-1" for s in result.suppressions)


def test_open_promise_blocks_and_a_broken_one_does_not() -> None:
    [kept] = run(account(promise_to_pay_until=AS_OF))
    assert kept.blocked == "promise_to_pay"
    [broken] = run(account(promise_to_pay_until=AS_OF - timedelta(days=1)))
    assert broken.blocked is None
    assert broken.intents


def test_sms_opt_out_skips_only_sms() -> None:
    [result] = run(account(sms_opt_out=True))
    assert channels(result) == {Channel.VOICE, Channel.EMAIL}
    assert [(s.channel, s.reason) for s in result.skipped] == [(Channel.SMS, "opt_out")]


def test_missing_contact_details_skip_the_channel() -> None:
    [result] = run(account(phone=None))
    assert channels(result) == {Channel.EMAIL}
    assert {s.reason for s in result.skipped} == {"no_phone"}


def test_call_only_if_no_sms_delivered_within_two_days() -> None:
    outcomes = InMemoryOutcomes()
    outcomes.add("A-1", OutcomeKind.DELIVERED, NOW - timedelta(days=1), Channel.SMS)
    [recent] = run(account(), outcomes=outcomes)
    assert Channel.VOICE not in channels(recent)
    assert any(s.step == "early.call" and "delivered" in s.reason for s in recent.skipped)

    older = InMemoryOutcomes()
    older.add("A-1", OutcomeKind.DELIVERED, NOW - timedelta(days=3), Channel.SMS)
    older.add("A-1", OutcomeKind.DELIVERED, NOW - timedelta(hours=1), Channel.EMAIL)
    [stale] = run(account(), outcomes=older)
    assert Channel.VOICE in channels(stale)


def test_letter_only_after_three_unanswered_calls() -> None:
    outcomes = InMemoryOutcomes()
    for hours in (30, 60):
        outcomes.add("A-1", OutcomeKind.UNANSWERED_CALL, NOW - timedelta(hours=hours))
    [two] = run(account(days_past_due=35), outcomes=outcomes)
    assert two.intents == ()
    assert "2 of 3" in two.skipped[0].reason
    outcomes.add("A-1", OutcomeKind.UNANSWERED_CALL, NOW - timedelta(hours=90))
    [three] = run(account(days_past_due=35), outcomes=outcomes)
    assert channels(three) == {Channel.LETTER}


def test_time_barred_account_gets_no_legal_step() -> None:
    outcomes = InMemoryOutcomes()
    for _ in range(3):
        outcomes.add("A-1", OutcomeKind.UNANSWERED_CALL, NOW - timedelta(days=1))
    barred = account(days_past_due=35, statute_of_limitations=AS_OF - timedelta(days=1))
    [result] = run(barred, outcomes=outcomes)
    assert result.intents == ()
    assert result.skipped[0].reason == "time_barred"


@pytest.mark.parametrize("kind", ["paid", "promise_to_pay", "disputed", "opt_out"])
def test_stop_outcomes_stop_every_step(kind: str) -> None:
    outcomes = InMemoryOutcomes()
    outcomes.add("A-1", OutcomeKind(kind), NOW - timedelta(days=10))
    [result] = run(account(), outcomes=outcomes)
    assert result.intents == ()
    assert {s.reason for s in result.skipped} == {f"outcome: {kind}"}


def test_precheck_suppress_and_refuse_skip_with_the_rule_id_defer_publishes() -> None:
    def gate(intent: ContactIntent) -> GateDecision | None:
        if intent.channel is Channel.SMS:
            return GateDecision("suppress", "cn.sms.daily_cap", "SMS cap reached")
        if intent.channel is Channel.EMAIL:
            return GateDecision("refuse", "us.letter.no_firm", "no engagement")
        return GateDecision("defer", "cn.window", "outside window", until=NOW + timedelta(hours=6))

    [result] = run(account(), precheck=gate)
    assert channels(result) == {Channel.VOICE}
    rules = {s.channel: (s.rule_id, s.reason) for s in result.skipped}
    assert rules[Channel.SMS] == ("cn.sms.daily_cap", "suppress: SMS cap reached")
    assert rules[Channel.EMAIL][0] == "us.letter.no_firm"


def test_evaluate_is_lazy() -> None:
    def book() -> Iterable[Account]:
        yield account()
        raise AssertionError("read past the first account")

    first = next(evaluate(book(), strategy(), as_of=AS_OF, now=NOW, outcomes=NoOutcomes()))
    assert first.intents


def test_summary_counts_by_stage_channel_and_variant() -> None:
    summary = EvaluationSummary()
    for evaluation in run(account(), account(account_id="A-2", paid=True)):
        summary.add(evaluation)
    assert summary.accounts == 2
    assert summary.intents[("early", "sms", "champion")] == 1
    assert summary.intent_count == 3
    assert summary.blocked["paid"] == 1


def test_synthetic_book_is_reproducible_and_mixed() -> None:
    first = list(synthetic_book(300, seed=7, as_of=AS_OF))
    assert first == list(synthetic_book(300, seed=7, as_of=AS_OF))
    assert {a.jurisdiction for a in first} >= {"CN", "US"}
    results = evaluate(first, strategy(), as_of=AS_OF, now=NOW, outcomes=NoOutcomes())
    stages = {r.stage for r in results}
    assert {Stage.PRE_DUE, Stage.EARLY, Stage.MID, Stage.LATE} <= stages


# --- publisher --------------------------------------------------------------------------------


class ListPublisher:
    """The smallest Publisher: remembers every batch it was asked to publish."""

    def __init__(self) -> None:
        self.batches: list[list[OutboundMessage]] = []

    @property
    def messages(self) -> list[OutboundMessage]:
        return [m for batch in self.batches for m in batch]

    def declare(self, topology: Topology) -> None:
        pass

    def publish_many(self, messages: Iterable[OutboundMessage]) -> int:
        batch = list(messages)
        self.batches.append(batch)
        return len(batch)

    def get(self, queue: str) -> Delivery | None:
        return None

    def ack(self, delivery: Delivery) -> None:
        pass

    def reject(self, delivery: Delivery, *, requeue: bool) -> None:
        pass

    def queue_depth(self, queue: str) -> int:
        return 0

    def close(self) -> None:
        pass


class SetLedger:
    """Records ids like the ledger does: only ids not yet published are handed back."""

    def __init__(self) -> None:
        self.recorded: set[str] = set()
        self.published: set[str] = set()

    def record(self, intents: list[ContactIntent]) -> set[str]:
        self.recorded |= {i.intent_id for i in intents}
        return {i.intent_id for i in intents} - self.published

    def mark(self, ids: list[str]) -> None:
        self.published |= set(ids)


def intents_of(book: Iterable[Account]) -> list[ContactIntent]:
    results = evaluate(book, strategy(), as_of=AS_OF, now=NOW, outcomes=NoOutcomes())
    return [i for e in results for i in e.intents]


def test_publisher_routes_by_channel_with_id_and_trace_header() -> None:
    broker = ListPublisher()
    intents = intents_of([account()])
    assert IntentPublisher(broker, None, None).publish(intents) == 3
    for message, intent in zip(broker.messages, intents, strict=True):
        assert message.exchange == INTENTS_EXCHANGE
        assert message.routing_key == intent.channel.value
        assert message.message_id == intent.intent_id
        assert message.headers == {"x-dunning-trace-id": intent.trace_id}
        assert decode_intent(message.body) == intent


def test_re_run_on_the_same_day_publishes_nothing_new() -> None:
    broker = ListPublisher()
    ledger = SetLedger()
    book = [account(account_id=f"A-{i}") for i in range(10)]
    with IntentPublisher(broker, ledger.record, ledger.mark, batch_size=4) as publisher:
        publisher.submit(intents_of(book))
    assert publisher.published == 30
    assert all(len(batch) <= 4 for batch in broker.batches)
    assert ledger.published == {m.message_id for m in broker.messages}

    again = IntentPublisher(broker, ledger.record, ledger.mark, batch_size=4)
    assert again.publish(intents_of(book)) == 0  # fresh trace ids, same intent ids
    assert again.already_known == 30
    assert len(broker.messages) == 30


def test_ids_the_ledger_hands_back_are_the_ones_published() -> None:
    intents = intents_of([account()])
    keep = intents[1].intent_id
    broker = ListPublisher()
    marked: list[str] = []
    publisher = IntentPublisher(broker, lambda batch: {keep}, marked.extend)
    assert publisher.publish(intents) == 1
    assert [m.message_id for m in broker.messages] == [keep]
    assert marked == [keep]


# --- the command ------------------------------------------------------------------------------


SAMPLE = Path(__file__).resolve().parents[2] / "config" / "accounts.sample.csv"
# The sample book is evaluated "as of" a fixed day; the process clock is pinned to that day so
# its intents are fresh whatever the calendar says.
PINNED_CLOCK = {"DUNNING_NOW": NOW.isoformat()}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # The command configures structlog to print to the runner's captured stderr, which is
    # closed after the run; later tests must not log into it.
    yield
    structlog.reset_defaults()


def test_dry_run_publishes_and_records_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    result = CliRunner().invoke(
        main.app,
        [
            "evaluate", str(SAMPLE), "--as-of", "2026-11-28", "--dry-run",
            # Unreachable on purpose: a dry run must not even connect.
            "--broker", "amqp://guest:guest@127.0.0.1:1/%2F",
            "--database-url", f"sqlite:///{ledger}",
        ],
        env=PINNED_CLOCK,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "dry run: nothing published or recorded" in result.output
    assert "Intents" in result.output
    assert not ledger.exists()


def test_bad_rows_are_listed_with_line_numbers(tmp_path: Path) -> None:
    book = tmp_path / "book.csv"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("Asia/Shanghai", "Asia/Nowhere")
    book.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main.app, ["evaluate", str(book), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Bad rows: 1 skipped" in result.output
    assert "timezone" in result.output


def test_second_run_on_the_same_day_publishes_nothing_new(tmp_path: Path) -> None:
    server = reset_memory_server()
    args = [
        "evaluate", str(SAMPLE), "--as-of", "2026-11-28", "--broker", "memory://",
        "--database-url", f"sqlite:///{tmp_path / 'ledger.db'}",
    ]  # fmt: skip
    first = CliRunner().invoke(main.app, args, env=PINNED_CLOCK)
    assert first.exit_code == 0, first.output
    publisher = server.publisher()
    depth = sum(publisher.queue_depth(f"dunning.{c.value}") for c in Channel)
    assert depth > 0
    assert f"{depth} published" in first.output
    second = CliRunner().invoke(main.app, args, env=PINNED_CLOCK)
    assert second.exit_code == 0, second.output
    assert "0 published" in second.output
    assert sum(publisher.queue_depth(f"dunning.{c.value}") for c in Channel) == depth


def test_interval_parsing() -> None:
    assert parse_interval_s("15m") == 900
    assert parse_interval_s("1h") == 3600
    with pytest.raises(ConfigError):
        parse_interval_s("soon")


def test_without_a_source_the_evaluator_refuses_and_says_what_to_set() -> None:
    """No silent default book: a deployment names the one it evaluates."""
    result = CliRunner().invoke(main.app, ["evaluate", "--dry-run"], env={})
    assert result.exit_code == 2
    assert "no accounts to evaluate: give FILE, or set DUNNING_ACCOUNTS_SOURCE" in result.output


def test_the_source_may_be_a_setting(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_text(f"{SAMPLE}\n", encoding="utf-8")  # as a compose secret would hold it
    for env in (
        {"DUNNING_ACCOUNTS_SOURCE": str(SAMPLE)},
        {"DUNNING_ACCOUNTS_SOURCE": "", "DUNNING_ACCOUNTS_SOURCE_FILE": str(source)},
    ):
        result = CliRunner().invoke(
            main.app, ["evaluate", "--as-of", "2026-11-28", "--dry-run"], env=env
        )
        assert result.exit_code == 0, result.output
        assert "dry run: nothing published or recorded" in result.output
