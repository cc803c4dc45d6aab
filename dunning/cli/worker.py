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
        help="Delivery channel to serve: sms, voice, email, letter, visit (field tasks, "
        "docs/visits.md), bureau (credit-bureau records in the ledger, docs/bureau.md) or legal "
        "(handover bags for the law firm from the book, docs/legal.md).",
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
    from dunning.workers.serve import serve_channel  # the worker's stack loads only here

    ledger_adapter = None
    if channel is Channel.LEGAL:
        from functools import partial

        from dunning.ops.legal_channel import legal_channel

        ledger_adapter = partial(legal_channel, settings)
    raise typer.Exit(asyncio.run(serve_channel(
        channel, settings, metrics_host=metrics_host, ledger_adapter=ledger_adapter,
    )))  # fmt: skip
