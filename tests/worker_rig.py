"""One worker per adapter on an in-memory broker, as the end-to-end privacy tests run them."""

from __future__ import annotations

from collections.abc import Mapping

from dunning.broker.memory.server import MemoryBroker
from dunning.channels.base import ChannelAdapter
from dunning.clock import SystemClock
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.settings import Settings
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import OutcomeCounter, OutcomeLog
from dunning.workers.runtime import Worker

__all__ = ["memory_workers"]


def memory_workers(
    settings: Settings,
    ledger: Ledger,
    server: MemoryBroker,
    adapters: Mapping[Channel, ChannelAdapter],
    counter: OutcomeCounter,
) -> list[Worker]:
    """Workers for ``adapters`` sharing ``ledger``, each with its own client of ``server``;
    ``counter`` sees every outcome. The topology is the caller's to declare."""
    return [
        build_worker(
            settings,
            WorkerParts(
                channel=channel,
                adapter=adapter,
                ledger=ledger,
                clock=SystemClock(),
                broker=server.client(),
                middleware=(OutcomeLog(), counter),
            ),
            declare=False,
        )
        for channel, adapter in adapters.items()
    ]
