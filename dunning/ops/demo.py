"""The embedded demo: a small book of accounts through the whole system, in one process.

Evaluator → memory broker (or RabbitMQ with --broker) → four channel workers → the sandbox
stand-ins (Twilio-compatible API, SMTP sink, print-vendor outbox) → signed status callbacks →
the receipts webhook → SQLite ledger. Nothing is faked inside: the workers, adapters, SDKs and
webhook are the production ones, talking over loopback sockets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dunning.broker import open_publisher
from dunning.broker.topology import build_topology, dead_queue
from dunning.channels.base import ChannelAdapter
from dunning.channels.registry import build_adapter
from dunning.clock import Clock
from dunning.compliance.packs import PackSet
from dunning.errors import ConfigError
from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.ledger.visit_store import VisitTask
from dunning.producers.accounts import Account
from dunning.producers.run import Backends, evaluate_and_publish
from dunning.producers.sources import open_accounts
from dunning.settings import Settings
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.dlq import DeadLetterFilter, summarize_dead_letters
from dunning.workers.middleware import OutcomeCounter
from dunning.workers.pipeline import Gate

__all__ = ["DemoReport", "LocalTime", "run_demo"]

#: A number the Twilio stand-in rejects with 21211, so the demo shows a dead letter.
INVALID_NUMBER = "+15005550001"
OPEN_STATES = {"queued", "sending"}


@dataclass(frozen=True)
class LocalTime:
    """What the demo's instant is in one time zone of the book, against its contact window."""

    zone: str
    jurisdictions: tuple[str, ...]
    local: str  # HH:MM
    window: str  # "08:00-21:00", or "" when no pack is in force
    open: bool


