"""`dunning db upgrade` and `dunning db current`: the ledger's schema migrations."""

from __future__ import annotations

import typer

from dunning.cli.common import connect_ledger, fail, load_settings, safe_url, sqlite_file
from dunning.errors import ConfigError, LedgerError

__all__ = ["app"]

app = typer.Typer(
    help="Ledger database: apply migrations, show the schema revision.", no_args_is_help=True
)

_URL_HELP = "Ledger URL, e.g. postgresql+psycopg://user@host/db (default $DUNNING_DATABASE_URL)."


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
    engine = connect_ledger(settings.database_url, create=True)
    try:
        before = engines.current_revision(engine)
        engines.upgrade_head(engine)
        after = engines.current_revision(engine)
    except (ConfigError, LedgerError) as exc:
        raise fail(str(exc), code=1) from None
    finally:
        engine.dispose()
    where = safe_url(settings.database_url)
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
    path = sqlite_file(settings.database_url)
    current = None if path is not None and not path.exists() else _revision(settings.database_url)
    head = engines.head_revision()
    typer.echo(f"current: {current or 'none'}\nhead:    {head}")
    if current != head:
        raise typer.Exit(1)


def _revision(database_url: str) -> str | None:
    from dunning.ledger import engine as engines

    engine = connect_ledger(database_url)
    try:
        return engines.current_revision(engine)
    except (ConfigError, LedgerError) as exc:
        raise fail(str(exc), code=1) from None
    finally:
        engine.dispose()
