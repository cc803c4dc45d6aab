"""Run one load test: stand-in and workers up, publish at the target rate, wait, measure.

Bounded: at most ``max_seconds`` of wall time and the given number of intents; every URL must
be on loopback. The caller passes an ``observe`` callback for the live display.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import build_topology, dead_queue, work_queue
from dunning.errors import ConfigError
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.loadtest.generator import IntentMix, SyntheticIntents
from dunning.loadtest.isolation import isolate
from dunning.loadtest.metrics import IntentTiming, LedgerTally, percentile
from dunning.loadtest.processes import (
    ChildProcess,
    child_env,
    fetch_creates_if_recorded,
    require_loopback,
    script_standin_if_there,
    start_standin,
)
from dunning.producers.publisher import IntentPublisher
from dunning.settings import Settings

__all__ = ["LoadTestConfig", "LoadTestResult", "Progress", "run_loadtest"]

log = structlog.get_logger(__name__)
MAX_INTENTS = 1_000_000


@dataclass(frozen=True)
class LoadTestConfig:
    """One load test. ``twilio_api_base`` attaches to a running stand-in; ``attach`` uses the
    workers already consuming instead of starting ``workers`` processes.

    The run gets a vhost of its own on ``broker_url``'s broker and a ledger of its own (a SQLite
    file, or a throw-away schema in ``database_url`` when that is PostgreSQL), removed after it
    (:mod:`dunning.loadtest.isolation`); ``shared_broker`` / ``shared_database`` use the URLs as
    they are, mixing with what else is there."""

    intents: int = 20_000
    rate_per_s: float = 500.0
    workers: int = 1
    mix: IntentMix = field(default_factory=IntentMix)
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    database_url: str | None = None  # None: a SQLite file in the run folder
    shared_broker: bool = False
    shared_database: bool = False
    management_url: str | None = None
    redis_url: str | None = None
    config_dir: Path = Path("config")
    run_dir: Path = Path("var/loadtest")
    attach: bool = False
    twilio_api_base: str | None = None
    behaviour: dict[str, Any] = field(default_factory=dict)  # rate_429, rate_500, ...
    max_seconds: float = 600.0
    tick_s: float = 0.05
    seed: int = 0
    worker_env: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        if not 0 < self.intents <= MAX_INTENTS:
            raise ConfigError(f"--intents must be 1..{MAX_INTENTS}, got {self.intents}")
        if self.rate_per_s <= 0:
            raise ConfigError("--rate must be positive")
        if self.max_seconds <= 0:
            raise ConfigError("--max-seconds must be positive")
        require_loopback(self.broker_url, "the broker")
        if self.database_url is not None:
            require_loopback(self.database_url, "the database")
        if self.management_url:
            require_loopback(self.management_url, "the management API")
        if self.attach and not (self.shared_broker and self.shared_database):
            raise ConfigError(
                "--attach measures workers already running, on their vhost and their ledger: "
                "add --shared-broker and --shared-database (with --database their ledger's URL) "
                "to accept that the load test's intents mix with their data"
            )
        if self.shared_database and self.database_url is None:
            raise ConfigError("--shared-database needs --database (the ledger to write into)")
        if self.redis_url:
            require_loopback(self.redis_url, "Redis")
        if self.twilio_api_base:
            require_loopback(self.twilio_api_base, "the Twilio stand-in")


@dataclass
class Progress:
    """What the live display shows, updated about twice a second."""

    elapsed_s: float = 0.0
    target: int = 0
    published: int = 0
    tally: LedgerTally = field(default_factory=LedgerTally)
    queue_depth: int = 0
    dead_letters: int = 0
    offered_rate_per_s: float = 0.0
    achieved_rate_per_s: float = 0.0
    phase: str = "starting"


@dataclass
class LoadTestResult:
    """The figures of one run; ``as_dict`` is what ``--json`` writes."""

    config: dict[str, Any]
    intents: int
    published: int
    sent: int
    by_state: dict[str, int]
    retries: int
    throttled: int
    dead_letters: int
    duplicates: int | None  # None: the Twilio endpoint keeps no record of creates to count
    creates_seen: int | None
    offered_rate_per_s: float
    achieved_rate_per_s: float
    latency_s: dict[str, float]
    series: dict[str, list[Any]]
    wall_s: float
    finished: bool
    isolation: list[str] = field(default_factory=list)  # what the run made (and removed)
    notes: list[str] = field(default_factory=list)  # what the run could not do, and why

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _series(timings: list[IntentTiming], t0: datetime) -> dict[str, list[Any]]:
    """Per-second offered and achieved counts and latency percentiles, from t0."""
    offered: dict[int, int] = {}
    achieved: dict[int, int] = {}
    latencies: dict[int, list[float]] = {}
    for t in timings:
        offered_s = int((t.created_at - t0).total_seconds())
        offered[offered_s] = offered.get(offered_s, 0) + 1
        if t.sent_at is not None and t.latency_s is not None:
            second = int((t.sent_at - t0).total_seconds())
            achieved[second] = achieved.get(second, 0) + 1
            latencies.setdefault(second, []).append(t.latency_s)
    last = max([*offered, *achieved], default=0)
    seconds = list(range(last + 1))
    p50, p99 = [], []
    for s in seconds:
        values = sorted(latencies.get(s, []))
        p50.append(percentile(values, 0.5) * 1000)
        p99.append(percentile(values, 0.99) * 1000)
    return {
        "second": seconds,
        "offered_per_s": [offered.get(s, 0) for s in seconds],
        "achieved_per_s": [achieved.get(s, 0) for s in seconds],
        "p50_ms": p50,
        "p99_ms": p99,
    }


class _Run:
    def __init__(self, config: LoadTestConfig, observe: Callable[[Progress], None]) -> None:
        self.config = config
        self.observe = observe
        self.children: list[ChildProcess] = []
        self.run_id = uuid.uuid4().hex[:10]
        self.run_dir = config.run_dir / self.run_id
        self.progress = Progress(target=config.intents)
        self.depth_series: list[tuple[float, int]] = []
        self.channels = [c for c, w in config.mix.channels if w > 0]
        self.notes: list[str] = []

    def settings(self) -> Settings:
        return Settings(broker_url=self.config.broker_url, database_url=self.database_url)

    @property
    def database_url(self) -> str:
        if self.config.database_url is None:
            raise ConfigError("the load test's ledger is not made yet")  # isolate() sets it
        return self.config.database_url

    def env(self, api_base: str) -> dict[str, str]:
        settings = self.settings()
        extra = {
            "DUNNING_BROKER_URL": self.config.broker_url,
            "DUNNING_DATABASE_URL": self.database_url,
            "DUNNING_CONFIG_DIR": str(self.config.config_dir),
            "DUNNING_TWILIO_API_BASE": api_base,
            "DUNNING_TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
            "DUNNING_TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
            "DUNNING_LOG_FORMAT": "json",
            "DUNNING_LOG_LEVEL": "warning",
        }
        if self.config.redis_url:
            extra["DUNNING_REDIS_URL"] = self.config.redis_url
        extra.update(self.config.worker_env)
        return child_env(extra)

    def start(self, admin: RabbitPublisher) -> str:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        api_base = self.config.twilio_api_base
        if api_base is None:
            standin, api_base = start_standin(self.env(""), self.run_dir)
            self.children.append(standin)
        # Status callbacks go nowhere in a load test: drop them instead of timing out on them.
        behaviour = {"drop_callback_rate": 1.0, **self.config.behaviour}
        self.notes += filter(None, [script_standin_if_there(api_base, behaviour)])
        if not self.config.attach:
            # Consumers already there (other workers on this vhost) would take part of the
            # load and send it elsewhere: count them so we wait for ours on top.
            already = {c: admin.queue_stats(work_queue(c))[1] for c in self.channels}
            if any(already.values()):
                log.warning("loadtest.foreign_consumers", consumers=sum(already.values()))
            for channel in self.channels:
                for n in range(self.config.workers):
                    argv = [_python(), "-m", "dunning", "worker", channel.value]
                    log_path = self.run_dir / f"worker-{channel.value}-{n}.log"
                    self.children.append(
                        ChildProcess(f"worker-{n}", argv, self.env(api_base), log_path)
                    )
            self._wait_for_consumers(admin, already)
        return api_base

    def _wait_for_consumers(
        self, admin: RabbitPublisher, already: dict[Channel, int], timeout_s: float = 60.0
    ) -> None:
        deadline = time.monotonic() + timeout_s
        for channel in self.channels:
            wanted = already[channel] + self.config.workers
            while admin.queue_stats(work_queue(channel))[1] < wanted:
                dead = [c for c in self.children if not c.alive()]
                if dead:
                    raise ConfigError(f"{dead[0].name} exited:\n{dead[0].tail()}")
                if time.monotonic() > deadline:
                    raise ConfigError(f"workers for {channel.value} did not start consuming")
                time.sleep(0.1)  # polling the broker for the consumers to appear

    def sample(self, admin: RabbitPublisher, ledger: Ledger, started: float) -> None:
        p = self.progress
        p.elapsed_s = time.monotonic() - started
        p.queue_depth = sum(admin.queue_stats(work_queue(c))[0] for c in self.channels)
        p.dead_letters = sum(admin.queue_stats(dead_queue(c))[0] for c in self.channels)
        p.tally = LedgerTally(ledger.intent_states(f"lt-{self.run_id}-"))
        p.offered_rate_per_s = p.published / p.elapsed_s if p.elapsed_s else 0.0
        p.achieved_rate_per_s = p.tally.sent / p.elapsed_s if p.elapsed_s else 0.0
        self.depth_series.append((round(p.elapsed_s, 2), p.queue_depth))
        self.observe(p)

    def publish_and_wait(self, admin: RabbitPublisher, ledger: Ledger) -> tuple[float, bool]:
        cfg = self.config
        source = SyntheticIntents(cfg.mix, seed=cfg.seed, run_id=self.run_id)
        # The evaluator's publisher without a ledger: each intent is recorded by the worker's
        # claim, so the ledger holds only what the workers took up.
        publisher = IntentPublisher(admin)
        started = time.monotonic()
        deadline = started + cfg.max_seconds
        next_sample = started
        self.progress.phase = "publishing"
        while time.monotonic() < deadline:
            now = time.monotonic()
            due = min(cfg.intents, int((now - started) * cfg.rate_per_s) + 1)
            if due > self.progress.published:
                batch = source.make(due - self.progress.published, now=datetime.now(UTC))
                publisher.publish(batch)
                self.progress.published += len(batch)
            if now >= next_sample:
                self.sample(admin, ledger, started)
                next_sample = now + 0.5
                if self.progress.tally.done >= cfg.intents:
                    return time.monotonic() - started, True
            if self.progress.published >= cfg.intents:
                self.progress.phase = "draining"
                time.sleep(0.2)  # pacing the completion polls
            else:
                time.sleep(cfg.tick_s)  # pacing the publisher to the target rate
        return time.monotonic() - started, False

    def stop(self) -> None:
        self.progress.phase = "stopping"
        self.observe(self.progress)
        for child in reversed(self.children):
            code = child.stop()
            if code not in (0, -15):
                log.warning("loadtest.child_exit", child=child.name, code=code)


def _python() -> str:
    return sys.executable


def run_loadtest(
    config: LoadTestConfig, observe: Callable[[Progress], None] = lambda _p: None
) -> LoadTestResult:
    """Run the load test ``config`` describes; raises ConfigError when it cannot start."""
    config.check()
    run = _Run(config, observe)
    isolation = isolate(
        broker_url=config.broker_url,
        database_url=config.database_url,
        run_id=run.run_id,
        run_dir=run.run_dir,
        shared_broker=config.shared_broker,
        shared_database=config.shared_database,
        management_url=config.management_url,
    )
    try:
        run.config = dataclasses.replace(
            config, broker_url=isolation.broker_url, database_url=isolation.database_url
        )
        api_base, t0, wall_s, finished, creates, timings = _measure(run)
    finally:
        isolation.close()
    ours = {t.intent_id for t in timings}
    latencies = sorted(t.latency_s for t in timings if t.latency_s is not None)
    sent_times = [t.sent_at for t in timings if t.sent_at is not None]
    span_s = (max(sent_times) - t0).total_seconds() if sent_times else wall_s
    by_state: dict[str, int] = {}
    for t in timings:
        by_state[t.state] = by_state.get(t.state, 0) + 1
    publish_span_s = (
        max(1e-9, (max(t.created_at for t in timings) - t0).total_seconds()) if timings else 1.0
    )
    return LoadTestResult(
        config={
            **dataclasses.asdict(run.config),
            "run_id": run.run_id,
            "twilio_api_base": api_base,
        },
        intents=config.intents,
        published=run.progress.published,
        sent=len(latencies),
        by_state=by_state,
        retries=sum(t.failed_attempts for t in timings),
        throttled=sum(t.released_attempts for t in timings),
        dead_letters=by_state.get("dead", 0),
        duplicates=None if creates is None else sum(n - 1 for i, n in creates.items() if i in ours),
        creates_seen=None if creates is None else sum(n for i, n in creates.items() if i in ours),
        offered_rate_per_s=run.progress.published / publish_span_s,
        achieved_rate_per_s=len(latencies) / span_s if span_s > 0 else 0.0,
        latency_s={
            "p50": percentile(latencies, 0.5),
            "p90": percentile(latencies, 0.9),
            "p99": percentile(latencies, 0.99),
            "max": latencies[-1] if latencies else 0.0,
        },
        series={**_series(timings, t0), "queue_depth": [list(s) for s in run.depth_series]},
        wall_s=wall_s,
        finished=finished,
        isolation=isolation.made,
        notes=run.notes,
    )


def _measure(
    run: _Run,
) -> tuple[str, datetime, float, bool, Counter[str] | None, list[IntentTiming]]:
    """Start, publish, wait, stop; then the stand-in's creates and the ledger's timings."""
    ledger = Ledger.open(run.database_url)
    try:
        admin = RabbitPublisher(run.config.broker_url)
        try:
            admin.declare(build_topology(delivery_limit=run.settings().delivery_limit))
            api_base = run.start(admin)
            t0 = datetime.now(UTC)
            wall_s, finished = run.publish_and_wait(admin, ledger)
            creates, note = fetch_creates_if_recorded(api_base)
            run.notes += filter(None, [note])
        finally:
            run.stop()
            admin.close()
        timings = ledger.intent_timings(f"lt-{run.run_id}-")
    finally:
        ledger.close()
    return api_base, t0, wall_s, finished, creates, timings
