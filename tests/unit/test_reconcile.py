"""The reconcile sweeper on a SQLite ledger and the memory broker, with a manual clock."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import insert
from typer.testing import CliRunner

from dunning.broker import reset_memory_server
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import build_topology, work_queue
from dunning.cli.main import app
from dunning.clock import ManualClock
from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.ledger.schema import receipts
from dunning.records import IntentState
from dunning.settings import Settings
from dunning.workers.reconcile import Reconciler, ReconcileReport, periodic_sweep, report_json
from tests.factories import T0, make_intent

WINDOW_S = 60


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.server = MemoryBroker()
        self.server.declare(build_topology())
        self.publisher = self.server.publisher()
        self.ledger = Ledger.open(f"sqlite:///{tmp / 'ledger.db'}")
        self.clock = ManualClock(T0)
        self.reconciler = Reconciler(
            self.ledger, self.publisher, self.clock, reconcile_after_s=WINDOW_S
        )

    def sending(self, intent: ContactIntent) -> int:
        self.ledger.record_published([intent], now=self.clock.now())
        self.ledger.mark_published([intent.intent_id], now=self.clock.now())
        claim = self.ledger.claim(
            intent, worker="w:1", now=self.clock.now(), reconcile_after_s=WINDOW_S
        )
        return int(claim.attempt)

    def queued_ids(self) -> list[str]:
        out = []
        while (d := self.publisher.get(work_queue(Channel.SMS))) is not None:
            out.append(d.message_id)
            self.publisher.ack(d)
        return out


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.ledger.close()


def test_a_receipt_during_sending_settles_the_intent_at_once(rig: Rig) -> None:
    intent = make_intent()
    rig.sending(intent)
    # The callback URL carries the intent id: the webhook records it although the worker died.
    rig.ledger.record_receipt(
        "SMabc", "delivered", channel=Channel.SMS, rank=50, now=T0, intent_id=intent.intent_id
    )
    rig.clock.advance(WINDOW_S + 1)

    report = rig.reconciler.sweep()

    assert report.republished_sending == 0
    assert rig.ledger.get_state(intent.intent_id) is IntentState.DELIVERED
    assert rig.queued_ids() == []


def test_stuck_sending_with_an_unapplied_receipt_is_settled_from_it(rig: Rig) -> None:
    intent = make_intent()
    rig.sending(intent)
    with rig.ledger._engine.begin() as conn:  # stored, not yet applied to the intent
        conn.execute(
            insert(receipts).values(
                intent_id=intent.intent_id, provider_ref="SMabc", channel="sms", status="sent",
                rank=10, received_at=T0, applied=False,
            )
        )  # fmt: skip
    rig.clock.advance(WINDOW_S + 1)

    report = rig.reconciler.sweep()

    assert (report.settled, report.republished_sending) == (1, 0)
    assert rig.ledger.get_state(intent.intent_id) is IntentState.SENT
    assert rig.queued_ids() == []


def test_stuck_sending_without_receipts_is_republished_once_per_window(rig: Rig) -> None:
    intent, young = make_intent(), make_intent()
    rig.sending(intent)
    rig.clock.advance(WINDOW_S + 1)
    rig.sending(young)

    first = rig.reconciler.sweep()
    again = rig.reconciler.sweep()

    assert first.republished_sending == 1
    assert again.republished_sending == 0
    assert rig.queued_ids() == [intent.intent_id]
    # The republished copy is claimable: the window has passed, the claim reclaims it.
    claim = rig.ledger.claim(intent, worker="w:3", now=rig.clock.now(), reconcile_after_s=WINDOW_S)
    assert claim.kind == "claimed"
    assert claim.attempt == 2


def test_unpublished_intents_are_published_and_marked(rig: Rig) -> None:
    intent = make_intent()
    rig.ledger.record_published([intent], now=T0)  # the evaluator died before the publish

    assert rig.reconciler.sweep().republished_unpublished == 0  # too young: maybe in flight
    rig.clock.advance(61)
    assert rig.reconciler.sweep().republished_unpublished == 1
    assert rig.reconciler.sweep().republished_unpublished == 0
    assert rig.queued_ids() == [intent.intent_id]


def test_queued_and_deferred_past_expiry_are_expired(rig: Rig) -> None:
    stale = make_intent(expires_at=T0 + timedelta(minutes=5))
    deferred = make_intent(expires_at=T0 + timedelta(minutes=5))
    fresh = make_intent(expires_at=T0 + timedelta(days=1))
    rig.ledger.record_published([stale, deferred, fresh], now=T0)
    rig.ledger.mark_published([stale.intent_id, deferred.intent_id, fresh.intent_id], now=T0)
    rig.ledger.set_state(deferred.intent_id, IntentState.DEFERRED, reason="quiet hours", now=T0)
    rig.clock.advance(6 * 60)

    report = rig.reconciler.sweep()

    assert report.expired == 2
    assert rig.ledger.get_state(stale.intent_id) is IntentState.EXPIRED
    assert rig.ledger.get_state(deferred.intent_id) is IntentState.EXPIRED
    assert rig.ledger.get_state(fresh.intent_id) is IntentState.QUEUED
    assert rig.queued_ids() == []


def test_sent_without_a_final_receipt_becomes_unknown_after_the_window(rig: Rig) -> None:
    rig.reconciler.unknown_after_s = 3600
    silent, delivered = make_intent(), make_intent()
    for n, intent in enumerate((silent, delivered)):
        attempt = rig.sending(intent)
        rig.ledger.record_sent(
            intent.intent_id, attempt, provider_ref=f"SM{n}", status="queued", detail={},
            now=rig.clock.now(),
        )  # fmt: skip
    rig.ledger.record_receipt("SM1", "delivered", channel=Channel.SMS, rank=30, now=T0)

    assert rig.reconciler.sweep().unknown == 0  # too young
    rig.clock.advance(3601)
    assert rig.reconciler.sweep().unknown == 1
    assert rig.ledger.get_state(silent.intent_id) is IntentState.UNKNOWN
    assert rig.ledger.get_state(delivered.intent_id) is IntentState.DELIVERED


def test_the_json_report_counts_every_case_of_the_sweep() -> None:
    report = ReconcileReport(
        settled=1, republished_sending=2, republished_unpublished=3, expired=4, unknown=5
    )
    assert json.loads(report_json(report)) == {
        "settled": 1,
        "republished_sending": 2,
        "republished_unpublished": 3,
        "expired": 4,
        "unknown": 5,
    }


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--json"], lambda out: json.loads(out)["unknown"] == 1),
        ([], lambda out: "marked 1 unknown" in out),
    ],
    ids=["json", "text"],
)
def test_the_command_reports_the_intents_it_marked_unknown(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: list[str],
    said: Callable[[str], bool],
) -> None:
    for key in [k for k in os.environ if k.startswith("DUNNING_")]:
        monkeypatch.delenv(key)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.open(url)
    intent = make_intent()
    ledger.record_published([intent], now=T0)
    claim = ledger.claim(intent, worker="w:1", now=T0, reconcile_after_s=WINDOW_S)
    ledger.record_sent(
        intent.intent_id, int(claim.attempt), provider_ref="SM1", status="queued", detail={},
        now=T0,
    )  # fmt: skip
    ledger.close()
    env = {
        "DUNNING_DATABASE_URL": url,
        "DUNNING_BROKER_URL": "memory://",
        "DUNNING_NOW": (T0 + timedelta(hours=73)).isoformat(),  # past the 72 h default
        "DUNNING_LOG_LEVEL": "error",
    }
    try:
        result = CliRunner().invoke(app, ["reconcile", "--once", *options], env=env)
    finally:
        structlog.reset_defaults()  # the command configured logging for itself
    assert result.exit_code == 0, result.output
    assert said(result.output), result.output


async def test_a_workers_periodic_sweep_reads_the_workers_clock(tmp_path: Path) -> None:
    # Under DUNNING_NOW the worker's clock is days from the wall clock and claims are stamped
    # by it; a sweep on any other clock would take a fresh claim for a stuck one.
    server = reset_memory_server()
    server.declare(build_topology())
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    clock = ManualClock(T0)
    sweep, _ = periodic_sweep(
        Settings(broker_url="memory://", reconcile_after_s=WINDOW_S), ledger, clock
    )
    intent = make_intent()
    try:
        ledger.record_published([intent], now=T0)
        ledger.mark_published([intent.intent_id], now=T0)
        ledger.claim(intent, worker="w:1", now=T0, reconcile_after_s=WINDOW_S)

        await sweep()
        young = server.publisher().get(work_queue(Channel.SMS))
        clock.advance(WINDOW_S + 1)
        await sweep()
        stuck = server.publisher().get(work_queue(Channel.SMS))
    finally:
        ledger.close()
    assert young is None
    assert stuck is not None
    assert stuck.message_id == intent.intent_id
