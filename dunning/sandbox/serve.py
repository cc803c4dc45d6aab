"""Both stand-ins in one process until stopped: what `dunning sandbox` and
``python -m dunning.sandbox`` run.

Prints the DUNNING_* variables that point workers and the webhook at them (stdout, one
``export`` line each, flushed so a parent process can read them at once); notes go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
import sys
from typing import Any

from dunning.settings import Settings

__all__ = ["DEFAULT_HOST", "DEFAULT_SMTP_PORT", "DEFAULT_TWILIO_PORT", "run_sandbox"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_TWILIO_PORT = 8099
DEFAULT_SMTP_PORT = 1025


def _smtp_sink(host: str, port: int) -> Any | None:
    """The SMTP sink context manager, or None when this build has none."""
    try:
        module = importlib.import_module("dunning.sandbox.smtp_sink")
    except ImportError:
        return None
    return module.SmtpSink(host=host, port=port)


def _say(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


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
            _say("# SMTP sink not available in this build; email has no stand-in", err=True)
        else:
            sink = await stack.enter_async_context(sink_cm)
            lines += [f"DUNNING_SMTP_HOST={host}", f"DUNNING_SMTP_PORT={sink.port}"]
        _say("\n".join(f"export {line}" for line in lines))
        _say(f"# scripting: POST {twilio.base_url}/_sandbox/script (JSON)", err=True)
        if ready is not None:
            ready.set()
        await stop.wait()
