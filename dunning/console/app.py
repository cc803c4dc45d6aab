"""The console's Starlette application: sections, login, static files and the middleware.

Middleware, outermost first: security headers and one structured log line per request (the
route's path template, never a query string or a form), then the signed session cookie
(HttpOnly, SameSite=Strict, Secure unless the console serves plain HTTP on loopback).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dunning.console.auth import routes as auth_routes
from dunning.console.sections import all_sections
from dunning.console.web import ConsoleDeps, deps

__all__ = ["SESSION_COOKIE", "build_app"]

log = structlog.get_logger(__name__)
STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "dunning_console"
#: A session lasts one working day; signing in again starts a new one.
SESSION_MAX_AGE_S = 10 * 3600

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class _Guard(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = _route_name(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        if deps(request).secure_cookies:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        deps(request).metrics.request_s.labels(route).observe(time.perf_counter() - started)
        log.info(
            "console.request",
            method=request.method,
            route=route,
            status=response.status_code,
        )
        return response


def _route_name(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


async def _metrics(request: Request) -> Response:
    body = generate_latest(deps(request).metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def _healthz(_: Request) -> Response:
    return PlainTextResponse("ok")


def build_app(console: ConsoleDeps, *, secret_key: str) -> Starlette:
    """The console over ``console``'s ledger and broker; ``secret_key`` signs the sessions."""
    routes: list[BaseRoute] = [
        *auth_routes(),
        Route("/metrics", _metrics, methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    for section in all_sections():
        routes.extend(section.routes)
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(_Guard),
            Middleware(
                SessionMiddleware,
                secret_key=secret_key,
                session_cookie=SESSION_COOKIE,
                max_age=SESSION_MAX_AGE_S,
                same_site="strict",
                https_only=console.secure_cookies,
            ),
        ],
    )
    app.state.console = console
    return app
