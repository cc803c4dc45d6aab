"""`dunning sandbox`: run the loopback stand-ins (Twilio API, SMTP sink) until interrupted.

Prints the DUNNING_* variables that point workers and the webhook at them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
from typing import Any

import typer

from dunning.cli.common import load_settings
from dunning.settings import Settings

__all__ = ["app", "run_sandbox", "sandbox_command"]

app = typer.Typer(help="Loopback stand-ins for Twilio and SMTP.", no_args_is_help=False)


def _smtp_sink(host: str, port: int) -> Any | None:
    """The SMTP sink context manager, or None when this build has none."""
    try:
        module = importlib.import_module("dunning.sandbox.smtp_sink")
    except ImportError:
        return None
    return module.SmtpSink(host=host, port=port)


async def run_sandbox(
    settings: Settings,
    *,
    host: str,
    twilio_port: int,
    smtp_port: int,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Serve both stand-ins until ``stop`` is set (or SIGINT/SIGTERM); prints the settings."""
    from dunning.sandbox.twilio_api import TwilioStandIn  # aiohttp and twilio load only here

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        twilio = await stack.enter_async_context(
            TwilioStandIn(
                settings.twilio_account_sid,
                settings.twilio_auth_token,
                host=host,
                port=twilio_port,
                clock=settings.clock(),  # DUNNING_NOW dates messages as the workers see them
            )
        )
        lines = [
            "DUNNING_SANDBOX=true",  # lets `dunning webhook` run on the public sandbox secrets
            f"DUNNING_TWILIO_API_BASE={twilio.base_url}",
            f"DUNNING_TWILIO_ACCOUNT_SID={settings.twilio_account_sid}",
            "DUNNING_TWILIO_AUTH_TOKEN=<the token this sandbox was started with>",
        ]
        sink_cm = _smtp_sink(host, smtp_port)
        if sink_cm is None:
            typer.echo("# SMTP sink not available in this build; email has no stand-in", err=True)
        else:
            sink = await stack.enter_async_context(sink_cm)
            lines += [f"DUNNING_SMTP_HOST={host}", f"DUNNING_SMTP_PORT={sink.port}"]
        typer.echo("\n".join(f"export {line}" for line in lines))
        typer.echo(f"# scripting: POST {twilio.base_url}/_sandbox/script (JSON)", err=True)
        if ready is not None:
            ready.set()
        await stop.wait()


def sandbox_command(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)."),
    twilio_port: int = typer.Option(8099, help="Port of the Twilio stand-in (0: any free port)."),
    smtp_port: int = typer.Option(1025, help="Port of the SMTP sink (0: any free port)."),
) -> None:
    """Run the Twilio-compatible API and the SMTP sink on loopback until Ctrl-C.

    The Twilio stand-in accepts the account SID and auth token of the current settings
    (DUNNING_TWILIO_ACCOUNT_SID / DUNNING_TWILIO_AUTH_TOKEN), validates requests against
    Twilio's OpenAPI description and posts signed status callbacks.

    Example: dunning sandbox --twilio-port 0 --smtp-port 0
    """
    settings = load_settings()
    asyncio.run(run_sandbox(settings, host=host, twilio_port=twilio_port, smtp_port=smtp_port))


app.callback(invoke_without_command=True)(sandbox_command)
