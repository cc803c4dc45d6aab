"""Reports: champion/challenger variants (as `dunning report variants` counts them), roll
rates between two days (`dunning report rolls`) and a bureau cycle's counts (`dunning report
bureau`).

A period report is a :class:`Report` in :data:`REPORTS`: a title and a function of the
console and the period that returns rows (a list of dicts, shown as a table). Roll rates and
the bureau cycle take their own parameters (:mod:`dunning.console.pages.report_tables`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dunning.console.pages.report_tables import (
    ROLL_GROUPS,
    Table,
    bureau_tables,
    read_params,
    roll_tables,
)
from dunning.console.roles import Permission
from dunning.console.sections import Section
from dunning.console.web import ConsoleDeps, deps, page, render
from dunning.ledger.reports import variant_totals

__all__ = ["PLANNED", "REPORTS", "Report", "section"]

_PERIODS_D = (7, 30, 90)


@dataclass(frozen=True)
class Report:
    title: str
    rows: Callable[[ConsoleDeps, datetime, datetime], list[dict[str, Any]]]


def _variants(console: ConsoleDeps, since: datetime, until: datetime) -> list[dict[str, Any]]:
    rows = console.ledger.variant_report(since=since, until=until)
    return [
        {
            "strategy": row.strategy,
            "variant": row.variant,
            "intents": row.intents,
            "contacted": row.contacted,
            "delivered": row.delivered,
            "failed": row.failed,
            "delivery rate": "-" if row.delivery_rate is None else f"{row.delivery_rate:.1%}",
        }
        for row in variant_totals(rows)
    ]


#: Reports shown, in order. Append one to add it to the page.
REPORTS: list[Report] = [Report("Champion / challenger variants", _variants)]
#: Reports the page names as not yet available (remove a title when its Report is added).
PLANNED: list[str] = []


def section() -> Section:
    return Section(
        "Reports", "/reports", Permission.VIEW, [Route("/reports", reports_page, methods=["GET"])]
    )


@page(Permission.VIEW)
async def reports_page(request: Request) -> Response:
    console = deps(request)
    try:
        days = int(request.query_params.get("days", "30"))
    except ValueError:
        days = 30
    days = days if days in _PERIODS_D else 30
    until = console.clock.now()
    since = until - timedelta(days=days)

    params = read_params(request.query_params, until.date())

    def build() -> tuple[list[tuple[str, list[dict[str, Any]]]], list[Table], list[Table]]:
        tables = [(report.title, report.rows(console, since, until)) for report in REPORTS]
        return tables, roll_tables(console, params), bureau_tables(console, params.cycle)

    tables, rolls, bureau = await run_in_threadpool(build)
    return render(
        request,
        "reports.html",
        400 if params.errors else 200,
        tables=tables,
        rolls=rolls,
        bureau=bureau,
        params=params,
        roll_groups=ROLL_GROUPS,
        planned=PLANNED,
        days=days,
        periods=_PERIODS_D,
    )
