"""Show a load test: the live panel while it runs, the final table, ``--json`` and ``--plot``."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dunning.errors import ConfigError
from dunning.loadtest.run import LoadTestResult, Progress

__all__ = ["live_table", "require_matplotlib", "result_table", "write_json", "write_plot"]


def live_table(p: Progress) -> Table:
    """The panel refreshed during the run."""
    table = Table(title=f"dunning loadtest: {p.phase}", show_header=False, min_width=52)
    table.add_row("elapsed", f"{p.elapsed_s:6.1f} s")
    table.add_row("published / target", f"{p.published:,} / {p.target:,}")
    table.add_row("done (final state)", f"{p.tally.done:,}")
    table.add_row("offered rate", f"{p.offered_rate_per_s:8.1f} /s")
    table.add_row("achieved rate (sent)", f"{p.achieved_rate_per_s:8.1f} /s")
    table.add_row("queue depth (ready)", f"{p.queue_depth:,}")
    table.add_row("dead letters", f"{p.dead_letters:,}")
    return table


def result_table(r: LoadTestResult) -> Table:
    """The summary printed at the end."""
    table = Table(title="dunning loadtest: result", show_header=False)
    if r.duplicates is None:
        duplicates = "not counted (the endpoint keeps no record of creates)"
    else:
        duplicates = f"[bold red]{r.duplicates}[/]" if r.duplicates else "0"
    rows = [
        ("intents published / sent", f"{r.published:,} / {r.sent:,}"),
        ("states", ", ".join(f"{k} {v:,}" for k, v in sorted(r.by_state.items()))),
        ("offered rate", f"{r.offered_rate_per_s:.1f} /s"),
        ("achieved rate", f"{r.achieved_rate_per_s:.1f} /s"),
        (
            "latency publish->sent p50/p90/p99/max",
            " / ".join(f"{r.latency_s[k] * 1000:.0f}" for k in ("p50", "p90", "p99", "max"))
            + " ms",
        ),
        ("retries (failed attempts)", f"{r.retries:,}"),
        ("throttled (429, released)", f"{r.throttled:,}"),
        ("dead letters", f"{r.dead_letters:,}"),
        ("duplicates (stand-in record)", duplicates),
        ("finished within the time bound", "yes" if r.finished else "[bold red]no[/]"),
        ("isolated in (removed after)", escape(", ".join(r.isolation)) or "shared broker, ledger"),
        ("wall time", f"{r.wall_s:.1f} s"),
    ]
    rows += [("note", escape(note)) for note in r.notes]
    for name, value in rows:
        table.add_row(name, value)
    return table


def write_json(result: LoadTestResult, path: Path) -> None:
    path.write_text(json.dumps(result.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")


_NO_MATPLOTLIB = "--plot needs matplotlib: pip install 'dunning[bench]' (or pip install matplotlib)"


def require_matplotlib() -> None:
    """Raise ConfigError unless matplotlib imports: checked before a run, not after it."""
    try:
        import matplotlib  # noqa: F401  the import is the check
    except ImportError as exc:
        raise ConfigError(_NO_MATPLOTLIB) from exc


def write_plot(result: LoadTestResult, path: Path) -> None:
    """Throughput, latency and queue depth over time; needs matplotlib (``pip install
    dunning[bench]``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError(_NO_MATPLOTLIB) from exc
    s = result.series
    fig, (rate_ax, lat_ax, depth_ax) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    rate_ax.plot(s["second"], s["offered_per_s"], label="offered /s")
    rate_ax.plot(s["second"], s["achieved_per_s"], label="sent /s")
    rate_ax.set_ylabel("intents/s")
    rate_ax.legend()
    lat_ax.plot(s["second"], s["p50_ms"], label="p50")
    lat_ax.plot(s["second"], s["p99_ms"], label="p99")
    lat_ax.set_ylabel("publish->sent ms")
    lat_ax.legend()
    depth = s["queue_depth"]
    depth_ax.plot([d[0] for d in depth], [d[1] for d in depth], label="queue depth")
    depth_ax.set_ylabel("messages ready")
    depth_ax.set_xlabel("seconds since start")
    fig.suptitle(
        f"{result.sent:,} intents, {result.achieved_rate_per_s:.0f}/s achieved, "
        f"p99 {result.latency_s['p99'] * 1000:.0f} ms"
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def print_result(console: Console, result: LoadTestResult) -> None:
    console.print(result_table(result))
