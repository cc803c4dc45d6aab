"""Side by side, in one run: the bare twilio SDK, the Celery baseline and dunning (1 and 2
workers, ledger on PostgreSQL), on the same RabbitMQ and the same Twilio stand-in process.

Rows: sends/s; ratio to Celery; CPU per send of each system's own processes, read from /proc
(the worker processes, their PostgreSQL backends found by application_name, the stand-in, the
broker); p50/p99 publish → provider (dunning: a second run at half of that row's maximum;
Celery: the flood, as it publishes everything up front); duplicate creates seen by the
stand-in (must be 0); and ``other``: the share of the box's CPU used by processes that are
none of these nor this script during the row. A row with ``other`` above 15 % was disturbed
by other work on the box and is flagged, not trusted. The broker and PostgreSQL are shared
with whatever else runs on the box: their CPU counts whole, and the broker's counts for every
row, so on a busy box its share is an overestimate.

Needs ``pip install -e '.[bench]'`` (Celery), RabbitMQ on 127.0.0.1:5672 and PostgreSQL on
127.0.0.1:5432 (database ``test``).

    .venv/bin/python bench/side_by_side.py --count 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.provider_ceiling import run as sdk_run
from dunning.loadtest import LoadTestConfig, LoadTestResult, run_loadtest
from dunning.loadtest.processes import child_env, script_standin, start_standin
from dunning.logs import configure_logging

PG = "postgresql://postgres@127.0.0.1:5432/test"
TICK_S = 1 / os.sysconf("SC_CLK_TCK")
DISTURBED = 0.15


def _ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


def _box_busy() -> tuple[int, int]:
    """(busy ticks, all ticks) of the whole box since boot."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def _descendants(root: int) -> set[int]:
    tree, found, todo = _children(), set(), [root]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pids_named(name: str) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm", encoding="ascii") as f:
                    if f.read().strip() == name:
                        found.add(int(entry))
            except OSError:
                continue
    return found


