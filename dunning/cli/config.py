"""`dunning config show` and `dunning config check`: the effective settings; do they work."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import typer

from dunning.cli.common import load_settings
from dunning.cli.markup import add_data_row, esc
from dunning.settings import Settings

__all__ = ["app", "effective_settings"]

app = typer.Typer(
    help="Configuration: show the effective settings, check files and connectivity.",
    no_args_is_help=True,
)

CONFIG_FILES = ("compliance.toml", "strategy.toml", "channels.toml", "law_firms.toml", "templates")


def effective_settings(settings: Settings, env: dict[str, str]) -> list[dict[str, Any]]:
    """Every setting: variable, masked value, source (env, file, default) and whether secret."""
    masked = settings.masked()
    rows = []
    for f in dataclasses.fields(settings):
        var = f"DUNNING_{f.name.upper()}"
        if env.get(var):
            source = "env"
        elif f"{var}_FILE" in env:
            source = f"file {env[f'{var}_FILE']}"
        else:
            source = "default"
        rows.append(
            {
                "name": f.name,
                "variable": var,
                "value": masked[f.name],
                "source": source,
                "secret": bool(f.metadata.get("secret")),
            }
        )
    return rows


@app.command("show")
def show_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print the effective configuration (environment, *_FILE secrets, defaults) and the
    configuration files in use. Secrets and URL passwords are shown as ***."""
    settings = load_settings()
    rows = effective_settings(settings, dict(os.environ))
    files = {
        name: {
            "path": str(settings.config_dir / name),
            "present": (settings.config_dir / name).exists(),
        }
        for name in CONFIG_FILES
    }
    if as_json:
        typer.echo(json.dumps({"settings": rows, "files": files}, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Effective settings")
    for column in ("variable", "value", "source"):
        table.add_column(column, overflow="fold")
    for row in rows:
        add_data_row(table, row["variable"], row["value"] or "-", row["source"])
    console = Console()
    console.print(table)
    for info in files.values():
        mark = "[green]✓[/]" if info["present"] else "[red]✗ missing[/]"
        console.print(f"{mark} {esc(info['path'])}")


@app.command("check")
def check_command(
    files_only: bool = typer.Option(False, "--files-only", help="Skip connectivity checks."),
    services_only: bool = typer.Option(False, "--services-only", help="Skip file checks."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of lines."),
    book: str | None = typer.Option(
        None,
        "--book",
        help="Accounts file (.csv/.jsonl) or database URL whose jurisdictions and locales are "
        "checked too (default: those of the rule packs and their institutions).",
    ),
) -> None:
    """Validate compliance.toml, strategy.toml, channels.toml, law_firms.toml and the templates,
    then the names between them: every strategy step's template in every locale the book uses,
    senders for every jurisdiction, the notice templates the rule packs wait for. Then reach the
    broker, database, Redis, SMTP server and Twilio API. One line per check (✓ or ✗ with the
    file and key at fault); exits 1 when any check fails."""
    from dunning.ops.checks import run_checks

    settings = load_settings()
    results = run_checks(settings, files=not services_only, services=not files_only, book=book)
    if as_json:
        typer.echo(
            json.dumps([dataclasses.asdict(r) for r in results], indent=2, ensure_ascii=False)
        )
    else:
        width = max((len(r.name) for r in results), default=0)
        for r in results:
            mark = "✓" if r.ok else "✗"
            typer.secho(
                f"{mark} {r.name.ljust(width)}  {r.detail}",
                fg=None if r.ok else typer.colors.RED,
            )
    failed = [r for r in results if not r.ok]
    if not as_json:
        typer.echo(f"{len(results) - len(failed)} of {len(results)} checks passed")
    raise typer.Exit(1 if failed else 0)
