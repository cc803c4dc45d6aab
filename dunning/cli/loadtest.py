"""`dunning loadtest`: publish synthetic intents at a rate and measure the workers end to end."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import typer

from dunning.cli.common import fail
from dunning.intents import Channel

__all__ = ["loadtest_command"]


def _weights(text: str, what: str) -> list[tuple[str, float]]:
    """``sms=3,voice=1`` or ``sms`` -> [(name, weight)]."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        try:
            out.append((name.strip(), float(weight) if weight else 1.0))
        except ValueError:
            raise fail(f"--{what}: {part!r} is not NAME or NAME=WEIGHT") from None
    if not out:
        raise fail(f"--{what} is empty")
    return out


def _with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def loadtest_command(
    intents: int = typer.Option(20_000, help="Intents to publish (at most 1,000,000)."),
    rate: float = typer.Option(500.0, help="Target publish rate, intents per second."),
    workers: int = typer.Option(1, help="`dunning worker` processes to start per channel."),
    channels: str = typer.Option("sms", help="Channel mix, e.g. sms or sms=4,voice=1."),
    jurisdictions: str = typer.Option("CN", help="Jurisdiction mix, e.g. CN=3,US=1."),
    attach: bool = typer.Option(False, help="Use workers already running; start none."),
    twilio_api_base: str | None = typer.Option(
        None,
        help="A running Twilio-compatible endpoint on loopback (default: start dunning's "
        "stand-in). One without the stand-in's /_sandbox/script is loaded as it is: scripting "
        "is skipped with a note and duplicates are not counted.",
    ),
    rate_429: float = typer.Option(0.0, help="Share of creates the stand-in answers 429."),
    rate_500: float = typer.Option(0.0, help="Share of creates the stand-in answers 500."),
    response_delay_ms: int = typer.Option(0, help="Stand-in latency per create, ms."),
    max_seconds: float = typer.Option(600.0, help="Stop after this long, finished or not."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON."),
    plot: Path | None = typer.Option(None, help="Draw throughput/latency/depth (matplotlib)."),
    seed: int = typer.Option(0, help="Seed of the synthetic data."),
    broker: str | None = typer.Option(
        None, help="RabbitMQ to load (default: DUNNING_BROKER_URL, else the local one)."
    ),
    vhost: str | None = typer.Option(
        None, help="Run on this existing vhost of the broker (needs --shared-broker)."
    ),
    shared_broker: bool = typer.Option(
        False,
        "--shared-broker",
        help="Run on the broker URL's vhost (or --vhost) as it is: workers consuming there "
        "take part of the load and send it. Default: a vhost of the run's own, deleted after.",
    ),
    management_url: str | None = typer.Option(
        None, help="RabbitMQ management API to create the run's vhost (default: port 15672)."
    ),
    database: str | None = typer.Option(
        None,
        help="PostgreSQL URL to hold the run's ledger in a throw-away schema (default: a "
        "SQLite file in the run folder). Never DUNNING_DATABASE_URL unless given here.",
    ),
    shared_database: bool = typer.Option(
        False,
        "--shared-database",
        help="Write into --database as it is: the run's intents then show in its reports.",
    ),
) -> None:
    """Publish N synthetic intents at a target rate to RabbitMQ, run workers against the
    loopback Twilio stand-in, and report offered vs achieved rate, publish->sent latency
    (p50/p90/p99/max), retries, dead letters, duplicates (must be 0) and queue depth.

    Isolated by default: the run makes a vhost of its own on the broker (management API, else
    rabbitmqctl; refused when neither works, unless --shared-broker) and a ledger of its own (a
    SQLite file, or a throw-away schema in the PostgreSQL --database), and removes both after.
    The operator's vhost and ledger see nothing. Loopback only.

    Example: dunning loadtest --intents 20000 --rate 400 --workers 2 --json out.json
    --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    """
    from rich.console import Console
    from rich.live import Live

    from dunning.loadtest import LoadTestConfig, run_loadtest
    from dunning.loadtest.generator import IntentMix
    from dunning.loadtest.report import (
        live_table,
        require_matplotlib,
        result_table,
        write_json,
        write_plot,
    )

    if plot is not None:  # checked before anything is published: it must not waste the run
        require_matplotlib()
    broker_url = broker or os.environ.get("DUNNING_BROKER_URL") or LoadTestConfig.broker_url
    if vhost is not None:
        if not shared_broker:
            raise fail(
                f"--vhost {vhost}: a vhost the run did not make may have workers consuming on "
                "it; add --shared-broker to accept that they take part of the load"
            )
        broker_url = _with_vhost(broker_url, vhost)
    try:
        mix = IntentMix(
            channels=[(Channel(c), w) for c, w in _weights(channels, "channels")],
            jurisdictions=_weights(jurisdictions, "jurisdictions"),
        )
    except ValueError as exc:
        raise fail(f"--channels: {exc}") from None
    env = os.environ
    behaviour: dict[str, object] = {
        "rate_429": rate_429, "rate_500": rate_500, "response_delay_ms": response_delay_ms,
    }  # fmt: skip
    config = LoadTestConfig(
        intents=intents,
        rate_per_s=rate,
        workers=workers,
        mix=mix,
        broker_url=broker_url,
        database_url=database,
        shared_broker=shared_broker,
        shared_database=shared_database,
        management_url=management_url,
        redis_url=env.get("DUNNING_REDIS_URL") or None,
        config_dir=Path(env.get("DUNNING_CONFIG_DIR", "config")),
        attach=attach,
        twilio_api_base=twilio_api_base,
        behaviour=behaviour,
        max_seconds=max_seconds,
        seed=seed,
    )
    console = Console()
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        result = run_loadtest(config, lambda p: live.update(live_table(p)))
    console.print(result_table(result))
    if json_out is not None:
        write_json(result, json_out)
    if plot is not None:
        write_plot(result, plot)
    if result.duplicates or not result.finished:
        raise typer.Exit(1)
