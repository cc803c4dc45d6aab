"""``python -m dunning.sandbox``: the stand-ins in their own process, as `dunning sandbox` runs
them, without loading the command-line application."""

from __future__ import annotations

import argparse
import asyncio
import os

from dunning.errors import ConfigError
from dunning.logs import configure_logging
from dunning.sandbox.serve import (
    DEFAULT_HOST,
    DEFAULT_SMTP_PORT,
    DEFAULT_TWILIO_PORT,
    run_sandbox,
)
from dunning.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dunning.sandbox",
        description="Run the Twilio-compatible API and the SMTP sink on loopback until Ctrl-C.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on")
    parser.add_argument(
        "--twilio-port", type=int, default=DEFAULT_TWILIO_PORT, help="0: any free port"
    )
    parser.add_argument("--smtp-port", type=int, default=DEFAULT_SMTP_PORT, help="0: any free port")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        parser.exit(2, f"error: {exc}\n")
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(
        run_sandbox(
            settings, host=args.host, twilio_port=args.twilio_port, smtp_port=args.smtp_port
        )
    )


if __name__ == "__main__":
    main()
