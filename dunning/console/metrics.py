"""The console's Prometheus metrics, served at ``/metrics`` (no personal data: counts only)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["ConsoleMetrics"]


class ConsoleMetrics:
    """Logins, refused requests, operator actions and page latency of one console process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.logins = Counter(
            "dunning_console_logins", "Console sign-ins by result", ["result"], registry=r
        )
        self.refused = Counter(
            "dunning_console_refused",
            "Console requests refused (csrf, forbidden, rate_limited)",
            ["reason"],
            registry=r,
        )
        self.actions = Counter(
            "dunning_console_actions",
            "Console actions written to the audit log, by action",
            ["action"],
            registry=r,
        )
        self.request_s = Histogram(
            "dunning_console_request_seconds",
            "Time to answer a console request, by route",
            ["route"],
            registry=r,
        )
        for result in ("ok", "failed", "rate_limited"):
            self.logins.labels(result)
        for reason in ("csrf", "forbidden", "rate_limited"):
            self.refused.labels(reason)
