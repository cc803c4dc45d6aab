"""`dunning worker CHANNEL`: run one long-lived channel worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from dunning.cli.common import BROKER_HELP, load_settings
from dunning.intents import Channel

__all__ = ["worker_command"]


def worker_command(
    channel: Channel = typer.Argument(
        ...,
        help="Delivery channel to serve: sms, voice, email, letter or bureau (writes the "
        "credit-bureau records to the ledger, docs/bureau.md).",
    ),
    broker: str | None = typer.Option(None, help=BROKER_HELP),
    database_url: str | None = typer.Option(
        None, help="Ledger URL (default $DUNNING_DATABASE_URL)."
    ),
    config_dir: Path | None = typer.Option(
        None, help="Folder with compliance.toml, templates/ ..."
    ),
    prefetch: int | None = typer.Option(None, help="Unacked messages the broker may hand over."),
    max_in_flight: int | None = typer.Option(None, help="Sends in progress at once."),
    metrics_port: int | None = typer.Option(
        None,
        help="Serve /metrics, /healthz and /readyz on this port (default $DUNNING_METRICS_PORT; "
        "off when unset; 0 picks a free port, logged as metrics.listening).",
    ),
    metrics_host: str = typer.Option("0.0.0.0", help="Address the metrics endpoint binds to."),  # noqa: S104  scraped from other hosts
) -> None:
    """Consume dunning.CHANNEL and send each intent through its provider.

    The worker claims each intent in the ledger, asks the compliance gate (contact window, caps,
    suppressions), sends once, records the outcome and only then acks. Retries and contact-window
    waits go through the broker's delay queues; failures that will never succeed go to
    dunning.CHANNEL.dead with the reason in the headers. SIGTERM drains in-flight sends and exits 0.

    Example: DUNNING_BROKER_URL=amqp://guest:guest@localhost:5672/%2F dunning worker sms
    """
    settings = load_settings(
        broker_url=broker,
        database_url=database_url,
        config_dir=config_dir,
        prefetch=prefetch,
        max_in_flight=max_in_flight,
        metrics_port=metrics_port,
    )
    raise typer.Exit(asyncio.run(_serve(channel, settings, metrics_host)))


async def _serve(channel: Channel, settings: object, metrics_host: str) -> int:
    from dunning.channels.base import ChannelAdapter
    from dunning.channels.registry import build_adapter
    from dunning.compliance import ComplianceGate, load_packs
    from dunning.settings import Settings
    from dunning.workers.assembly import (
        WorkerParts,
        build_worker,
        open_worker_ledger,
        release_idle_connections,
    )
    from dunning.workers.metrics.wiring import instrument, serve_metrics
    from dunning.workers.reconcile import periodic_sweep

    assert isinstance(settings, Settings)

    gate = ComplianceGate(load_packs(settings.config_dir / "compliance.toml"))
    if channel is Channel.BUREAU:  # no provider: the record goes to the ledger
        from dunning.bureau.furnisher import Furnisher

        ledger = open_worker_ledger(settings, channel)
        adapter: ChannelAdapter = Furnisher(ledger, gate.decide, settings.clock())
    else:
        adapter = build_adapter(channel, settings)
        ledger = open_worker_ledger(settings, channel)
    parts = WorkerParts(
        channel=channel, adapter=adapter, ledger=ledger, clock=settings.clock(), gate=gate.decide
    )
    metrics = instrument(parts) if settings.metrics_port is not None else None
    worker = build_worker(settings, parts, declare=settings.declare_topology)
    if settings.reconcile_every_s > 0:
        worker.periodic, worker.periodic_every_s = periodic_sweep(settings, ledger, parts.clock)
    release_idle_connections(worker, ledger)
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
