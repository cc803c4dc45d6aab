"""Overview: per channel, ready / in flight / dead, consumers, sends and deliveries of the last
minutes, the dead-letter threshold and a warning for queues nobody consumes.

The page renders once; ``console.js`` then polls ``/overview.json`` every few seconds and
updates the numbers in place. Queue counts come from `dunning status`'s reader (the
management API, else passive declares); on the in-process ``memory://`` broker, from the
publisher's queue depths.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dunning.broker.topology import dead_queue, work_queue
from dunning.console.roles import Permission
from dunning.console.sections import Section
from dunning.console.web import ConsoleDeps, deps, page, render
from dunning.errors import DunningError
from dunning.intents import Channel
from dunning.ops.queue_status import collect_status

__all__ = ["overview_data", "section"]

#: Minutes of send and delivery counts the page charts.
RATE_MINUTES = 10


def section() -> Section:
    return Section(
        "Overview",
        "/",
        Permission.VIEW,
        [
            Route("/", overview_page, methods=["GET"]),
            Route("/overview.json", overview_json, methods=["GET"]),
        ],
    )


@page(Permission.VIEW)
async def overview_page(request: Request) -> Response:
    data = await run_in_threadpool(overview_data, deps(request))
    return render(request, "overview.html", data=data, minutes=RATE_MINUTES)


@page(Permission.VIEW)
async def overview_json(request: Request) -> Response:
    data = await run_in_threadpool(overview_data, deps(request))
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


class _Recent:
    """The last overview, shared by every browser polling within ``max_age_s``: each reading
    opens a broker connection, and several open pages should not multiply them."""

    def __init__(self, max_age_s: float = 2.0) -> None:
        self.max_age_s = max_age_s
        self.lock = threading.Lock()
        self.taken: dict[int, tuple[float, dict[str, Any]]] = {}

    def get(self, console: ConsoleDeps) -> dict[str, Any]:
        with self.lock:
            taken = self.taken.get(id(console))
            if taken is not None and time.monotonic() - taken[0] < self.max_age_s:
                return taken[1]
            data = _read_overview(console)
            self.taken[id(console)] = (time.monotonic(), data)
            return data


_RECENT = _Recent()


def overview_data(console: ConsoleDeps) -> dict[str, Any]:
    """Everything the overview shows, as JSON-ready data (at most ``max_age_s`` old)."""
    return _RECENT.get(console)


def _read_overview(console: ConsoleDeps) -> dict[str, Any]:
    now = console.clock.now()
    channels: dict[str, dict[str, Any]] = {
        c.value: {"ready": None, "in_flight": None, "consumers": None, "dead": None}
        for c in Channel
    }
    problem = None
    try:
        if console.settings.broker_url.startswith("memory://"):
            _memory_counts(console, channels)
        else:
            _rabbit_counts(console, channels)
    except DunningError as exc:
        problem = f"cannot read the queues: {exc}"
    rates = console.store.recent_rates(until=now, minutes=RATE_MINUTES)
    warnings = []
    for name, row in channels.items():
        row["sent"] = rates.get(name, {}).get("sent", [0] * RATE_MINUTES)
        row["delivered"] = rates.get(name, {}).get("delivered", [0] * RATE_MINUTES)
        row["sent_last_minutes"] = sum(row["sent"])
        row["delivered_last_minutes"] = sum(row["delivered"])
        row["dead_over_threshold"] = (row["dead"] or 0) > console.dlq_threshold
        if row["ready"] and row["consumers"] == 0:
            warnings.append(
                f"{work_queue(Channel(name))} holds {row['ready']} message(s) "
                "and no worker consumes it"
            )
    return {
        "taken_at": now.isoformat(),
        "channels": channels,
        "dlq_threshold": console.dlq_threshold,
        "dlq_over_threshold": [n for n, r in channels.items() if r["dead_over_threshold"]],
        "warnings": warnings,
        "problem": problem,
    }


def _memory_counts(console: ConsoleDeps, channels: dict[str, dict[str, Any]]) -> None:
    with console.publisher() as publisher:
        for c in Channel:
            channels[c.value]["ready"] = publisher.queue_depth(work_queue(c))
            channels[c.value]["dead"] = publisher.queue_depth(dead_queue(c))


def _rabbit_counts(console: ConsoleDeps, channels: dict[str, dict[str, Any]]) -> None:
    report = collect_status(console.settings.broker_url, timeout_s=2.0)
    for name, (work, dead) in report.channels.items():
        channels[name].update(
            ready=work.ready,
            in_flight=work.unacked,
            consumers=work.consumers,
            dead=dead.depth,
        )