@dataclass
class DemoReport:
    accounts: int
    intents: list[ContactIntent]
    skipped: Counter[str]
    states: dict[tuple[str, str], int]
    dead_letters: dict[str, int]
    letters_dir: Path
    database: str
    log_file: Path
    elapsed_s: float
    dead_reasons: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: (channel, debtor's time zone, ledger reason) of every intent left deferred.
    deferred: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    local_times: list[LocalTime] = field(default_factory=list)
    twilio_requests: int = 0
    callbacks: int = 0
    emails: int = 0
    notes: list[str] = field(default_factory=list)
    settled: bool = True
    #: The field tasks the visit worker made (a book with territories and a roster).
    visit_tasks: list[VisitTask] = field(default_factory=list)


async def run_demo(
    settings: Settings,
    *,
    accounts: int,
    seed: int,
    now: datetime,
    timeout_s: float,
    book: Path | None = None,
    roster: Path | None = None,
) -> DemoReport:
    """The demo on a synthetic book, or on ``book`` (a CSV or JSONL book) when given; the
    collectors of ``roster`` (a CSV, docs/visits.md) staff the field visits."""
    from dunning.compliance import ComplianceGate, load_packs
    from dunning.receipts.app import create_app
    from dunning.receipts.server import bind, serving
    from dunning.sandbox.smtp_sink import SmtpSink
    from dunning.sandbox.twilio_api import TwilioStandIn
    from dunning.visits.channel import VisitChannel
    from dunning.visits.roster import read_roster

    started = time.monotonic()
    home = settings.data_dir / "demo"
    database = f"sqlite:///{home / 'dunning.db'}"
    ledger = Ledger.open(database)
    sock, webhook_url = bind()
    async with (
        TwilioStandIn(settings.twilio_account_sid, settings.twilio_auth_token) as twilio,
        SmtpSink() as smtp,
    ):
        settings = dataclasses.replace(
            settings,
            sandbox=True,  # the stand-ins sign with the public sandbox secrets
            database_url=database,
            twilio_api_base=twilio.base_url,
            webhook_public_url=webhook_url,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            letter_outbox=home / "letters" / "outbox",
            now=now,
        )
        clock = settings.clock()
        publisher = open_publisher(settings.broker_url)
        publisher.declare(build_topology(delivery_limit=settings.delivery_limit))
        packs = load_packs(settings.config_dir / "compliance.toml")
        gate = ComplianceGate(packs)
        adapters, notes = _build_adapters(settings)
        # Field tasks are written to the demo's ledger; accounts with a territory get visits.
        adapters[Channel.VISIT] = VisitChannel(
            ledger, packs, settings.config_dir / "templates", clock
        )
        if roster is not None:
            for collector in read_roster(roster, now=clock.now()):
                ledger.add_collector(collector)
        from dunning.bureau.furnisher import Furnisher

        adapters[Channel.BUREAU] = Furnisher(ledger, gate.decide, clock)
        async with serving(create_app(settings, ledger), sock):
            backends = Backends(ledger=ledger, broker=publisher, gate=gate)
            book_size, zones, intents, skipped = _evaluate_and_publish(
                settings, backends, clock, set(adapters), accounts=accounts, seed=seed, book=book
            )
            settled = await _run_workers(settings, ledger, clock, gate.decide, adapters, timeout_s)
            try:
                await twilio.wait_idle(timeout_s)  # every status callback has reached the webhook
            except TimeoutError:
                settled = False
        dead = {c.value: publisher.queue_depth(dead_queue(c)) for c in Channel}
        dead_reasons = summarize_dead_letters(publisher, DeadLetterFilter()).counts
        publisher.close()
        report = DemoReport(
            accounts=book_size,
            intents=intents,
            skipped=skipped,
            states=ledger.counts_by_state(),
            dead_letters=dead,
            dead_reasons=dead_reasons,
            deferred=_deferral_reasons(ledger, intents),
            local_times=_local_times(zones, packs, now),
            letters_dir=settings.letter_outbox,
            database=database,
            log_file=home / "demo.log",
            elapsed_s=time.monotonic() - started,
            twilio_requests=len(twilio.requests),
            callbacks=len(twilio.callbacks.records),
            emails=len(smtp.messages),
            notes=notes,
            settled=settled,
            visit_tasks=ledger.visit_tasks(),
        )
        if not settled:
            report.notes.append(f"not every intent settled within {timeout_s:.0f} s")
    ledger.close()
    return report


class _RunningChannels:
    """The demo's intent filter: holds back intents whose channel has no worker here (counted
    as skipped) and gives the first CN SMS a number the carrier rejects, so the demo shows a
    dead letter; keeps every intent it lets through."""

    def __init__(self, channels: set[Channel]) -> None:
        self.channels = channels
        self.intents: list[ContactIntent] = []
        self.not_running: Counter[str] = Counter()
        self._invalid_given = False

    def __call__(self, intent: ContactIntent) -> ContactIntent | None:
        if intent.channel not in self.channels:
            self.not_running[f"{intent.channel.value} worker not running"] += 1
            return None
        if (
            not self._invalid_given
            and intent.channel is Channel.SMS
            and intent.jurisdiction == "CN"
        ):
            recipient = dataclasses.replace(intent.recipient, phone=INVALID_NUMBER)
            intent = dataclasses.replace(intent, recipient=recipient)
            self._invalid_given = True
        self.intents.append(intent)
        return intent


def _evaluate_and_publish(
    settings: Settings,
    backends: Backends,
    clock: Clock,
    channels: set[Channel],
    *,
    accounts: int,
    seed: int,
    book: Path | None = None,
) -> tuple[int, dict[str, set[str]], list[ContactIntent], Counter[str]]:
    """Evaluate a synthetic book (or the one at ``book``) as `dunning evaluate` does
    (pre-check, batched suppressions)."""
    from dunning.producers.strategy import load_strategy
    from dunning.producers.synthetic import synthetic_book

    now = clock.now()
    if book is None:
        book_accounts = list(synthetic_book(accounts, seed=seed, as_of=now.date()))
    else:
        book_accounts = _read_book(book)
    strategy = load_strategy(settings.config_dir / "strategy.toml")
    running = _RunningChannels(channels)
    report = evaluate_and_publish(
        book_accounts, strategy, as_of=now.date(), now=now, backends=backends,
        intent_filter=running,
    )  # fmt: skip
    skipped = running.not_running + report.summary.skipped + report.summary.blocked
    zones: dict[str, set[str]] = {}
    for account in book_accounts:
        zones.setdefault(account.timezone, set()).add(account.jurisdiction)
    return len(book_accounts), zones, running.intents, skipped


def _read_book(path: Path) -> list[Account]:
    """Every account of ``path``; a bad row stops the demo, naming its line."""
    accounts = []
    for row in open_accounts(path):
        if not isinstance(row, Account):
            raise ConfigError(f"{path} line {row.line}: {row.reason}")
        accounts.append(row)
    return accounts


def _deferral_reasons(
    ledger: Ledger, intents: list[ContactIntent]
) -> Counter[tuple[str, str, str]]:
    """Deferred intents by channel, the debtor's time zone and the reason the ledger holds."""
    zones = {i.intent_id: i.timezone for i in intents}
    rows = ledger.deferred_intents()
    return Counter(
        (channel, zones.get(intent_id, "?"), reason or "no reason recorded")
        for intent_id, channel, reason in rows
    )


def _local_times(zones: dict[str, set[str]], packs: PackSet, now: datetime) -> list[LocalTime]:
    """The demo's instant in each zone of the book, and whether contact is allowed there then."""
    found = []
    for zone, jurisdictions in sorted(zones.items()):
        local = now.astimezone(ZoneInfo(zone))
        windows = {
            (w.start, w.end)
            for j in jurisdictions
            if (pack := packs.select(j, now)) is not None and (w := pack.window) is not None
        }
        shown = ", ".join(f"{start:%H:%M}-{end:%H:%M}" for start, end in sorted(windows))
        found.append(
            LocalTime(
                zone=zone,
                jurisdictions=tuple(sorted(jurisdictions)),
                local=f"{local:%H:%M}",
                window=shown,
                open=bool(windows) and all(start <= local.time() < end for start, end in windows),
            )
        )
    return found


def _build_adapters(settings: Settings) -> tuple[dict[Channel, ChannelAdapter], list[str]]:
    """Every channel that can start here; the others are reported, not fatal, in a demo."""
    adapters: dict[Channel, ChannelAdapter] = {}
    notes = []
    for channel in Channel:
        if channel in (Channel.VISIT, Channel.BUREAU):
            continue  # built with the ledger, in run_demo
        if channel is Channel.LEGAL:
            continue  # needs the lender's documents: `dunning worker legal` (docs/legal.md)
        try:
            adapters[channel] = build_adapter(channel, settings)
        except ConfigError as exc:
            notes.append(f"{channel.value} worker not started: {exc}")
    return adapters, notes


async def _run_workers(
    settings: Settings,
    ledger: Ledger,
    clock: Clock,
    gate: Gate,
    adapters: dict[Channel, ChannelAdapter],
    timeout_s: float,
) -> bool:
    """Run the workers until no intent is queued or being sent; True if that happened."""
    workers = [
        build_worker(
            settings,
            WorkerParts(
                channel=channel,
                adapter=adapter,
                ledger=ledger,
                clock=clock,
                gate=gate,
                middleware=(OutcomeCounter(),),
            ),
            declare=False,
        )
        for channel, adapter in adapters.items()
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        return await _wait_settled(ledger, timeout_s)
    finally:
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)
        for w in workers:
            await w.processor.adapter.aclose()


async def _wait_settled(ledger: Ledger, timeout_s: float) -> bool:
    """Wait until no intent is still queued or being sent (deferred ones wait for their window)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = await asyncio.to_thread(ledger.counts_by_state)
        if not any(n for (_, state), n in states.items() if state in OPEN_STATES):
            return True
        await asyncio.sleep(0.1)
    return False
