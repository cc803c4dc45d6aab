"""Today: contacts made on one UTC day by channel and jurisdiction, what the gate held back
and why, deferred intents, opt-outs received, and the day as CSV.

The day is the console clock's (``DUNNING_NOW`` pins it) unless ``?day=YYYY-MM-DD`` asks for
another. The CSV lists intent ids, channels, jurisdictions and outcomes: no personal data.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dunning.console.roles import Permission
from dunning.console.sections import Section
from dunning.console.web import audit, deps, page, render

__all__ = ["section"]

CSV_COLUMNS = ("at", "intent_id", "channel", "jurisdiction", "outcome", "detail")


def section() -> Section:
    return Section(
        "Today",
        "/today",
        Permission.VIEW,
        [
            Route("/today", today_page, methods=["GET"]),
            Route("/today.csv", today_csv, methods=["GET"]),
        ],
    )


def _day(request: Request) -> tuple[date, str | None]:
    today = deps(request).clock.now().astimezone(UTC).date()
    raw = request.query_params.get("day", "").strip()
    if not raw:
        return today, None
    try:
        return date.fromisoformat(raw), None
    except ValueError:
        return today, f"day {raw!r} is not a date like 2026-11-28; showing today"


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


@page(Permission.VIEW)
async def today_page(request: Request) -> Response:
    day, problem = _day(request)
    since, until = _bounds(day)
    contacts = await run_in_threadpool(deps(request).store.day_contacts, since=since, until=until)
    channels = sorted({c for c, _ in contacts.sent})
    jurisdictions = sorted({j for _, j in contacts.sent})
    return render(
        request,
        "today.html",
        day=day.isoformat(),
        problem=problem,
        contacts=contacts,
        channels=channels,
        jurisdictions=jurisdictions,
        total_sent=sum(contacts.sent.values()),
    )


@page(Permission.VIEW)
async def today_csv(request: Request) -> Response:
    day, _ = _day(request)
    since, until = _bounds(day)
    contacts = await run_in_threadpool(deps(request).store.day_contacts, since=since, until=until)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in contacts.rows:
        writer.writerow({**row, "at": row["at"].isoformat()})
    audit(request, "csv_download", None, day=day.isoformat(), rows=len(contacts.rows))
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="contacts-{day.isoformat()}.csv"',
            "Cache-Control": "no-store",
        },
    )
