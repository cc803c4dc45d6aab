"""Caps a rule states per person count every debt of the person; per-debt caps stay per debt.

A person with two debts: earlier calls about the first are recorded in the ledger as the worker
records them (claim, send, receipt with the call's outcome); then the real worker pipeline (the
ComplianceGate over config/compliance.toml, memory broker, SQLite ledger, ManualClock) takes a
call about the second debt.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dunning.broker.intent_messages import intent_message
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import build_topology
from dunning.channels.base import CallbackChannel, SendResult
from dunning.clock import ManualClock
from dunning.compliance import ComplianceGate, load_packs
from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.records import DialOutcome, IntentState
from dunning.settings import Settings
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import OutcomeCounter
from dunning.workers.ratelimit.limiter import Unlimited
from tests.factories import make_intent
from tests.unit.test_compliance_helpers import local

CONFIG = Path(__file__).resolve().parents[2] / "config"
GATE = ComplianceGate(load_packs(CONFIG / "compliance.toml"), jitter_s=0)


def _call(jurisdiction: str, debt: str, n: int, at_hour: int) -> ContactIntent:
    zone = "Asia/Shanghai" if jurisdiction == "CN" else "America/New_York"
    created = local(zone, 2026, 11, 10, at_hour, 0)
    return make_intent(
        Channel.VOICE, account_id=f"{debt}-{n}", person_id=f"person-{jurisdiction}",
        debt_id=debt, jurisdiction=jurisdiction, step=f"call.{n}", created_at=created,
    )  # fmt: skip


def _record_calls(ledger: Ledger, calls: list[ContactIntent], outcome: DialOutcome) -> None:
    """Each call claimed, placed and answered with ``outcome``, an hour apart."""
    for n, call in enumerate(calls):
        at = call.created_at + timedelta(hours=n)
        claim = ledger.claim(call, worker="earlier", now=at, reconcile_after_s=900)
        assert claim.kind == "claimed"
        ref = f"CA{n:032d}{call.debt_id}"
        ledger.record_sent(
            call.intent_id, claim.attempt, provider_ref=ref, status="queued", detail={}, now=at
        )
        ledger.record_receipt(
            ref, "completed", channel=Channel.VOICE, rank=100, now=at + timedelta(minutes=1),
            intent_id=call.intent_id, dial_outcome=outcome,
        )  # fmt: skip


async def _work(ledger: Ledger, intent: ContactIntent, now_hour: int) -> list[str]:
    server = MemoryBroker()
    server.declare(build_topology())
    server.publisher().publish_many([intent_message(intent)])
    zone = ZoneInfo(intent.timezone)
    clock = ManualClock(local(zone, 2026, 11, 10, now_hour, 0))
    counter = OutcomeCounter()
    sent: list[str] = []

    async def record(call: ContactIntent, attempt: int) -> SendResult:
        sent.append(call.intent_id)
        return SendResult(provider_ref=f"CA{len(sent):032d}", status="queued")

    worker = build_worker(
        Settings(config_dir=CONFIG, shutdown_grace_s=5),
        WorkerParts(
            channel=Channel.VOICE,
            adapter=CallbackChannel(Channel.VOICE, record),
            ledger=ledger,
            clock=clock,
            gate=GATE.decide,
            broker=server.client(),
            limiter=Unlimited(),
            middleware=(counter,),
        ),
        declare=False,
    )
    task = asyncio.create_task(worker.run())
    try:
        await counter.wait_until(lambda: sum(counter.counts.values()) >= 1, 20)
    finally:
        worker.stop()
        assert await task == 0
    return sent


def test_cn_three_connected_calls_a_day_count_across_the_persons_debts(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    earlier = [_call("CN", "debt-A", n, 9) for n in range(3)]
    _record_calls(ledger, earlier, DialOutcome.CONVERSATION)
    about_b = _call("CN", "debt-B", 9, 13)
    sent = asyncio.run(_work(ledger, about_b, 14))
    assert sent == []
    assert ledger.get_state(about_b.intent_id) is IntentState.DEFERRED
    [audit] = [e for e in ledger.timeline(about_b.intent_id) if e.kind == "defer"]
    assert audit.detail["rule_id"] == "CN.calls.connected_per_day"
    ledger.close()


def test_us_seven_calls_in_seven_days_stay_per_debt(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    earlier = [_call("US", "debt-A", n, 8) for n in range(7)]
    _record_calls(ledger, earlier, DialOutcome.NO_ANSWER)
    about_b = _call("US", "debt-B", 9, 16)
    sent = asyncio.run(_work(ledger, about_b, 16))
    assert sent == [about_b.intent_id]
    again_a = _call("US", "debt-A", 8, 16)
    assert asyncio.run(_work(ledger, again_a, 17)) == []
    # The first call ages out after the intent expires: it expires, naming the cap.
    assert ledger.get_state(again_a.intent_id) is IntentState.EXPIRED
    [expired] = [e for e in ledger.timeline(again_a.intent_id) if e.kind == "expired"]
    assert str(expired.detail["reason"]).startswith("US.calls.1006.14b2iA")
    ledger.close()
