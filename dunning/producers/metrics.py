"""The evaluator's Prometheus metrics: served at ``/metrics`` on ``DUNNING_METRICS_PORT`` while
it runs in scheduler mode (`dunning evaluate --every`); counts only, no personal data."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from dunning.producers.run import RunReport

__all__ = ["EvaluatorMetrics"]


class EvaluatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter("dunning_evaluator_runs", "Evaluation runs completed", registry=r)
        self.accounts = Counter("dunning_evaluator_accounts", "Accounts evaluated", registry=r)
        self.published = Counter(
            "dunning_evaluator_intents_published",
            "Intents published to dunning.intents (new to the ledger)",
            registry=r,
        )
        self.bad_rows = Counter(
            "dunning_evaluator_bad_rows", "Account rows refused as invalid", registry=r
        )
        self.last_run = Gauge(
            "dunning_evaluator_last_run_timestamp_seconds",
            "Unix time at which the last evaluation run completed",
            registry=r,
        )

    def observe(self, report: RunReport) -> None:
        self.runs.inc()
        self.accounts.inc(report.summary.accounts)
        self.published.inc(report.published)
        self.bad_rows.inc(report.bad_rows.count)
        self.last_run.set_to_current_time()

    def serve(self, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104  scraped from outside
        """Serve ``/metrics`` on ``port`` from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
