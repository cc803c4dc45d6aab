"""`dunning dlq list|show|replay|reissue|purge`: the dead-letter queues, read and worked safely.

See docs/dead-letters.md for what to do when a dead-letter queue grows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dunning.cli.common import fail, load_settings, open_ledger
from dunning.cli.markup import add_data_row, esc
from dunning.settings import Settings

__all__ = ["app"]

app = typer.Typer(help="Dead letters: list, show, replay, reissue and purge.", no_args_is_help=True)

_CHANNEL = typer.Option(None, "--channel", help="sms, voice, email or letter (repeatable).")
_REASON = typer.Option(
    None, "--reason", help="Substring of the reason, error class or error detail."
)
_INTENT = typer.Option(None, "--intent-id", help="Only this intent (or message) id.")
_SINCE = typer.Option(None, "--since", help="Died at or after this ISO instant.")
_UNTIL = typer.Option(None, "--until", help="Died before this ISO instant.")


def _filter(
    channel: list[str] | None,
    reason: str | None,
    intent_id: str | None,
    since: str | None,
    until: str | None,
) -> Any:
    from dunning.workers.dlq import DeadLetterFilter, channels_of

    try:
        return DeadLetterFilter(
            channels=channels_of(channel),
            reason=reason,
            intent_id=intent_id,
            since=_instant(since, "--since"),
            until=_instant(until, "--until"),
        )
    except ValueError as exc:
        raise fail(str(exc)) from None


def _instant(raw: str | None, option: str) -> datetime | None:
    if raw is None:
        return None
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{option} needs an offset or Z, like 2026-11-28T02:00:00Z")
    return value


@contextmanager
def _broker(settings: Settings) -> Iterator[Any]:
    from dunning.broker import open_publisher, topology_for

    publisher = open_publisher(settings.broker_url, topology_for(settings))
    try:
        yield publisher
    finally:
        publisher.close()


@contextmanager
def _ledger(settings: Settings) -> Iterator[Any]:
    ledger = open_ledger(settings.database_url)  # never migrates: `dunning db upgrade` does
    try:
        yield ledger
    finally:
        ledger.close()


@app.command("list")
def list_command(
    channel: list[str] | None = _CHANNEL,
    reason: str | None = _REASON,
    since: str | None = _SINCE,
    until: str | None = _UNTIL,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Count dead letters by channel and reason, with the oldest and newest death.

    Reads without removing: messages are fetched unacked and handed back in order at the end.
    """
    from dunning.workers.dlq import summarize_dead_letters

    settings = load_settings()
    flt = _filter(channel, reason, None, since, until)
    with _broker(settings) as publisher:
        summary = summarize_dead_letters(publisher, flt)
    rows: list[dict[str, Any]] = [
        {"channel": c, "error_class": e, "reason": r, "count": n}
        for (c, e, r), n in sorted(summary.counts.items(), key=lambda kv: -kv[1])
    ]
    if as_json:
        data = {
            "total": summary.total,
            "oldest": _iso(summary.oldest),
            "newest": _iso(summary.newest),
            "groups": rows,
        }
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title=f"Dead letters: {summary.total}")
    for column in ("channel", "error class", "reason", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for row in rows:
        add_data_row(table, row["channel"], row["error_class"], row["reason"][:80], row["count"])
    console = Console()
    console.print(table)
    console.print(f"oldest {_iso(summary.oldest) or '-'}   newest {_iso(summary.newest) or '-'}")


@app.command("show")
def show_command(
    message_id: str = typer.Argument(..., help="Intent id (or AMQP message id)."),
    channel: list[str] | None = _CHANNEL,
) -> None:
    """Show one dead letter: decoded intent, headers and its x-death history."""
    from dunning.workers.dlq import describe, find_dead_letter

    settings = load_settings()
    flt = _filter(channel, None, None, None, None)
    with _broker(settings) as publisher:
        letter = find_dead_letter(publisher, message_id, flt)
    if letter is None:
        raise fail(f"no dead letter with id {message_id}", code=1)
    from rich.pretty import Pretty

    console = Console()
    data = describe(letter)
    console.rule(f"{esc(data['channel'])} dead letter {esc(data['intent_id'])}")
    console.print(f"[bold]{esc(data['error_class'])}[/bold]: {esc(data['reason'])}")
    console.print(f"died at {_iso(data['died_at'])}, replayed {data['replay_count']} time(s)")
    console.print(Pretty({"headers": data["headers"], "x-death": data["x_death"]}))
    console.print(Pretty({"body": data["body"]}))


@app.command("replay")
def replay_command(
    channel: list[str] | None = _CHANNEL,
    reason: str | None = _REASON,
    intent_id: str | None = _INTENT,
    since: str | None = _SINCE,
    until: str | None = _UNTIL,
    limit: int | None = typer.Option(None, "--limit", min=1, help="Replay at most this many."),
    rate: float | None = typer.Option(None, "--rate", min=0.01, help="Messages per second."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Change nothing; count only."),
    max_replays: int = typer.Option(3, "--max-replays", help="Refuse after this many replays."),
    force: bool = typer.Option(False, "--force", help="Replay past --max-replays."),
) -> None:
    """Republish dead letters to dunning.intents after the fault is fixed.

    Each copy is confirmed by the broker before its dead letter is removed; an intent that
    died without reaching a provider is set back to queued (audited), one that was sent is
    never sent again. A message still invalid dies again with its new reason.
    """
    from dunning.workers.dlq import replay_dead_letters

    settings = load_settings()
    flt = _filter(channel, reason, intent_id, since, until)
    with _broker(settings) as publisher, _ledger(settings) as ledger, _bar(limit) as advance:
        report = replay_dead_letters(
            publisher,
            ledger,
            flt,
            clock=settings.clock(),
            limit=limit,
            rate_per_s=rate,
            dry_run=dry_run,
            max_replays=max_replays,
            force=force,
            progress=advance,
        )
    verb = "would replay" if dry_run else "replayed"
    typer.echo(
        f"{verb} {report.replayed}; removed {report.obsolete} already sent; "
        f"left {report.final} final and {report.over_cap} over the replay cap"
    )


@app.command("reissue")
def reissue_command(
    channel: list[str] | None = _CHANNEL,
    reason: str | None = _REASON,
    intent_id: str | None = _INTENT,
    since: str | None = _SINCE,
    until: str | None = _UNTIL,
    template_from_strategy: bool = typer.Option(
        True,
        "--template-from-strategy/--no-template-from-strategy",
        help="Take each intent's template from its step in the strategy as it is now.",
    ),
    strategy_path: Path | None = typer.Option(
        None, "--strategy", help="Strategy file (default config/strategy.toml)."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Re-issue at most this many."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show old -> new; change nothing."),
    operator: str | None = typer.Option(
        None, "--operator", help="Who re-issues, for the audit log (default: the login name)."
    ),
) -> None:
    """Re-issue dead intents after their strategy was fixed (a wrong template name).

    Each dead intent is rebuilt with the template its strategy step names now, under the same
    intent id (the ledger still sends it at most once), recorded in the audit log as
    `reissued`, published with confirms, and only then removed from the dead-letter queue.
    """
    from functools import partial

    from dunning.producers.step_templates import template_now
    from dunning.producers.strategy import load_strategy
    from dunning.workers.dlq_reissue import reissue_dead_letters

    if not template_from_strategy:
        raise fail("nothing to rebuild: --template-from-strategy is the only source of a template")
    settings = load_settings()
    flt = _filter(channel, reason, intent_id, since, until)
    strategy = load_strategy(strategy_path or settings.config_dir / "strategy.toml")
    who = operator or _login_name()
    with _broker(settings) as publisher, _ledger(settings) as ledger, _bar(limit) as advance:
        report = reissue_dead_letters(
            publisher,
            ledger,
            partial(template_now, strategy),
            flt,
            clock=settings.clock(),
            operator=who,
            limit=limit,
            dry_run=dry_run,
            progress=advance,
        )
    table = Table(title="Dead intents" + (" (dry run: nothing changed)" if dry_run else ""))
    for column in ("intent", "channel", "template", "outcome"):
        table.add_column(column)
    for item in report.items:
        new = item.new_template
        change = item.old_template if new is None else f"{item.old_template} -> {new}"
        outcome = "would re-issue" if dry_run and item.verdict == "reissued" else item.verdict
        add_data_row(table, item.intent_id, item.channel, change, outcome + _why(item.why))
    console = Console()
    console.print(table)
    verb = "would re-issue" if dry_run else "re-issued"
    typer.echo(
        f"{verb} {report.count('reissued') + report.count('resumed')}; "
        f"removed {report.count('obsolete')} already sent; left {report.count('skipped')}"
    )


def _why(why: str) -> str:
    return f": {why}" if why else ""


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "unknown"


@app.command("purge")
def purge_command(
    channel: list[str] | None = _CHANNEL,
    reason: str | None = _REASON,
    intent_id: str | None = _INTENT,
    since: str | None = _SINCE,
    until: str | None = _UNTIL,
    limit: int | None = typer.Option(None, "--limit", min=1, help="Purge at most this many."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete dead letters for good; each one leaves an audit record (dlq_purged)."""
    from dunning.workers.dlq import purge_dead_letters, summarize_dead_letters

    settings = load_settings()
    flt = _filter(channel, reason, intent_id, since, until)
    with _broker(settings) as publisher, _ledger(settings) as ledger:
        if not yes:
            total = summarize_dead_letters(publisher, flt).total
            wanted = total if limit is None else min(total, limit)
            if wanted == 0:
                typer.echo("nothing to purge")
                return
            typer.confirm(f"Delete {wanted} dead letter(s)?", abort=True)
        with _bar(limit) as advance:
            purged = purge_dead_letters(
                publisher, ledger, flt, clock=settings.clock(), limit=limit, progress=advance
            )
    typer.echo(f"purged {purged}")


@contextmanager
def _bar(total: int | None) -> Iterator[Any]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("dead letters", total=total)
        yield lambda n: progress.advance(task, n)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
