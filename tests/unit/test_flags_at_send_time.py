"""Book flags stop intents that were queued before the flag was set.

Each test evaluates a one-account book with `dunning evaluate`'s own run (memory broker, SQLite
ledger, the rule packs and strategy of config/), so the intent is recorded and published; then
the same book is evaluated again with a flag set, so the ledger learns it; then the real worker
pipeline (real ComplianceGate, a recording channel, a ManualClock) takes the queued message. The
intent must end suppressed, never sent, with the rule that stopped it in the ledger.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dunning.broker import memory_server, reset_memory_server
from dunning.channels.base import CallbackChannel, SendResult
from dunning.clock import ManualClock
from dunning.compliance import ComplianceGate, load_packs
from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.ledger.schema import intents as intents_table
from dunning.producers.accounts import COLUMNS
from dunning.producers.run import Backends, run_once
from dunning.producers.strategy import Strategy, load_strategy
from dunning.records import IntentState, Suppression
from dunning.settings import Settings
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import OutcomeCounter
from dunning.workers.ratelimit.limiter import Unlimited

CONFIG = Path(__file__).resolve().parents[2] / "config"
STRATEGY = load_strategy(CONFIG / "strategy.toml")
GATE = ComplianceGate(load_packs(CONFIG / "compliance.toml"), jitter_s=0)
AS_OF = date(2026, 11, 10)
SHANGHAI, NEW_YORK = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")


def at_local(zone: ZoneInfo, day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(UTC)


def champion_account_id(prefix: str) -> str:
    """An account id the strategy puts in the champion variant (the only one with early email)."""
    for n in range(1000):
        candidate = f"{prefix}-{n}"
        if STRATEGY.variant_for(candidate).name == "champion":
            return candidate
    raise AssertionError("no champion account id found")


def row(jurisdiction: str, account_id: str, days_past_due: int, **flags: str) -> dict[str, str]:
    chinese = jurisdiction == "CN"
    values = {
        "account_id": account_id,
        "person_id": f"P-{account_id}",
        "name": "张三" if chinese else "Jane Doe",
        "phone": "+8613800138000" if chinese else "+12025550143",
        "email": "debtor@example.com",
        "address_line1": "1 Main St",
        "city": "Shanghai" if chinese else "Springfield",
        "postal_code": "200120" if chinese else "01103",
        "country": jurisdiction,
        "timezone": "Asia/Shanghai" if chinese else "America/New_York",
        "locale": "zh-CN" if chinese else "en-US",
        "jurisdiction": jurisdiction,
        "currency": "CNY" if chinese else "USD",
        "amount_due": "1234.50",
        "due_date": (AS_OF - timedelta(days=days_past_due)).isoformat(),
    }
    values.update(flags)
    return values


@dataclass
class Rig:
    """A book file, `dunning evaluate`'s backends on the memory broker, and workers."""

    tmp: Path
    book: Path = field(init=False)
    settings: Settings = field(init=False)
    sent: list[tuple[ContactIntent, datetime]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.book = self.tmp / "book.csv"
        self.settings = Settings(
            broker_url="memory://",
            database_url=f"sqlite:///{self.tmp / 'ledger.db'}",
            config_dir=CONFIG,
            shutdown_grace_s=5,
        )

    def evaluate(
        self, account: dict[str, str], now: datetime, strategy: Strategy = STRATEGY
    ) -> Any:
        with self.book.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
            writer.writeheader()
            writer.writerow(account)
        backends = Backends.open(self.settings)
        try:
            return run_once(str(self.book), strategy, as_of=now.date(), now=now, backends=backends)
        finally:
            backends.close()

    def queued(self, channel: Channel) -> list[str]:
        ledger = Ledger.open(self.settings.database_url)
        try:
            with ledger._engine.connect() as conn:
                return list(
                    conn.scalars(
                        select(intents_table.c.intent_id).where(
                            intents_table.c.channel == channel.value,
                            intents_table.c.state == IntentState.QUEUED.value,
                        )
                    )
                )
        finally:
            ledger.close()

    def work(self, channel: Channel, at: datetime, messages: int) -> OutcomeCounter:
        """Run ``channel``'s worker at ``at`` until ``messages`` messages have an outcome."""
        return asyncio.run(self._work(channel, at, messages))

    async def _work(self, channel: Channel, at: datetime, messages: int) -> OutcomeCounter:
        clock = ManualClock(at)
        counter = OutcomeCounter()

        async def record(intent: ContactIntent, attempt: int) -> SendResult:
            self.sent.append((intent, clock.now()))
            return SendResult(provider_ref=f"X{len(self.sent):033d}", status="queued")

        ledger = Ledger.open(self.settings.database_url)
        worker = build_worker(
            self.settings,
            WorkerParts(
                channel=channel,
                adapter=CallbackChannel(channel, record),
                ledger=ledger,
                clock=clock,
                gate=GATE.decide,
                broker=memory_server().client(),
                limiter=Unlimited(),
                middleware=(counter,),
            ),
            declare=False,
        )
        task = asyncio.create_task(worker.run())
        try:
            await counter.wait_until(lambda: sum(counter.counts.values()) >= messages, 20)
        finally:
            worker.stop()
            assert await task == 0
            ledger.close()
        return counter

    def live_suppressions(self, person_id: str) -> list[Suppression]:
        ledger = Ledger.open(self.settings.database_url)
        try:
            return list(
                ledger.history(person_id, since=datetime(2000, 1, 1, tzinfo=UTC)).suppressions
            )
        finally:
            ledger.close()

    def state(self, intent_id: str) -> tuple[IntentState | None, str | None]:
        ledger = Ledger.open(self.settings.database_url)
        try:
            with ledger._engine.connect() as conn:
                found = conn.execute(
                    select(intents_table.c.state, intents_table.c.last_error).where(
                        intents_table.c.intent_id == intent_id
                    )
                ).one_or_none()
        finally:
            ledger.close()
        if found is None:
            return None, None
        return IntentState(found.state), found.last_error


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    reset_memory_server()
    yield Rig(tmp_path)
    reset_memory_server()


@dataclass(frozen=True)
class FlagCase:
    column: str
    value: str
    jurisdiction: str
    channel: Channel
    days_past_due: int
    rule: str  # the rule id the gate names in the ledger


CN_SMS, US_SMS = ("CN", Channel.SMS, 1), ("US", Channel.SMS, 1)
PROMISED = (AS_OF + timedelta(days=3)).isoformat()
BARRED_SINCE = (AS_OF - timedelta(days=1)).isoformat()
US_LETTER = ("US", Channel.LETTER, 61)
FLAG_CASES = [
    FlagCase("cease", "true", *CN_SMS, "CN.suppress.cease"),
    FlagCase("disputed", "true", *CN_SMS, "CN.suppress.dispute"),
    FlagCase("bankrupt", "true", *US_SMS, "US.suppress.bankrupt"),
    FlagCase("deceased", "true", *CN_SMS, "CN.suppress.deceased"),
    FlagCase("attorney_represented", "true", *US_SMS, "US.suppress.attorney"),
    FlagCase("paid", "yes", *CN_SMS, "CN.suppress.paid"),
    FlagCase("hardship", "true", *CN_SMS, "CN.suppress.hardship"),
    FlagCase("hardship", "1", *US_SMS, "US.suppress.hardship"),
    FlagCase("promise_to_pay_until", PROMISED, *US_SMS, "US.suppress.promise_to_pay"),
    FlagCase("sms_opt_out", "true", *CN_SMS, "CN.suppress.opt_out"),
    FlagCase("email_opt_out", "true", "US", Channel.EMAIL, 2, "US.suppress.opt_out"),
    FlagCase("statute_of_limitations", BARRED_SINCE, *US_LETTER, "US.stage.time_barred.1006.26b"),
]


@pytest.mark.parametrize("case", FLAG_CASES, ids=lambda c: f"{c.column}-{c.jurisdiction}")
def test_a_flag_set_after_the_intent_was_queued_stops_it_at_send_time(
    rig: Rig, case: FlagCase
) -> None:
    zone = SHANGHAI if case.jurisdiction == "CN" else NEW_YORK
    account_id = champion_account_id(f"A-{case.column}")
    before = row(case.jurisdiction, account_id, case.days_past_due)
    first = rig.evaluate(before, at_local(zone, AS_OF, 9))
    assert first.published >= 1
    [queued] = rig.queued(case.channel)

    flagged = row(case.jurisdiction, account_id, case.days_past_due, **{case.column: case.value})
    again = rig.evaluate(flagged, at_local(zone, AS_OF, 10))
    assert again.published == 0

    # 21:00 in Shanghai, 20:00 in New York: inside both contact windows.
    counter = rig.work(case.channel, at_local(zone, AS_OF, 20 if zone is NEW_YORK else 21), 1)
    assert rig.sent == []
    assert counter.counts["suppressed"] == 1
    state, reason = rig.state(queued)
    assert state is IntentState.SUPPRESSED
    assert reason is not None
    assert reason.startswith(f"{case.rule}: ")


def test_a_promise_stops_contact_only_until_its_day_ends(rig: Rig) -> None:
    account_id = champion_account_id("A-promise-ends")
    rig.evaluate(row("US", account_id, 1), at_local(NEW_YORK, AS_OF, 9))
    [queued] = rig.queued(Channel.SMS)
    promised = row("US", account_id, 1, promise_to_pay_until=AS_OF.isoformat())
    rig.evaluate(promised, at_local(NEW_YORK, AS_OF, 10))

    # The next morning, before any evaluation: the promise has ended, the intent may go out.
    rig.work(Channel.SMS, at_local(NEW_YORK, AS_OF + timedelta(days=1), 9), 1)
    assert [i.intent_id for i, _ in rig.sent] == [queued]
    assert rig.state(queued)[0] is IntentState.SENT


def test_a_debt_that_becomes_time_barred_overnight_gets_no_legal_letter(rig: Rig) -> None:
    account_id = champion_account_id("A-barred-overnight")
    # Evaluated on the last day of the statute: the final notice is still allowed and queued.
    book = row("US", account_id, 61, statute_of_limitations=AS_OF.isoformat())
    first = rig.evaluate(book, at_local(NEW_YORK, AS_OF, 14))
    assert first.published == 1
    [queued] = rig.queued(Channel.LETTER)

    # Sent the next day (a backlog, or deferred overnight) with no evaluation in between.
    rig.work(Channel.LETTER, at_local(NEW_YORK, AS_OF + timedelta(days=1), 9), 1)
    assert rig.sent == []
    state, reason = rig.state(queued)
    assert state is IntentState.SUPPRESSED
    assert reason is not None
    assert reason.startswith("US.stage.time_barred.1006.26b: ")


def test_a_cleared_hardship_is_lifted_on_the_next_evaluation(rig: Rig) -> None:
    account_id = champion_account_id("A-hardship-cleared")
    person = f"P-{account_id}"
    rig.evaluate(row("CN", account_id, 1, hardship="true"), at_local(SHANGHAI, AS_OF, 9))
    assert rig.queued(Channel.SMS) == []
    assert [s.reason for s in rig.live_suppressions(person)] == ["hardship"]

    # Two days later the book clears it: the suppression goes and the day's SMS goes out.
    later = AS_OF + timedelta(days=2)
    cleared = row("CN", account_id, 1)  # the same due date: day 3 of early
    report = rig.evaluate(cleared, at_local(SHANGHAI, later, 9))
    assert rig.live_suppressions(person) == []
    assert report.published == 2  # day 3 of early: an SMS and a call
    [queued] = rig.queued(Channel.SMS)
    rig.work(Channel.SMS, at_local(SHANGHAI, later, 10), 1)
    assert [i.intent_id for i, _ in rig.sent] == [queued]


def test_a_cleared_cease_stays_until_an_operator_lifts_it(rig: Rig) -> None:
    account_id = champion_account_id("A-cease-cleared")
    person = f"P-{account_id}"
    rig.evaluate(row("CN", account_id, 1, cease="true"), at_local(SHANGHAI, AS_OF, 9))
    rig.evaluate(row("CN", account_id, 1), at_local(SHANGHAI, AS_OF + timedelta(days=2), 9))
    assert [s.reason for s in rig.live_suppressions(person)] == ["cease"]
