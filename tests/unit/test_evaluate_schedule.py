"""`dunning evaluate --every`: ticks by the injected clock, failed runs retried, clean stops."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dunning.clock import ManualClock
from dunning.errors import BrokerConnectionError, ConfigError
from dunning.producers.run import evaluation_day, run_every

START = datetime(2026, 11, 28, 23, 40, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


class Rig:
    """A ManualClock whose 'sleep' advances it, and a run that records (or fails) each tick."""

    def __init__(
        self, *, stop_after: int, run_s: float = 0.0, first_day: date | None = None
    ) -> None:
        self.clock = ManualClock(START)
        self.stop = threading.Event()
        self.stop_after = stop_after
        self.run_s = run_s
        self.runs: list[datetime] = []
        self.days: list[date] = []
        self.waits_s: list[float] = []
        self.failing: set[int] = set()
        self.first_day = first_day

    def run(self, now: datetime, start: datetime) -> None:
        self.runs.append(now)
        self.days.append(evaluation_day(now, start, self.first_day))
        self.clock.advance(self.run_s)
        if len(self.runs) in self.failing:
            raise BrokerConnectionError("connection refused")
        if len(self.runs) >= self.stop_after:
            self.stop.set()  # as the signal handler does while a run is in progress

    def wait(self, timeout_s: float) -> bool:
        self.waits_s.append(timeout_s)
        self.clock.advance(timeout_s)
        return self.stop.is_set()

    def go(self, interval_s: float) -> int:
        return run_every(
            self.run, clock=self.clock, interval_s=interval_s, stop=self.stop, wait=self.wait
        )


def test_runs_fall_on_ticks_of_the_clock_and_the_day_advances() -> None:
    rig = Rig(stop_after=4, run_s=30)
    assert rig.go(15 * 60) == 4
    assert rig.runs == [START + timedelta(minutes=15 * k) for k in range(4)]
    # 23:40 UTC + 15 min crosses midnight: the evaluation day moves with the clock.
    assert rig.days == [date(2026, 11, 28)] * 2 + [date(2026, 11, 29)] * 2
    assert rig.waits_s[:3] == [15 * 60 - 30] * 3


def test_as_of_sets_the_first_day_and_the_clock_moves_it_on() -> None:
    rig = Rig(stop_after=3, first_day=date(2026, 3, 1))
    rig.go(12 * 3600)
    assert rig.days == [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 2)]


def test_an_overrunning_run_skips_the_missed_ticks() -> None:
    rig = Rig(stop_after=3, run_s=25 * 60)
    rig.go(10 * 60)
    # Each run ends 25 min after its start: the next run is at the next 10-minute tick.
    assert rig.runs == [START, START + timedelta(minutes=30), START + timedelta(minutes=60)]


def test_a_failed_run_is_logged_and_retried_at_the_next_tick() -> None:
    rig = Rig(stop_after=3)
    rig.failing = {1, 2}
    assert rig.go(60) == 3
    assert rig.runs == [START, START + timedelta(seconds=60), START + timedelta(seconds=120)]


def test_a_configuration_fault_ends_the_loop() -> None:
    rig = Rig(stop_after=5)

    def broken(now: datetime, start: datetime) -> None:
        raise ConfigError("accounts.csv: no such file")

    with pytest.raises(ConfigError):
        run_every(broken, clock=rig.clock, interval_s=60, stop=rig.stop, wait=rig.wait)


def test_a_stop_set_before_the_first_tick_runs_nothing() -> None:
    rig = Rig(stop_after=5)
    rig.stop.set()
    assert rig.go(60) == 0
    assert rig.runs == []


# --- the command, in a process of its own --------------------------------------------------


class Process:
    """``dunning evaluate ... --every 1s`` with its stderr read line by line as JSON events.

    Waits poll the pipe with a selector (a timed ``epoll``), not a thread and a queue: a timed
    lock wait would hang when the suite runs under ``faketime`` (``make test-future``).
    """

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dunning", "evaluate", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,  # the summary tables; unread, they could fill a pipe
            stderr=subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stderr, selectors.EVENT_READ)
        self._buffer = b""
        self._events: list[dict[str, object]] = []

    def _read_events(self, timeout_s: float) -> None:
        assert self.proc.stderr is not None
        if not self._selector.select(timeout_s):
            return
        chunk = self.proc.stderr.read()
        if not chunk:
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._events.append(event)

    def wait_for(self, name: str, count: int, timeout_s: float = 30) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout_s
        while True:
            seen = [e for e in self._events if e.get("event") == name]
            if len(seen) >= count:
                del self._events[: self._events.index(seen[count - 1]) + 1]
                return seen[:count]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{count} x {name} not seen within {timeout_s} s")
            self._read_events(min(remaining, 1.0))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # The command's clock is pinned by DUNNING_NOW. It runs without libfaketime's preload, whose
    # faked monotonic clock turns the scheduler's timed waits into year-long ones
    # (`make test-future`); the test process itself still runs a year ahead.
    unfaked = {"LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC"}
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("DUNNING_") and k not in unfaked
    }
    clean |= {
        "DUNNING_LOG_FORMAT": "json",
        "DUNNING_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "DUNNING_NOW": "2026-11-28T10:00:00+08:00",
    }
    return clean


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_scheduler_between_runs(env: dict[str, str], signum: int) -> None:
    proc = Process(["config/accounts.sample.csv", "--every", "1s", "--dry-run"], env)
    try:
        done = proc.wait_for("evaluation_done", 2)
        runs = proc.wait_for("evaluation_run", 1)
        proc.proc.send_signal(signum)
        assert proc.proc.wait(timeout=30) == 0
    finally:
        proc.proc.kill()
    # DUNNING_NOW drives the evaluation day.
    assert done[0]["as_of"] == "2026-11-28"
    assert runs[0]["ok"] is True
    assert int(str(done[0]["accounts"])) > 0


def test_a_broker_that_is_down_fails_runs_but_not_the_scheduler(env: dict[str, str]) -> None:
    env["DUNNING_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:1/%2F"  # nothing listens there
    proc = Process(["config/accounts.sample.csv", "--every", "1s"], env)
    try:
        failures = proc.wait_for("evaluation_run_failed", 2)
        assert proc.proc.poll() is None  # still running after two failed runs
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(timeout=30) == 0
    finally:
        proc.proc.kill()
    assert [f["run"] for f in failures] == [1, 2]
    assert failures[0]["error_class"] == "BrokerConnectionError"
