"""`dunning webhook`: serve the receipts webhook (Twilio callbacks, inbound SMS, events)."""

from __future__ import annotations

from pathlib import Path

import typer

from dunning.cli.common import BROKER_HELP, fail, load_settings
from dunning.errors import ConfigError, LedgerError

__all__ = ["webhook_command"]


def webhook_command(
    host: str = typer.Option("127.0.0.1", help="Address to bind (0.0.0.0 behind a proxy)."),
    port: int = typer.Option(8080, help="Port to bind."),
    public_url: str | None = typer.Option(
        None,
        help="URL Twilio calls, as Twilio sees it (default $DUNNING_WEBHOOK_PUBLIC_URL); "
        "signatures are checked against it, never against the Host header.",
    ),
    database_url: str | None = typer.Option(
        None, help="Ledger URL (default $DUNNING_DATABASE_URL)."
    ),
    broker: str | None = typer.Option(None, help=BROKER_HELP),
    publish: bool = typer.Option(
        True,
        help="Publish receipts to the dunning.receipts exchange (RabbitMQ URLs only: the "
        "memory broker lives in another process).",
    ),
    config_dir: Path | None = typer.Option(None, help="Folder with channels.toml, templates/."),
    sandbox: bool | None = typer.Option(
        None,
        "--sandbox/--no-sandbox",
        help="Run beside the sandbox stand-ins on their public secrets (default "
        "$DUNNING_SANDBOX). Without it the webhook refuses to start until "
        "DUNNING_TWILIO_AUTH_TOKEN, DUNNING_WEBHOOK_SECRET, DUNNING_UNSUBSCRIBE_SECRET and "
        "DUNNING_WEBHOOK_PUBLIC_URL are set.",
    ),
) -> None:
    """Receive provider callbacks: record each receipt in the ledger, answer at once, and
    publish it to the receipts feed from the ledger (the broker may be down meanwhile).

    Endpoints: POST /twilio/status, /twilio/call-status, /twilio/amd, /twilio/gather,
    /twilio/inbound (Twilio-signed), /email/events and /letters/events (X-Dunning-Signature),
    /email/unsubscribe, GET /healthz. See docs/receipts.md.
    """
    import uvicorn

    from dunning.receipts.assembly import open_webhook

    settings = load_settings(
        webhook_public_url=public_url,
        database_url=database_url,
        broker_url=broker,
        config_dir=config_dir,
        sandbox=sandbox,
    )
    try:
        webhook = open_webhook(settings, publish=publish)
    except (ConfigError, LedgerError) as exc:
        raise fail(str(exc), code=1) from None
    typer.echo(f"webhook on http://{host}:{port} (public URL {settings.webhook_public_url})")
    try:
        uvicorn.run(
            webhook.app, host=host, port=port, log_level=settings.log_level, access_log=False
        )
    finally:
        webhook.ledger.close()
