"""`dunning visit tasks|record|sweep`: field tasks, their outcomes, and their expiry."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from dunning.cli.common import fail, load_settings, open_ledger
from dunning.cli.markup import add_data_row

if TYPE_CHECKING:
    from dunning.ledger import Ledger

__all__ = ["app"]

app = typer.Typer(
    help="Field visits: tasks, outcomes, expiry (docs/visits.md).", no_args_is_help=True
)
_DB_HELP = "Ledger URL (default $DUNNING_DATABASE_URL)."
_T = TypeVar("_T")


def _with_ledger(database_url: str, work: Callable[[Ledger], _T]) -> _T:
    """Run ``work`` on the ledger; a report that breaks the input rules exits 2, a ledger
    fault exits 1."""
    from dunning.errors import LedgerError
    from dunning.visits import VisitInputError

    ledger = open_ledger(database_url)
    try:
        return work(ledger)
    except VisitInputError as exc:
        raise fail(str(exc)) from None
    except LedgerError as exc:
        raise fail(str(exc), code=1) from None
    finally:
        ledger.close()


def _instant(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"{option}: {text!r} is not an ISO 8601 instant") from None
    if value.tzinfo is None:
        raise fail(f"{option}: {text!r} needs an offset or Z (e.g. 2026-11-28T10:05:00+08:00)")
    return value


@app.command("tasks")
def tasks_command(
    state: list[str] = typer.Option(
        [], help="Only these states (repeatable): waiting, assigned, visited, expired."
    ),
    territory: str | None = typer.Option(None, help="Only this territory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
) -> None:
    """Visit tasks by priority, with their window, team and why a task waits or expired.

    Example: dunning visit tasks --state waiting --state assigned --territory shanghai-pudong
    """
    settings = load_settings(database_url=database_url)
    found = _with_ledger(
        settings.database_url,
        lambda ledger: ledger.visit_tasks(states=state or None, territory=territory),
    )
    rows: list[dict[str, Any]] = [
        {
            "task_id": t.task_id, "account_id": t.account_id, "state": t.state,
            "territory": t.territory, "priority": t.priority, "team": list(t.team),
            "window_opens_at": t.window_opens_at.isoformat(),
            "window_closes_at": t.window_closes_at.isoformat(), "timezone": t.timezone,
            "reason": t.reason,
        }
        for t in found
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("task", "account", "state", "territory", "priority", "team",
                  "window (UTC)", "reason", title="visit tasks")  # fmt: skip
    for r in rows:
        window = f"{r['window_opens_at'][:16]} .. {r['window_closes_at'][11:16]}"
        add_data_row(
            table, r["task_id"], r["account_id"], r["state"], r["territory"], r["priority"],
            ", ".join(r["team"]), window, r["reason"] or "",
        )  # fmt: skip
    Console().print(table)


@app.command("record")
def record_command(
    task_id: str = typer.Argument(..., help="The task id (the visit intent's id)."),
    outcome: str = typer.Option(
        ...,
        help="met_debtor, promise_to_pay, paid, refused, not_home, wrong_address, "
        "third_party_only or aborted_unsafe.",
    ),
    arrived: str = typer.Option(..., help="Arrival, ISO 8601 with offset."),
    departed: str = typer.Option(..., help="Departure, ISO 8601 with offset."),
    collector: list[str] = typer.Option(..., help="A collector on site (repeat for each)."),
    id_shown: bool = typer.Option(
        ..., "--id-shown/--id-not-shown", help="Identification and authorisation shown."
    ),
    entered: bool = typer.Option(False, help="The premises were entered."),
    entry_consent: bool = typer.Option(False, help="The occupant consented to the entry."),
    person: list[str] = typer.Option(
        [],
        help="Who was spoken to (repeat): debtor, spouse, guardian, attorney, relative, "
        "third_party.",
    ),
    recording_sha256: str | None = typer.Option(None, help="SHA-256 of the recording file."),
    recording_start: str | None = typer.Option(None, help="Recording start, ISO 8601."),
    recording_end: str | None = typer.Option(None, help="Recording end, ISO 8601."),
    promise_date: str | None = typer.Option(None, help="promise_to_pay: the day promised."),
    promise_amount: str | None = typer.Option(None, help="promise_to_pay: the amount promised."),
    at_workplace: bool = typer.Option(False, help="The visit was at the debtor's workplace."),
    employer_prohibits: bool = typer.Option(False, help="The employer prohibits such visits."),
    notice_mentions_debt: bool = typer.Option(False, help="A note left mentioned the debt."),
    as_json: bool = typer.Option(False, "--json", help="Print the incidents as JSON."),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
    config_dir: str | None = typer.Option(None, help="Folder with compliance.toml."),
) -> None:
    """Record what a visit came to. The report is checked against the rules of the task's
    pack (the pack.visit section of compliance.toml): no recording, a recording that does not cover
    arrival to departure, entry without consent, a third party contacted, a visit outside
    the window, fewer collectors than required... each becomes a compliance incident with
    its rule id (`dunning report incidents`). The outcome is stored either way and shows in
    `dunning intent show TASK_ID`. Exits 0 once stored (with or without incidents; --json
    lists them), 2 when the report is incomplete or contradicts itself (nothing stored).

    Example: dunning visit record 3f2a... --outcome met_debtor
    --arrived 2026-11-28T10:05:00+08:00 --departed 2026-11-28T10:30:00+08:00
    --collector C-017 --collector C-021 --id-shown --person debtor
    --recording-sha256 9f86d0...  --recording-start 2026-11-28T10:04:30+08:00
    --recording-end 2026-11-28T10:31:00+08:00
    """
    from pathlib import Path

    from dunning.compliance import load_packs
    from dunning.ledger.visit_store import VisitReport
    from dunning.visits import record_outcome

    settings = load_settings(
        database_url=database_url, config_dir=Path(config_dir) if config_dir else None
    )
    packs = load_packs(settings.config_dir / "compliance.toml")
    arrived_at, departed_at = _instant(arrived, "--arrived"), _instant(departed, "--departed")
    assert arrived_at is not None  # a required option
    assert departed_at is not None
    report = VisitReport(
        task_id=task_id, outcome=outcome, arrived_at=arrived_at, departed_at=departed_at,
        collectors=tuple(collector), id_shown=id_shown, entered=entered,
        entry_consent=entry_consent, people=tuple(person), recording_sha256=recording_sha256,
        recording_started_at=_instant(recording_start, "--recording-start"),
        recording_ended_at=_instant(recording_end, "--recording-end"), source="cli",
        promise_date=_promise_day(promise_date), promise_amount=promise_amount,
        detail={"at_workplace": at_workplace, "employer_prohibits": employer_prohibits,
                "notice_mentions_debt": notice_mentions_debt},
    )  # fmt: skip
    now = settings.clock().now()
    incidents = _with_ledger(
        settings.database_url, lambda ledger: record_outcome(ledger, packs, report, now=now)
    )
    found = [{"rule_id": i.rule_id, "reason": i.reason, "source": i.source} for i in incidents]
    if as_json:
        typer.echo(json.dumps({"task_id": task_id, "outcome": outcome, "incidents": found},
                              indent=2, ensure_ascii=False))  # fmt: skip
    else:
        typer.echo(f"recorded {outcome} for task {task_id}: {len(found)} incident(s)")
        for item in found:
            typer.echo(f"  incident {item['rule_id']}: {item['reason']} ({item['source']})")


def _promise_day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"--promise-date: {text!r} is not a date like 2026-12-15") from None


@app.command("sweep")
def sweep_command(
    database_url: str | None = typer.Option(None, help=_DB_HELP),
    config_dir: str | None = typer.Option(None, help="Folder with compliance.toml."),
) -> None:
    """Expire the open tasks whose window has closed (reason: the visit window closed before
    anyone visited), then give the waiting ones a team where one is now eligible. The visit
    worker does this every minute; this runs it once.

    Example: DUNNING_NOW=2026-11-28T23:00:00+08:00 dunning visit sweep
    """
    from pathlib import Path

    from dunning.compliance import load_packs
    from dunning.visits.sweep import sweep

    settings = load_settings(
        database_url=database_url, config_dir=Path(config_dir) if config_dir else None
    )
    packs = load_packs(settings.config_dir / "compliance.toml")
    now = settings.clock().now()
    result = _with_ledger(settings.database_url, lambda ledger: sweep(ledger, packs, now))
    typer.echo(f"expired {result.expired}, assigned {result.assigned}, waiting {result.waiting}")


def incidents_command(
    since: str = typer.Option("30d", help="Recorded from: 30d, 24h ago, or an ISO instant."),
    until: str | None = typer.Option(None, help="Up to (exclusive): ISO instant; default now."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
) -> None:
    """Compliance incidents recorded in [SINCE, UNTIL): the rule id, what broke it, the
    rule's source and the task (intent) it belongs to.

    Example: dunning report incidents --since 7d --json
    """
    from dunning.cli.common import read_ledger, time_range

    settings = load_settings(database_url=database_url)
    start, end = time_range(since, until, settings.clock().now())
    found = read_ledger(
        settings.database_url, lambda ledger: ledger.incidents(since=start, until=end)
    )
    rows: list[dict[str, Any]] = [
        {"at": i.at.isoformat(), "rule_id": i.rule_id, "reason": i.reason, "source": i.source,
         "task_id": i.task_id, "intent_id": i.intent_id}
        for i in found
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"since": start.isoformat(), "until": end.isoformat(),
                               "incidents": rows}, indent=2, ensure_ascii=False))  # fmt: skip
        return
    from rich.console import Console
    from rich.table import Table

    title = f"compliance incidents {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"
    table = Table("at (UTC)", "rule", "reason", "source", "intent", title=title)
    for r in rows:
        add_data_row(table, r["at"][:19].replace("T", " "), r["rule_id"], r["reason"],
                     r["source"], r["intent_id"])  # fmt: skip
    Console().print(table)
