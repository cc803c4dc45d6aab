"""`dunning db upgrade` and `dunning db current`: the ledger's schema migrations."""

from __future__ import annotations

import typer

from dunning.cli.common import fail, load_settings
from dunning.errors import ConfigError, LedgerError

__all__ = ["app"]

app = typer.Typer(
    help="Ledger database: apply migrations, show the schema revision.", no_args_is_help=True
)

_URL_HELP = "Ledger URL, e.g. postgresql+psycopg://user@host/db (default $DUNNING_DATABASE_URL)."


def _safe_url(url: str) -> str:
    """The URL with any password (user part or query parameter) masked, for printing."""
    from dunning.urls import mask_url

    return mask_url(url)


@app.command("upgrade")
def upgrade_command(
    database_url: str | None = typer.Option(None, "--database-url", help=_URL_HELP),
) -> None:
    """Create or migrate the ledger tables to the newest revision (safe to run twice).

    SQLite files and their folder are created when missing. Run it once per release before
    starting workers against PostgreSQL.
    """
    from dunning.ledger import engine as engines

    settings = load_settings(database_url=database_url)
    try:
        engine = engines.make_engine(settings.database_url)
        try:
            before = engines.current_revision(engine)
            engines.upgrade_head(engine)
            after = engines.current_revision(engine)
        finally:
            engine.dispose()
    except (ConfigError, LedgerError) as exc:
        raise fail(str(exc), code=1) from None
    where = _safe_url(settings.database_url)
    if before == after:
        typer.echo(f"{where}: already at revision {after}")
    else:
        typer.echo(f"{where}: upgraded {before or 'empty'} -> {after}")


@app.command("current")
def current_command(
    database_url: str | None = typer.Option(None, "--database-url", help=_URL_HELP),
) -> None:
    """Print the ledger's schema revision and the newest one this version ships.

    Exits 1 when the database is behind (run `dunning db upgrade`).
    """
    from dunning.ledger import engine as engines

    settings = load_settings(database_url=database_url)
    try:
        engine = engines.make_engine(settings.database_url)
        try:
            current = engines.current_revision(engine)
        finally:
            engine.dispose()
    except (ConfigError, LedgerError) as exc:
        raise fail(str(exc), code=1) from None
    head = engines.head_revision()
    typer.echo(f"current: {current or 'none'}\nhead:    {head}")
    if current != head:
        raise typer.Exit(1)
