"""The embedded demo: a small book of accounts through the whole system, in one process.

Evaluator → memory broker (or RabbitMQ with --broker) → four channel workers → the sandbox
stand-ins (Twilio-compatible API, SMTP sink, print-vendor outbox) → SQLite ledger. Nothing is
faked inside: the workers, adapters and SDKs are the production ones, talking over loopback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from dunning.broker import open_publisher
from dunning.broker.topology import build_topology, dead_queue
from dunning.channels.registry import build_adapter
from dunning.intents import Channel, ContactIntent
from dunning.settings import Settings
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import OutcomeCounter

__all__ = ["DemoReport", "run_demo"]

#: A US number the Twilio stand-in rejects with 21211, so the demo shows a dead letter.
INVALID_NUMBER = "+15005550001"
SETTLED_STATES = {"sent", "delivered", "suppressed", "deferred", "dead", "expired", "failed"}


@dataclass
class DemoReport:
    accounts: int
    bad_rows: int
    intents: list[ContactIntent]
    skipped: Counter[str]
    states: dict[tuple[str, str], int]
    outcomes: Counter[str]
    dead_letters: dict[str, int]
    letters_dir: Path
    database: str
    log_file: Path
    elapsed_s: float
    twilio_requests: int = 0
    emails: int = 0
    notes: list[str] = field(default_factory=list)


async def run_demo(
    settings: Settings, *, accounts: int, seed: int, now: datetime, timeout_s: float
) -> DemoReport:
    from dunning.compliance import ComplianceGate, load_packs
    from dunning.ledger import Ledger
    from dunning.producers.evaluator import evaluate
    from dunning.producers.outcomes import NoOutcomes
    from dunning.producers.publisher import IntentPublisher
    from dunning.producers.strategy import load_strategy
    from dunning.producers.synthetic import synthetic_book
    from dunning.sandbox.smtp_sink import SmtpSink
    from dunning.sandbox.twilio_api import TwilioStandIn

    started = time.monotonic()
    home = settings.data_dir / "demo"
    database = f"sqlite:///{home / 'dunning.db'}"
    ledger = Ledger.open(database)
    async with (
        TwilioStandIn(settings.twilio_account_sid, settings.twilio_auth_token) as twilio,
        SmtpSink() as smtp,
    ):
        settings = dataclasses.replace(
            settings,
            database_url=database,
            twilio_api_base=twilio.base_url,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            letter_outbox=home / "letters" / "outbox",
            now=now,
        )
        clock = settings.clock()
        gate = ComplianceGate(load_packs(settings.config_dir / "compliance.toml"))
        publisher = open_publisher(settings.broker_url)
        publisher.declare(build_topology(delivery_limit=settings.delivery_limit))

        as_of: date = now.date()
        book = list(synthetic_book(accounts, seed=seed, as_of=as_of))
        strategy = load_strategy(settings.config_dir / "strategy.toml")
        intents: list[ContactIntent] = []
        skipped: Counter[str] = Counter()
        for evaluation in evaluate(
            book, strategy, as_of=as_of, now=clock.now(), outcomes=NoOutcomes()
        ):
            for suppression in evaluation.suppressions:
                ledger.add_suppression(suppression)
            intents.extend(evaluation.intents)
            for skip in evaluation.skipped:
                skipped[skip.reason] += 1
            if evaluation.blocked:
                skipped[evaluation.blocked] += 1
        intents = _with_one_invalid_number(intents)
        IntentPublisher(
            publisher,
            record=lambda xs: ledger.record_published(xs, now=clock.now()),
            mark=lambda ids: ledger.mark_published(ids, now=clock.now()),
        ).publish(intents)

        counter = OutcomeCounter()
        workers = []
        for channel in Channel:
            parts = WorkerParts(
                channel=channel,
                adapter=build_adapter(channel, settings),
                ledger=ledger,
                clock=clock,
                gate=gate.decide,
                middleware=(counter,),
            )
            workers.append(build_worker(settings, parts, declare=False))
        tasks = [asyncio.create_task(w.run()) for w in workers]
        settled = await _wait_settled(ledger, {i.intent_id for i in intents}, timeout_s)
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)
        for w in workers:
            await w.processor.adapter.aclose()
        dead = {c.value: publisher.queue_depth(dead_queue(c)) for c in Channel}
        publisher.close()
        report = DemoReport(
            accounts=len(book),
            bad_rows=0,
            intents=intents,
            skipped=skipped,
            states=ledger.counts_by_state(),
            outcomes=counter.counts,
            dead_letters=dead,
            letters_dir=settings.letter_outbox,
            database=database,
            log_file=home / "demo.log",
            elapsed_s=time.monotonic() - started,
            twilio_requests=len(twilio.requests),
            emails=len(smtp.messages),
        )
        if not settled:
            report.notes.append(f"not every intent settled within {timeout_s:.0f} s")
    ledger.close()
    return report


def _with_one_invalid_number(intents: list[ContactIntent]) -> list[ContactIntent]:
    """Give the first SMS a number the carrier rejects, so the demo shows a dead letter."""
    for index, intent in enumerate(intents):
        if intent.channel is Channel.SMS and intent.jurisdiction == "CN":
            recipient = dataclasses.replace(intent.recipient, phone=INVALID_NUMBER)
            intents[index] = dataclasses.replace(intent, recipient=recipient)
            break
    return intents


async def _wait_settled(ledger: object, ids: set[str], timeout_s: float) -> bool:
    """Wait until no published intent is still queued or being sent."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = await asyncio.to_thread(ledger.counts_by_state)  # type: ignore[attr-defined]
        open_count = sum(n for (_, state), n in states.items() if state not in SETTLED_STATES)
        if open_count == 0:
            return True
        await asyncio.sleep(0.1)
    return False
