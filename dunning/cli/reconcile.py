"""`dunning reconcile`: settle intents a crash left in sending, republish, expire, mark unknown."""

from __future__ import annotations

import signal
import threading

import typer

from dunning.cli.common import load_settings, open_ledger

__all__ = ["reconcile_command"]


def reconcile_command(
    once: bool = typer.Option(False, "--once", help="One sweep, then exit."),
    every_s: float = typer.Option(60.0, "--every-s", min=1.0, help="Seconds between sweeps."),
    reconcile_after_s: int | None = typer.Option(
        None, help="Sending this long without a receipt is reconciled (default from settings)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per sweep."),
) -> None:
    """Sweep the ledger: intents stuck in sending are settled from receipts or republished;
    queued intents the broker never confirmed are republished; expired ones are closed; sent
    ones without a final receipt for DUNNING_UNKNOWN_AFTER_S become unknown.

    Workers run the same sweep every DUNNING_RECONCILE_EVERY_S seconds; this command is for
    cron or for an operator after an incident.
    """
    from dunning.broker import open_publisher, topology_for
    from dunning.workers.reconcile import Reconciler, report_json

    settings = load_settings(reconcile_after_s=reconcile_after_s)
    ledger = open_ledger(settings.database_url)  # never migrates: `dunning db upgrade` does
    try:
        publisher = open_publisher(settings.broker_url, topology_for(settings))
    except BaseException:
        ledger.close()
        raise
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    reconciler = Reconciler(
        ledger,
        publisher,
        settings.clock(),
        reconcile_after_s=settings.reconcile_after_s,
        unknown_after_s=settings.unknown_after_s,
    )
    try:
        while True:
            report = reconciler.sweep()
            if as_json:
                typer.echo(report_json(report))
            else:
                typer.echo(
                    f"settled {report.settled}, republished {report.republished_sending} "
                    f"sending and {report.republished_unpublished} unpublished, "
                    f"expired {report.expired}, marked {report.unknown} unknown"
                )
            if once or stop.wait(every_s):
                break
    except KeyboardInterrupt:
        pass
    finally:
        publisher.close()
        ledger.close()
