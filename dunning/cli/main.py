"""The ``dunning`` command: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from dunning import __version__

app = typer.Typer(
    name="dunning",
    help=(
        "Multichannel debt-collection contact.\n\n"
        "Evaluate accounts into contact intents, run channel workers that send SMS, calls, "
        "email and lawyer letters through RabbitMQ, and follow every intent to its receipt. "
        "Settings come from DUNNING_* environment variables (see `dunning config show`)."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dunning {__version__}")
        raise typer.Exit


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Multichannel debt-collection contact."""


from dunning.cli import config as _config  # noqa: E402
from dunning.cli import db  # noqa: E402  commands register after the app exists
from dunning.cli import demo as _demo  # noqa: E402  commands register after the app exists
from dunning.cli import dlq as _dlq  # noqa: E402
from dunning.cli import evaluate as _evaluate  # noqa: E402
from dunning.cli import intent as _intent  # noqa: E402
from dunning.cli import loadtest as _loadtest  # noqa: E402
from dunning.cli import receipts as _receipts  # noqa: E402
from dunning.cli import reconcile as _reconcile  # noqa: E402
from dunning.cli import report as _report  # noqa: E402
from dunning.cli import sandbox as _sandbox  # noqa: E402
from dunning.cli import status as _status  # noqa: E402
from dunning.cli import templates as _templates  # noqa: E402
from dunning.cli import topology as _topology  # noqa: E402
from dunning.cli import webhook as _webhook  # noqa: E402
from dunning.cli import worker as _worker  # noqa: E402

app.command("worker")(_worker.worker_command)
app.command("status")(_status.status_command)
app.add_typer(_config.app, name="config")
app.command("demo")(_demo.demo_command)
app.command("evaluate")(_evaluate.evaluate_command)
app.command("loadtest")(_loadtest.loadtest_command)
app.command("sandbox")(_sandbox.sandbox_command)
app.add_typer(db.app, name="db")
app.add_typer(_dlq.app, name="dlq")
app.command("reconcile")(_reconcile.reconcile_command)
app.command("webhook")(_webhook.webhook_command)
app.add_typer(_intent.app, name="intent")
app.command("receipts")(_receipts.receipts_command)
app.add_typer(_report.app, name="report")
app.add_typer(_topology.app, name="topology")
app.add_typer(_templates.app, name="templates")


def main() -> None:
    app()
