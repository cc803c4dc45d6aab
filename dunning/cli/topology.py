"""`dunning topology declare` and `dunning topology show`: the broker's exchanges and queues."""

from __future__ import annotations

import json
from typing import Any

import typer

from dunning.cli.common import fail, load_settings
from dunning.cli.markup import add_data_row
from dunning.errors import TopologyMismatchError

__all__ = ["app", "describe"]

app = typer.Typer(
    help="Broker topology: declare exchanges, queues and bindings; show them.",
    no_args_is_help=True,
)

_BROKER_HELP = (
    "Broker URL, amqp://user:pass@host:5672/vhost, or the comma-separated URLs of a cluster's "
    "nodes (default $DUNNING_BROKER_URL)."
)


def describe(delivery_limit: int) -> dict[str, Any]:
    """The topology built from the settings as plain JSON-ready data."""
    from dunning.broker.topology import build_topology

    topology = build_topology(delivery_limit=delivery_limit)
    return {
        "exchanges": [
            {"name": ex.name, "type": ex.type, "arguments": dict(ex.arguments)}
            for ex in topology.exchanges
        ],
        "queues": [
            {
                "name": q.name,
                "arguments": dict(q.arguments),
                "bindings": [
                    {"exchange": b.exchange, "routing_key": b.routing_key} for b in q.bindings
                ],
            }
            for q in topology.queues
        ],
    }


@app.command("declare")
def declare_command(
    broker_url: str | None = typer.Option(None, "--broker", help=_BROKER_HELP),
) -> None:
    """Declare every exchange, queue and binding (safe to run twice).

    Exits 2 with the queue and argument named when one exists with other arguments: drain and
    delete it, or change the settings (DUNNING_DELIVERY_LIMIT) to match. A dead-letter queue
    that is still a quorum queue is replaced by a classic one, its messages moved across
    (docs/dead-letters.md).
    """
    from dunning.broker import open_publisher
    from dunning.broker.topology import build_topology

    settings = load_settings(broker_url=broker_url)
    topology = build_topology(delivery_limit=settings.delivery_limit)
    try:
        publisher = open_publisher(settings.broker_url)
        try:
            _declare(publisher, topology)
        finally:
            publisher.close()
    except TopologyMismatchError as exc:  # a BrokerError, but one the settings fix: exit 2
        raise fail(str(exc)) from None
    target = settings.masked()["broker_url"]
    for ex in topology.exchanges:
        typer.echo(f"exchange {ex.name} ({ex.type})")
    for q in topology.queues:
        bound = ", ".join(f"{b.exchange}[{b.routing_key or '*'}]" for b in q.bindings)
        typer.echo(f"queue    {q.name} <- {bound}")
    typer.echo(
        f"declared {len(topology.exchanges)} exchanges and {len(topology.queues)} queues "
        f"on {target}"
    )


def _declare(publisher: Any, topology: Any) -> None:
    """Declare; on RabbitMQ, dead-letter queues from before they were classic are migrated."""
    from dunning.broker.rabbitmq_sync import RabbitPublisher

    if not isinstance(publisher, RabbitPublisher):
        publisher.declare(topology)
        return
    from dunning.broker.dead_queue_migration import declare_migrating

    declare_migrating(publisher, topology, report=typer.echo)


@app.command("show")
def show_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Show the topology the settings describe: exchanges, queues, arguments, bindings."""
    settings = load_settings()
    data = describe(settings.delivery_limit)
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    exchanges = Table(title="Exchanges")
    for column in ("name", "type", "arguments"):
        exchanges.add_column(column)
    for ex in data["exchanges"]:
        add_data_row(exchanges, ex["name"], ex["type"], _args(ex["arguments"]))
    queues = Table(title="Queues")
    for column in ("name", "arguments", "bound from"):
        queues.add_column(column)
    for q in data["queues"]:
        bound = "\n".join(f"{b['exchange']} [{b['routing_key'] or '*'}]" for b in q["bindings"])
        add_data_row(queues, q["name"], _args(q["arguments"]), bound)
    console = Console()
    console.print(exchanges)
    console.print(queues)


def _args(arguments: dict[str, Any]) -> str:
    return "\n".join(f"{k}={v}" for k, v in sorted(arguments.items())) or "-"
