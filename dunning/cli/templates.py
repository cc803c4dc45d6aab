"""`dunning templates check`: render every template with sample data and run the content rules."""

from __future__ import annotations

from pathlib import Path

import typer

from dunning.cli.common import load_settings
from dunning.cli.markup import esc

__all__ = ["app", "check_command"]

app = typer.Typer(help="Message templates: lint them against the content rules.")


@app.command("check")
def check_command(
    root: Path | None = typer.Option(
        None, "--root", help="Template folder (default: <config_dir>/templates)."
    ),
    channels: Path | None = typer.Option(
        None,
        "--channels",
        help="channels.toml whose [institution.*] tables give sample values "
        "(default: <config_dir>/channels.toml; skipped when absent).",
    ),
    failures_only: bool = typer.Option(False, "--failures-only", help="Show failing rows only."),
) -> None:
    """Render every template with sample data and check opt-out lines, the US debt-collector
    disclosure, banned wording and limited-content voicemails. Exits 1 on any failure."""
    from rich.console import Console
    from rich.table import Table

    from dunning.compliance.template_lint import institution_samples, lint_templates

    settings = load_settings()
    folder = root or settings.config_dir / "templates"
    samples = institution_samples(channels or settings.config_dir / "channels.toml")
    results = lint_templates(folder, samples)
    table = Table(title=f"Template check: {esc(folder)}")
    for column in ("template", "rule", "result"):
        table.add_column(column, overflow="fold")
    failed = [r for r in results if not r.ok]
    for r in failed if failures_only else results:
        verdict = "[green]ok[/green]" if r.ok else f"[red]FAIL[/red] {esc(r.detail)}"
        table.add_row(esc(r.template), esc(r.rule), verdict)
    console = Console()
    console.print(table)
    messages = len({r.template for r in results})
    console.print(f"{messages} messages, {len(results)} checks, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)
