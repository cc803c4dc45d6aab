"""`dunning sandbox`: run the loopback stand-ins (Twilio API, SMTP sink) until interrupted.

Prints the DUNNING_* variables that point workers and the webhook at them
(dunning/sandbox/serve.py).
"""

from __future__ import annotations

import asyncio

import typer

from dunning.cli.common import load_settings
from dunning.sandbox.serve import (
    DEFAULT_HOST,
    DEFAULT_SMTP_PORT,
    DEFAULT_TWILIO_PORT,
    run_sandbox,
)

__all__ = ["sandbox_command"]


def sandbox_command(
    host: str = typer.Option(DEFAULT_HOST, help="Interface to listen on (loopback by default)."),
    twilio_port: int = typer.Option(
        DEFAULT_TWILIO_PORT, help="Port of the Twilio stand-in (0: any free port)."
    ),
    smtp_port: int = typer.Option(
        DEFAULT_SMTP_PORT, help="Port of the SMTP sink (0: any free port)."
    ),
) -> None:
    """Run the Twilio-compatible API and the SMTP sink on loopback until Ctrl-C.

    The Twilio stand-in accepts the account SID and auth token of the current settings
    (DUNNING_TWILIO_ACCOUNT_SID / DUNNING_TWILIO_AUTH_TOKEN), validates requests against
    Twilio's OpenAPI description and posts signed status callbacks.

    Example: dunning sandbox --twilio-port 0 --smtp-port 0
    """
    settings = load_settings()
    asyncio.run(run_sandbox(settings, host=host, twilio_port=twilio_port, smtp_port=smtp_port))
