"""The ``dunning`` command: one Typer app, one module per command group.

Commands parse their options, call the use case and print; the errors they let through are
mapped to exit codes here, once for every command (:class:`_Commands`).
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from dunning import __version__
from dunning.cli import bureau as _bureau
from dunning.cli import collectors as _collectors
from dunning.cli import config as _config
from dunning.cli import console as _console
from dunning.cli import db as _db
from dunning.cli import demo as _demo
from dunning.cli import dispute as _dispute
from dunning.cli import dlq as _dlq
from dunning.cli import evaluate as _evaluate
from dunning.cli import handover as _handover
from dunning.cli import intent as _intent
from dunning.cli import loadtest as _loadtest
from dunning.cli import promise as _promise
from dunning.cli import receipts as _receipts
from dunning.cli import reconcile as _reconcile
from dunning.cli import report as _report
from dunning.cli import sandbox as _sandbox
from dunning.cli import status as _status
from dunning.cli import templates as _templates
from dunning.cli import topology as _topology
from dunning.cli import visit as _visit
from dunning.cli import webhook as _webhook
from dunning.cli import worker as _worker
from dunning.cli.common import fail
from dunning.errors import ConfigError, DunningError

__all__ = ["app", "exit_code", "main"]

#: Commands whose configuration errors are a failure of the run, exit 1 like a broker that is
#: down: the demo, the load test (its loopback and matplotlib checks, workers that do not start)
#: and the webhook (secrets left at the sandbox's public values).
_CONFIG_ERRORS_FAIL_THE_RUN = frozenset({"demo", "loadtest", "webhook"})


def exit_code(error: DunningError, command: str | None) -> int:
    """2 for a ConfigError (bad input: fix the settings, a file or an option), 1 for any other
    DunningError (a broker, ledger or provider failure), and 1 for every error of the commands
    in :data:`_CONFIG_ERRORS_FAIL_THE_RUN`."""
    if isinstance(error, ConfigError) and command not in _CONFIG_ERRORS_FAIL_THE_RUN:
        return 2
    return 1


class _Commands(TyperGroup):
    """The root group: a DunningError a command lets through prints ``error: <message>`` on
    stderr and exits with :func:`exit_code` (cleanup in the command has run by then)."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (recent typer ships its own click)
        try:
            return super().invoke(ctx)
        except DunningError as exc:
            raise fail(str(exc), code=exit_code(exc, ctx.invoked_subcommand)) from None


app = typer.Typer(
    name="dunning",
    cls=_Commands,
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


app.command("worker")(_worker.worker_command)
app.command("status")(_status.status_command)
app.add_typer(_config.app, name="config")
app.command("demo")(_demo.demo_command)
app.command("evaluate")(_evaluate.evaluate_command)
app.command("loadtest")(_loadtest.loadtest_command)
app.command("sandbox")(_sandbox.sandbox_command)
app.add_typer(_db.app, name="db")
app.add_typer(_dlq.app, name="dlq")
app.command("reconcile")(_reconcile.reconcile_command)
app.command("webhook")(_webhook.webhook_command)
app.add_typer(_intent.app, name="intent")
app.command("receipts")(_receipts.receipts_command)
app.add_typer(_report.app, name="report")
app.add_typer(_topology.app, name="topology")
app.add_typer(_templates.app, name="templates")
app.add_typer(_console.app, name="console")
app.add_typer(_collectors.app, name="collectors")
app.add_typer(_visit.app, name="visit")
_report.app.command("incidents")(_visit.incidents_command)
app.add_typer(_promise.app, name="promise")
app.add_typer(_dispute.app, name="dispute")
app.add_typer(_handover.app, name="handover")
app.add_typer(_bureau.app, name="bureau")


def main() -> None:
    app()
