"""The webhook's Prometheus metrics, served at ``GET /metrics`` beside the callbacks.

Counted per route template (never the raw path or query: an unsubscribe link carries a token)
and status code; counts only, no personal data.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["WebhookMetrics", "attach_metrics"]


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "dunning_webhook_requests",
            "Webhook requests answered, by route and HTTP status",
            ["route", "status"],
            registry=self.registry,
        )
        self.request_s = Histogram(
            "dunning_webhook_request_seconds",
            "Time to answer a webhook request, by route",
            ["route"],
            registry=self.registry,
        )


def attach_metrics(app: Starlette, metrics: WebhookMetrics | None = None) -> WebhookMetrics:
    """Count every request of ``app`` and serve the counts at ``/metrics``."""
    metrics = metrics or WebhookMetrics()

    async def serve(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", None) or "unmatched"
        metrics.requests.labels(route, str(response.status_code)).inc()
        metrics.request_s.labels(route).observe(time.perf_counter() - started)
        return response

    app.router.routes.append(Route("/metrics", serve, methods=["GET"]))
    app.add_middleware(BaseHTTPMiddleware, dispatch=count)
    app.state.metrics = metrics
    return metrics
