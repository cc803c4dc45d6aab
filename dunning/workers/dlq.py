"""Dead-letter queues: read, explain, replay and purge ``dunning.<channel>.dead``.

Broker-agnostic: everything goes through :class:`~dunning.broker.base.Publisher`.

Reading without losing or reordering: a scan takes messages with ``basic.get`` (no ack) until
none is ready, on one amqp_channel, and at the end rejects every message it did not
consume with ``requeue=True``, newest first, so they return to the head of the queue in their
old order. Nothing is acked by a read; a crash mid-scan closes the connection and the broker
requeues the lot. (Get-then-reject one at a time would hand the same message back at once.)

Replay, per message: the ledger is made ready (a ``dead`` intent that never reached a provider
goes back to ``queued`` with an audit record ``replayed``), the copy is published to
``dunning.intents`` and its confirm awaited, and only then is the dead copy acked. A crash at any
point loses nothing; at worst a second copy exists, and the ledger claim sends it at most once.
An intent the ledger shows as sent is never replayed: its dead copy is obsolete and is removed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from dunning.broker.base import Delivery, OutboundMessage, Publisher
from dunning.broker.topology import INTENTS_EXCHANGE, dead_queue
from dunning.clock import Clock
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger.repairs import ReplayVerdict
from dunning.workers import headers as h
from dunning.workers.dlq_letters import DeadLetter, DeadLetterFilter, describe

__all__ = [
    "DeadLetter",
    "DeadLetterFilter",
    "DlqSummary",
    "ReplayReport",
    "describe",
    "find_dead_letter",
    "purge_dead_letters",
    "replay_dead_letters",
    "summarize_dead_letters",
    "walk_dead_letters",
]

log = structlog.get_logger(__name__)

#: Headers describing one death; a replayed copy starts without them.
_DEATH_HEADERS = frozenset(
    {
        h.ERROR_CLASS,
        h.REASON,
        h.PROVIDER_CODE,
        h.ATTEMPT,
        h.LAST_FAILURE_AT,
        h.WORKER,
        h.SOURCE_QUEUE,
        h.NOT_BEFORE,
        "x-death",
        "x-delivery-count",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)
Progress = Callable[[int], None]

Action = Callable[[Delivery, DeadLetter], bool]  # True: the message was consumed (acked)


def walk_dead_letters(
    publisher: Publisher,
    flt: DeadLetterFilter,
    limit: int | None,
    action: Action,
    *,
    max_messages: int = 1_000_000,
) -> int:
    """Offer every matching dead letter to ``action`` (at most ``limit``); requeue the rest.

    Returns how many matched. Reads until the queue has nothing ready: the messages held
    unacked are not handed out again, so every message is seen once. (A passive declare's
    message count lags on quorum queues right after a requeue; ``get`` on the same
    amqp_channel does not, which is why the count is not used to stop.)
    """
    matched = 0
    for channel in flt.channels:
        queue = dead_queue(channel)
        held: list[Delivery] = []
        try:
            for _ in range(max_messages):
                if limit is not None and matched >= limit:
                    break
                delivery = publisher.get(queue)
                if delivery is None:
                    break
                letter = DeadLetter.from_delivery(channel.value, delivery)
                if not flt.matches(letter):
                    held.append(delivery)
                    continue
                matched += 1
                if not action(delivery, letter):
                    held.append(delivery)
        finally:
            # Newest first: each goes back to the head, so the old order is restored.
            for delivery in reversed(held):
                publisher.reject(delivery, requeue=True)
    return matched


# --- reading -------------------------------------------------------------------------------------


@dataclass
class DlqSummary:
    """Counts by (channel, error class, reason), with the oldest and newest death."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    oldest: datetime | None = None
    newest: datetime | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, letter: DeadLetter) -> None:
        self.counts[(letter.channel, letter.error_class, letter.reason)] += 1
        died = letter.died_at
        if died is not None:
            self.oldest = died if self.oldest is None else min(self.oldest, died)
            self.newest = died if self.newest is None else max(self.newest, died)


def summarize_dead_letters(publisher: Publisher, flt: DeadLetterFilter) -> DlqSummary:
    """Read every matching dead letter without removing or reordering any."""
    summary = DlqSummary()

    def count(_: Delivery, letter: DeadLetter) -> bool:
        summary.add(letter)
        return False

    walk_dead_letters(publisher, flt, None, count)
    return summary