@dataclass
class CpuMeter:
    """CPU seconds per group of processes between start() and stop(), sampled every 0.25 s
    (a process that exits between samples loses at most its last quarter second)."""

    groups: dict[str, Callable[[], set[int]]]
    ticks: dict[str, int] = field(default_factory=dict)
    _base: dict[int, int] = field(default_factory=dict)
    _last: dict[tuple[str, int], int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    box: tuple[int, int] = (0, 0)
    wall_s: float = 0.0

    def start(self) -> None:
        for pids in (g() for g in self.groups.values()):
            for pid in pids:
                self._base[pid] = _ticks(pid) or 0
        self._box0, self._t0 = _box_busy(), time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for name, group in self.groups.items():
            for pid in group():
                now = _ticks(pid)
                if now is not None:
                    self._last[(name, pid)] = now - self._base.get(pid, 0)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self._sample()

    def stop(self) -> None:
        self._sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        busy, total = _box_busy()
        self.box = (busy - self._box0[0], total - self._box0[1])
        self.wall_s = time.monotonic() - self._t0
        for (name, _pid), value in self._last.items():
            self.ticks[name] = self.ticks.get(name, 0) + value

    def seconds(self, name: str) -> float:
        return self.ticks.get(name, 0) * TICK_S

    def other_share(self) -> float:
        """Share of the box's CPU time used by none of the groups."""
        ours = sum(self.ticks.values())
        busy, total = self.box
        return max(0, busy - ours) / total if total else 0.0


class Backends:
    """PostgreSQL backend pids whose application_name starts with ``prefix`` (polled)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._db = psycopg.connect(PG, autocommit=True)
        self._lock = threading.Lock()

    def __call__(self) -> set[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
                (self.prefix + "%",),
            ).fetchall()
        return {int(r[0]) for r in rows}


_AUX = psycopg.connect(PG, autocommit=True)
_AUX_LOCK = threading.Lock()


def aux_backends() -> set[int]:
    with _AUX_LOCK:
        rows = _AUX.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"
        ).fetchall()
    return {int(r[0]) for r in rows}


def meter(worker: Callable[[], set[int]], db_prefix: str, standin: int) -> CpuMeter:
    me = os.getpid()
    broker = _pids_named("beam.smp")

    def bench() -> set[int]:  # this script and the processes it runs that are none of the rest
        return {me} | (_descendants(me) - worker() - {standin} - _descendants(standin))

    return CpuMeter(
        {
            "worker": worker,
            "db": Backends(db_prefix),
            "standin": lambda: {standin} | _descendants(standin),
            "broker": lambda: broker,
            # WAL writer, checkpointer and the like: ours for the "other work" share only.
            "pg_aux": aux_backends,
            "bench": bench,
        }
    )


def _matching(*words: str) -> Callable[[], set[int]]:
    me = os.getpid()
    return lambda: {p for p in _descendants(me) if all(w in _cmdline(p) for w in words)}


def row(name: str, sends: float, sent: int, m: CpuMeter, **extra: Any) -> dict[str, Any]:
    per = {k: 1000 * m.seconds(k) / max(sent, 1) for k in ("worker", "db", "standin", "broker")}
    return {
        "system": name,
        "sends_per_s": round(sends, 1),
        "cpu_ms_per_send": {k: round(v, 2) for k, v in per.items()}
        | {"total": round(sum(per.values()), 2)},
        "other_work": round(m.other_share(), 3),
        "disturbed": m.other_share() > DISTURBED,
        **extra,
    }


def sdk_row(base_url: str, count: int, standin: int) -> dict[str, Any]:
    m = meter(lambda: {os.getpid()}, "sbs-none", standin)
    m.start()
    result = asyncio.run(sdk_run(base_url, count, 20))
    m.stop()
    return row("bare twilio SDK", result["creates_per_s"], count, m, duplicates=None)


def celery_row(base_url: str, count: int, standin: int) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).with_name("celery_baseline.py")),
            "--count", str(count), "--concurrency", "2", "--twilio-api-base", base_url,
            "--phases"]  # fmt: skip
    m = meter(_matching("celery", "worker"), "sbs-celery", standin)
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        result: dict[str, Any] = {}
        for line in child.stdout:
            event = json.loads(line)
            if event.get("phase") == "publishing":
                m.start()
            elif event.get("phase") == "done":
                m.stop()
            else:
                result = event
    if child.returncode:
        raise SystemExit(f"celery_baseline.py failed ({child.returncode})")
    return row(
        "Celery, prefork -c 2", result["sends_per_s"], result["sent"], m,
        latency_ms=result["latency_ms"], latency_at="flood", duplicates=result["duplicates"],
    )  # fmt: skip


def _dunning(base_url: str, count: int, rate: float, workers: int, tmp: Path,
             m: CpuMeter | None) -> LoadTestResult:  # fmt: skip
    def observe(progress: Any) -> None:
        if m is None:
            return
        if progress.phase == "publishing" and not m.ticks and m._thread is None:
            m.start()
        elif progress.phase == "stopping" and m._thread is not None and not m._stop.is_set():
            m.stop()

    return run_loadtest(
        LoadTestConfig(
            intents=count, rate_per_s=rate, workers=workers, run_dir=tmp,
            database_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/test"
            f"?application_name=sbs-dunning-{workers}",
            twilio_api_base=base_url,
        ),
        observe,
    )  # fmt: skip


def dunning_row(base_url: str, count: int, workers: int, standin: int, tmp: Path) -> dict[str, Any]:
    m = meter(_matching("dunning", "worker", "sms"), f"sbs-dunning-{workers}", standin)
    flood = _dunning(base_url, count, 5000.0, workers, tmp, m)
    half_rate = max(1.0, flood.achieved_rate_per_s / 2)
    half = _dunning(base_url, max(200, int(half_rate * 15)), half_rate, workers, tmp, None)
    return row(
        f"dunning, {workers} worker{'s' if workers > 1 else ''}",
        flood.achieved_rate_per_s, flood.sent, m,
        latency_ms={k: round(half.latency_s[k] * 1000) for k in ("p50", "p99")},
        latency_at=f"{half_rate:.0f}/s", duplicates=flood.duplicates + half.duplicates,
    )  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    celery = next((r["sends_per_s"] for r in rows if r["system"].startswith("Celery")), None)
    lines = [
        "| system | sends/s | × Celery | CPU ms/send: worker + db + stand-in + broker = total "
        "| p50 / p99 ms (at) | duplicates | other work |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["cpu_ms_per_send"]
        ratio = f"{r['sends_per_s'] / celery:.2f}×" if celery else "–"
        lat = r.get("latency_ms")
        lat_text = f"{lat['p50']} / {lat['p99']} ({r['latency_at']})" if lat else "–"
        flag = " **disturbed**" if r["disturbed"] else ""
        lines.append(
            f"| {r['system']} | {r['sends_per_s']:.0f} | {ratio} | {c['worker']} + {c['db']} + "
            f"{c['standin']} + {c['broker']} = **{c['total']}** | {lat_text} | "
            f"{'–' if r['duplicates'] is None else r['duplicates']} | "
            f"{r['other_work']:.0%}{flag} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="sends per row (default 5000)")
    parser.add_argument("--workers", default="1,2", help="dunning worker counts (default 1,2)")
    parser.add_argument("--skip", default="", help="rows to leave out: sdk,celery")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    configure_logging("console", "warning")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        standin, base_url = start_standin(child_env({}), Path(tmp))
        try:
            script_standin(base_url, {"drop_callback_rate": 1.0})
            if "sdk" not in skip:
                rows.append(sdk_row(base_url, args.count, standin.pid))
                print(json.dumps(rows[-1]), flush=True)
            if "celery" not in skip:
                rows.append(celery_row(base_url, args.count, standin.pid))
                print(json.dumps(rows[-1]), flush=True)
            for workers in (int(w) for w in args.workers.split(",")):
                rows.append(dunning_row(base_url, args.count, workers, standin.pid, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
        finally:
            standin.stop()
    print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end\n")
    print(table(rows))


if __name__ == "__main__":
    main()
