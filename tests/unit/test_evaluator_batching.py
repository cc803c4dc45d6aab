"""The evaluator's batched ledger reads and writes give the same answers as one-by-one."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from dunning.broker.base import Delivery, OutboundMessage
from dunning.broker.topology import Topology
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.producers.ledger_outcomes import LedgerOutcomes
from dunning.producers.publisher import IntentPublisher
from dunning.records import Suppression
from tests.factories import T0, make_intent


def test_add_suppressions_skips_live_duplicates(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    cease = Suppression("p-1", None, "cease", "account_flag", T0)
    opt_out = Suppression("p-1", Channel.SMS, "opt_out", "account_flag", T0)
    other = Suppression("p-2", None, "deceased", "account_flag", T0)
    assert ledger.add_suppressions([cease, opt_out, cease]) == 2
    assert ledger.add_suppressions([cease, other]) == 1
    history = ledger.history("p-1", since=T0 - timedelta(days=1))
    assert sorted(s.reason for s in history.suppressions) == ["cease", "opt_out"]
    both = ledger.histories(["p-1", "p-2", "p-3"], since=T0 - timedelta(days=1))
    assert [len(both[p].suppressions) for p in ("p-1", "p-2", "p-3")] == [2, 1, 0]
    ledger.close()


def test_prefetched_outcomes_equal_single_reads(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    intents = [make_intent(Channel.SMS, account_id=f"a-{n}") for n in range(4)]
    ledger.record_published(intents, now=T0)
    for n, intent in enumerate(intents[:2]):
        claim = ledger.claim(intent, worker="w", now=T0, reconcile_after_s=60)
        ledger.record_sent(
            intent.intent_id, claim.attempt, provider_ref=f"SM{n}", status="queued", detail={},
            now=T0,
        )  # fmt: skip
        ledger.record_receipt(f"SM{n}", "delivered", channel=Channel.SMS, rank=30, now=T0)
    ledger.add_suppression(Suppression(intents[3].person_id, None, "opt_out", "sms", T0))
    since = T0 - timedelta(days=1)
    single = LedgerOutcomes(ledger)
    batched = LedgerOutcomes(ledger)
    batched.prefetch([i.account_id for i in intents], since=since)
    for intent in intents:
        one = single.outcomes(intent.account_id, since=since)
        many = batched.outcomes(intent.account_id, since=since)
        assert sorted(map(repr, one.events)) == sorted(map(repr, many.events))
    assert batched.outcomes("a-0", since=since).delivered(Channel.SMS, since=since) == 1
    assert batched.outcomes("a-3", since=since).stops()
    ledger.close()


class Recorder:
    """A Publisher that remembers the order of events (publish vs suppression writes)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def declare(self, topology: Topology) -> None: ...

    def publish_many(self, messages: Iterable[OutboundMessage]) -> int:
        sent = list(messages)
        self.log.append(f"publish {len(sent)}")
        return len(sent)

    def get(self, queue: str) -> Delivery | None:
        return None

    def ack(self, delivery: Delivery) -> None: ...

    def reject(self, delivery: Delivery, *, requeue: bool) -> None: ...

    def queue_depth(self, queue: str) -> int:
        return 0

    def close(self) -> None: ...


def test_suppressions_are_written_before_the_intents_of_their_batch_are_published() -> None:
    log: list[str] = []
    publisher = IntentPublisher(
        Recorder(log),
        batch_size=2,
        suppress=lambda items, _accounts: log.append(f"suppress {len(items)}"),
    )
    flagged = Suppression("p-9", None, "cease", "account_flag", T0)
    publisher.submit([make_intent()], [flagged])
    publisher.submit([make_intent()])
    publisher.submit([], [flagged, flagged])
    publisher.flush()
    assert log == ["suppress 1", "publish 2", "suppress 2"]