def find_dead_letter(publisher: Publisher, key: str, flt: DeadLetterFilter) -> DeadLetter | None:
    """The first dead letter whose intent id or message id is ``key``; the queue is unchanged."""
    found: list[DeadLetter] = []

    def keep(_: Delivery, letter: DeadLetter) -> bool:
        found.append(letter)
        return False

    walk_dead_letters(publisher, DeadLetterFilter(flt.channels, intent_id=key), 1, keep)
    return found[0] if found else None


# --- replay --------------------------------------------------------------------------------------


@dataclass
class ReplayReport:
    replayed: int = 0
    obsolete: int = 0  # the intent was sent after all: dead copy removed, nothing re-sent
    final: int = 0  # expired, suppressed, ...: left in the queue
    over_cap: int = 0  # replayed max_replays times already: left in the queue
    ids: list[str] = field(default_factory=list)


def replay_message(letter: DeadLetter) -> OutboundMessage:
    """The copy to publish: original body, death headers dropped, replay counter + 1."""
    headers = {k: v for k, v in letter.headers.items() if k not in _DEATH_HEADERS}
    headers[h.REPLAY_COUNT] = letter.replay_count + 1
    headers["x-dunning-replayed-reason"] = letter.reason[:200]
    return OutboundMessage(
        exchange=INTENTS_EXCHANGE,
        routing_key=letter.route,
        body=letter.body,
        headers=headers,
        message_id=letter.intent_id,
    )


def replay_dead_letters(
    publisher: Publisher,
    ledger: Ledger,
    flt: DeadLetterFilter,
    *,
    clock: Clock,
    limit: int | None = None,
    rate_per_s: float | None = None,
    dry_run: bool = False,
    max_replays: int = 3,
    force: bool = False,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayReport:
    """Republish matching dead letters to ``dunning.intents`` (confirm first, then ack).

    ``rate_per_s`` spaces the publishes; a message already replayed ``max_replays`` times stays
    unless ``force``. ``dry_run`` changes nothing and reports what would be replayed.
    Raises PublishError/BrokerError/LedgerError; what was done before stays done.
    """
    report = ReplayReport()
    interval_s = 1.0 / rate_per_s if rate_per_s else 0.0
    last = [float("-inf")]

    done: set[str] = set()

    def act(delivery: Delivery, letter: DeadLetter) -> bool:
        if letter.intent_id is not None and letter.intent_id in done:
            return False  # replayed by this run and dead again: next run, if at all
        if letter.replay_count >= max_replays and not force:
            report.over_cap += 1
            return False
        verdict: ReplayVerdict = "replay"
        if letter.intent_id is not None and letter.intent is not None and not dry_run:
            verdict = ledger.prepare_replay(letter.intent_id, now=clock.now())
        if verdict == "final":
            report.final += 1
            return False
        if verdict == "obsolete":
            ledger.audit(
                letter.intent_id, "dlq_obsolete", now=clock.now(), detail={"reason": letter.reason}
            )
            publisher.ack(delivery)
            report.obsolete += 1
            return True
        report.ids.append(letter.intent_id or "?")
        if dry_run:
            report.replayed += 1
            return False
        wait_s = last[0] + interval_s - time.monotonic()
        if wait_s > 0:
            sleep(wait_s)
        last[0] = time.monotonic()
        publisher.publish_many([replay_message(letter)])  # returns after the broker's confirm
        publisher.ack(delivery)
        if letter.intent_id is not None:
            done.add(letter.intent_id)
        report.replayed += 1
        if progress is not None:
            progress(1)
        log.info("dlq.replayed", intent_id=letter.intent_id, replay=letter.replay_count + 1)
        return True

    walk_dead_letters(publisher, flt, limit, act)
    return report


def purge_dead_letters(
    publisher: Publisher,
    ledger: Ledger,
    flt: DeadLetterFilter,
    *,
    clock: Clock,
    limit: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Remove matching dead letters, each with an audit record ``dlq_purged``; returns count."""
    purged = [0]

    def act(delivery: Delivery, letter: DeadLetter) -> bool:
        detail = {
            "channel": letter.channel,
            "error_class": letter.error_class,
            "reason": letter.reason[:500],
            "message_id": letter.message_id,
        }
        ledger.audit(letter.intent_id, "dlq_purged", now=clock.now(), detail=detail)
        publisher.ack(delivery)
        purged[0] += 1
        if progress is not None:
            progress(1)
        return True

    walk_dead_letters(publisher, flt, limit, act)
    return purged[0]


def channels_of(names: Sequence[str] | None) -> tuple[Channel, ...]:
    """Channel filter from CLI names (None or empty: every channel); raises ValueError."""
    return tuple(Channel(n) for n in names) if names else tuple(Channel)
