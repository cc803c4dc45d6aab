"""Running the console: its dependencies from settings, the bind check, and uvicorn.

The session key comes from ``--secret-file`` (or ``DUNNING_CONSOLE_SECRET``); without one a
random key is made at start-up and every session ends when the console restarts.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from dunning.broker import open_publisher, topology_for
from dunning.broker.base import Publisher
from dunning.console.app import build_app
from dunning.console.metrics import ConsoleMetrics
from dunning.console.security import LoginLimiter, check_bind, is_loopback
from dunning.console.web import ConsoleDeps
from dunning.ledger import Ledger
from dunning.ledger.console_store import ConsoleStore
from dunning.settings import Settings

__all__ = ["ConsoleOptions", "console_app", "open_console", "serve"]


@dataclass(frozen=True)
class ConsoleOptions:
    host: str = "127.0.0.1"
    port: int = 8090
    tls_cert: Path | None = None
    tls_key: Path | None = None
    behind_tls_proxy: bool = False
    insecure_http: bool = False
    dlq_threshold: int = 0
    secret: str | None = None

    @property
    def secure_cookies(self) -> bool:
        """Secure cookies whenever a browser reaches the console over HTTPS (TLS here or at a
        proxy) or from another host; plain HTTP on loopback cannot carry them."""
        if self.insecure_http:
            return False
        return self.tls_cert is not None or self.behind_tls_proxy or not is_loopback(self.host)

    @property
    def address(self) -> str:
        scheme = "https" if self.tls_cert is not None else "http"
        return f"{scheme}://{self.host}:{self.port}/"


@contextmanager
def open_console(settings: Settings, options: ConsoleOptions) -> Iterator[ConsoleDeps]:
    """The ledger (never migrated here) and broker access the pages use; closed on exit."""
    store = ConsoleStore.open(settings.database_url)
    ledger = Ledger.open(settings.database_url, migrate=False, application_name="dunning-console")

    @contextmanager
    def publisher() -> Iterator[Publisher]:
        opened = open_publisher(settings.broker_url, topology_for(settings))
        try:
            yield opened
        finally:
            opened.close()

    try:
        yield ConsoleDeps(
            settings=settings,
            store=store,
            ledger=ledger,
            clock=settings.clock(),
            publisher=publisher,
            limiter=LoginLimiter(),
            metrics=ConsoleMetrics(),
            dlq_threshold=options.dlq_threshold,
            secure_cookies=options.secure_cookies,
        )
    finally:
        ledger.close()
        store.close()


def console_app(console: ConsoleDeps, options: ConsoleOptions) -> Starlette:
    return build_app(console, secret_key=options.secret or secrets.token_urlsafe(48))


def check_options(options: ConsoleOptions) -> None:
    """ConfigError when the console would serve sign-ins in clear text beyond loopback."""
    check_bind(
        options.host,
        tls_cert=options.tls_cert,
        tls_key=options.tls_key,
        behind_tls_proxy=options.behind_tls_proxy,
        insecure_http=options.insecure_http,
    )


def uvicorn_config(app: Starlette, options: ConsoleOptions) -> uvicorn.Config:
    check_options(options)
    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        ssl_certfile=str(options.tls_cert) if options.tls_cert else None,
        ssl_keyfile=str(options.tls_key) if options.tls_key else None,
        access_log=False,  # the console logs each request itself, without query strings
        log_config=None,
        proxy_headers=options.behind_tls_proxy,
        server_header=False,
    )


def serve(settings: Settings, options: ConsoleOptions) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM: a clean stop, not an error)."""
    check_options(options)  # before anything is opened
    with open_console(settings, options) as console:
        config = uvicorn_config(console_app(console, options), options)
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it stops on
            uvicorn.Server(config).run()
