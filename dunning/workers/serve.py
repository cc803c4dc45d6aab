"""Run one channel's worker from settings until it stops: what `dunning worker CHANNEL` runs.

Builds the adapter, the worker's ledger, the compliance gate and (with a metrics port) the
metrics endpoint, wires the reconcile sweep, then consumes until SIGTERM or SIGINT.
"""

from __future__ import annotations

from collections.abc import Callable

from dunning.channels.base import ChannelAdapter
from dunning.channels.registry import build_adapter
from dunning.compliance import ComplianceGate, load_packs
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.settings import Settings
from dunning.workers.assembly import (
    WorkerParts,
    build_worker,
    open_worker_ledger,
    release_idle_connections,
)
from dunning.workers.metrics.wiring import instrument, serve_metrics
from dunning.workers.reconcile import periodic_sweep

__all__ = ["serve_channel"]


async def serve_channel(
    channel: Channel,
    settings: Settings,
    *,
    metrics_host: str,
    ledger_adapter: Callable[[Ledger], ChannelAdapter] | None = None,
) -> int:
    """Consume ``channel``'s work queue until stopped; returns the exit code (0 after a drain).

    ``ledger_adapter`` builds an adapter that works on the worker's ledger and lives above
    this package (the legal handover, built by ``dunning worker legal``).
    """
    ledger = open_worker_ledger(settings, channel)
    packs = load_packs(settings.config_dir / "compliance.toml")
    adapter: ChannelAdapter
    gate = ComplianceGate(packs)
    if ledger_adapter is not None:
        adapter = ledger_adapter(ledger)
    elif channel is Channel.VISIT:
        # A visit "send" creates a field task in the ledger: its adapter needs the ledger.
        from dunning.visits.channel import VisitChannel

        adapter = VisitChannel(ledger, packs, settings.config_dir / "templates", settings.clock())
    elif channel is Channel.BUREAU:  # no provider: the record goes to the ledger
        from dunning.bureau.furnisher import Furnisher

        adapter = Furnisher(ledger, gate.decide, settings.clock())
    else:
        adapter = build_adapter(channel, settings)
    parts = WorkerParts(
        channel=channel, adapter=adapter, ledger=ledger, clock=settings.clock(), gate=gate.decide
    )
    metrics = instrument(parts) if settings.metrics_port is not None else None
    worker = build_worker(settings, parts, declare=settings.declare_topology)
    if settings.reconcile_every_s > 0:
        worker.periodic, worker.periodic_every_s = periodic_sweep(settings, ledger, parts.clock)
    release_idle_connections(worker, ledger)
    if channel is Channel.VISIT:
        from dunning.visits.sweep import periodic_sweep as visit_sweep

        # Expire tasks whose window closed, staff the ones that wait (docs/visits.md).
        worker.add_periodic(visit_sweep(ledger, packs, parts.clock), 60.0)
    worker.install_signal_handlers()
    server = None
    try:
        # Bound before consuming: a port that is taken stops the worker with nothing in hand.
        if metrics is not None and settings.metrics_port is not None:
            server = await serve_metrics(
                metrics, worker, ledger, settings, host=metrics_host,
                port=settings.metrics_port,
            )  # fmt: skip
        return await worker.run()
    finally:
        if server is not None:
            await server.stop()
        await adapter.aclose()
        ledger.close()
