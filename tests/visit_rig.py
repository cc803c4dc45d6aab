"""A field-visit rig: the sample visit book evaluated into a ledger, and the visit worker run
on the memory broker with the shipped rule packs and a pinned clock."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from pathlib import Path

from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import build_topology
from dunning.clock import ManualClock
from dunning.compliance import ComplianceGate, load_packs
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger.visit_store import Collector
from dunning.producers.run import Backends, RunReport, run_once
from dunning.producers.strategy import load_strategy
from dunning.settings import Settings
from dunning.visits.channel import VisitChannel
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import OutcomeCounter

__all__ = ["BOOK", "CONFIG", "VisitRig", "collector"]

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"
BOOK = CONFIG / "accounts.visits.csv"


def collector(
    collector_id: str, territory: str, *, credential: date, training: date, at: datetime
) -> Collector:
    return Collector(
        collector_id=collector_id, name=f"Collector {collector_id}",
        credential_no=f"CRED-{collector_id}", credential_expires=credential,
        training_expires=training, territory=territory, created_at=at,
    )  # fmt: skip


class VisitRig:
    """The ledger, packs, clock and a memory broker; :meth:`run_worker` serves dunning.visit
    until ``expected`` outcomes have come out."""

    def __init__(self, database_url: str, now: datetime) -> None:
        self.clock = ManualClock(now)
        self.ledger = Ledger.open(database_url)
        self.packs = load_packs(CONFIG / "compliance.toml")
        self.gate = ComplianceGate(self.packs, jitter_s=0)
        self.server = MemoryBroker()
        self.server.declare(build_topology())
        self.counter = OutcomeCounter()

    def evaluate(self, as_of: date, book: Path = BOOK) -> RunReport:
        backends = Backends(ledger=self.ledger, broker=self.server.publisher(), gate=self.gate)
        strategy = load_strategy(CONFIG / "strategy.toml")
        return run_once(str(book), strategy, as_of=as_of, now=self.clock.now(), backends=backends)

    def adapter(self) -> VisitChannel:
        return VisitChannel(self.ledger, self.packs, CONFIG / "templates", self.clock)

    async def run_worker(self, expected: int) -> None:
        parts = WorkerParts(
            channel=Channel.VISIT,
            adapter=self.adapter(),
            ledger=self.ledger,
            clock=self.clock,
            gate=self.gate.decide,
            broker=self.server.client(),
            middleware=(self.counter,),
        )
        worker = build_worker(Settings(shutdown_grace_s=5), parts, declare=False)
        task = asyncio.create_task(worker.run())
        try:
            await self.counter.wait_until(lambda: sum(self.counter.counts.values()) >= expected, 10)
        finally:
            worker.stop()
            assert await task == 0

    def close(self) -> None:
        self.ledger.close()
