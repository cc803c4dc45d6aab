"""`dunning intent show ID`: the whole story of one intent, as a table or as JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from dunning.cli.common import fail, load_settings, read_ledger
from dunning.cli.markup import add_data_row, esc

if TYPE_CHECKING:
    from dunning.ledger import Ledger

__all__ = ["app", "intent_report"]

app = typer.Typer(help="Look at one contact intent.", no_args_is_help=True)
_SUPPRESSION_COLUMNS = ("channel", "debt_id", "reason", "source", "created_at", "removed_at")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def intent_report(ledger: Ledger, intent_id: str) -> dict[str, Any] | None:
    """{"intent": overview, "timeline": [events]} in JSON-ready values; None when unknown."""
    overview = ledger.intent_overview(intent_id)
    if overview is None:
        return None
    timeline = [
        {"at": e.at, "kind": e.kind, "summary": e.summary, "detail": dict(e.detail)}
        for e in ledger.timeline(intent_id)
    ]
    # The intent row: evaluated (created_at) and published (published_at) open the story.
    opening = [
        {
            "at": overview["created_at"],
            "kind": "evaluated",
            "summary": overview["step"],
            "detail": {},
        }
    ]
    if overview["published_at"] is not None:
        opening.append(
            {"at": overview["published_at"], "kind": "published", "summary": "broker confirmed",
             "detail": {}}
        )  # fmt: skip
    events = sorted(opening + timeline, key=lambda e: e["at"])
    result: dict[str, Any] = _plain({"intent": overview, "timeline": events})
    return result


@app.command("show")
def show_command(
    intent_id: str = typer.Argument(..., help="The intent id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    database_url: str | None = typer.Option(
        None, help="Ledger URL (default $DUNNING_DATABASE_URL)."
    ),
) -> None:
    """Evaluation, publication, every attempt, gate decision, provider ref, receipt,
    suppression, dead letter and replay of one intent. Exits 1 when the intent is unknown."""
    settings = load_settings(database_url=database_url)
    report = read_ledger(settings.database_url, lambda ledger: intent_report(ledger, intent_id))
    if report is None:
        raise fail(f"no intent {intent_id} in the ledger", code=1)
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False, sort_keys=True))
        return
    _print_tables(report)


def _print_tables(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    intent = report["intent"]
    head = Table(title=f"intent {esc(intent['intent_id'])}", show_header=False)
    for key in ("state", "channel", "template", "stage", "jurisdiction", "account_id",
                "person_id", "debt_id", "strategy", "variant", "attempts", "provider_ref",
                "expires_at", "last_error"):  # fmt: skip
        add_data_row(head, key, intent[key])
    console.print(head)
    timeline = Table(title="timeline")
    for column in ("at", "kind", "what", "detail"):
        timeline.add_column(column)
    for event in report["timeline"]:
        detail = ", ".join(f"{k}={v}" for k, v in event["detail"].items())
        at = event["at"][:19].replace("T", " ")  # UTC, to the second
        add_data_row(timeline, at, event["kind"], event["summary"], detail)
    console.print(timeline)
    if intent["suppressions"]:
        supp = Table(title=f"suppressions of {esc(intent['person_id'])}")
        for column in _SUPPRESSION_COLUMNS:
            supp.add_column(column)
        for row in intent["suppressions"]:
            add_data_row(supp, *(row[c] or "" for c in _SUPPRESSION_COLUMNS))
        console.print(supp)
    if intent["inbound"]:
        inbound = Table(title="inbound messages and keypad choices of the person")
        for column in ("received_at", "channel", "kind", "keyword", "possible_opt_out"):
            inbound.add_column(column)
        for row in intent["inbound"]:
            add_data_row(
                inbound, row["received_at"], row["channel"], row["kind"], row["keyword"] or "",
                "yes" if row["possible_opt_out"] else "",
            )  # fmt: skip
        console.print(inbound)
