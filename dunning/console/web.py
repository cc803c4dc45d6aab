"""What every console page shares: its dependencies, the signed-in user, rendering, and the
two decorators every endpoint goes through.

- :func:`page` (GET): a signed-in user whose role has the page's permission, else a redirect
  to the login page (not signed in) or 403.
- :func:`action` (POST): the same, plus the session's CSRF token in the form, else 403; the
  parsed form is handed to the endpoint. Every POST route of the console is an action (a test
  walks the routes to make sure).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from jinja2 import pass_context
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from dunning.broker.base import Publisher
from dunning.clock import Clock
from dunning.console.masking import mask_name
from dunning.console.metrics import ConsoleMetrics
from dunning.console.roles import Permission, permissions_of
from dunning.console.security import LoginLimiter, csrf_matches, fingerprint, new_token
from dunning.ledger import Ledger
from dunning.ledger.console_store import ConsoleStore
from dunning.logs import mask_text
from dunning.settings import Settings

__all__ = [
    "ConsoleDeps",
    "SignedIn",
    "action",
    "audit",
    "csrf_token",
    "deps",
    "page",
    "render",
    "signed_in",
    "signed_in_user",
]

log = structlog.get_logger(__name__)
TEMPLATES = Path(__file__).parent / "templates"

Endpoint = Callable[..., Awaitable[Response]]


@dataclass
class ConsoleDeps:
    """What the pages read and act on: the same ledger and broker the commands use."""

    settings: Settings
    store: ConsoleStore
    ledger: Ledger
    clock: Clock
    publisher: Callable[[], AbstractContextManager[Publisher]]
    limiter: LoginLimiter  # failed sign-ins per user name
    metrics: ConsoleMetrics
    dlq_threshold: int = 0
    secure_cookies: bool = True
    templates: Jinja2Templates | None = None
    #: Failed sign-ins per client address: more than per name, as people share addresses.
    address_limiter: LoginLimiter = field(default_factory=lambda: LoginLimiter(max_failures=20))

    def __post_init__(self) -> None:
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        env = self.templates.env
        env.filters["pii"] = _pii_filter
        env.filters["pii_name"] = _pii_name_filter
        env.filters["when"] = _when
        env.globals["Permission"] = Permission


@dataclass(frozen=True)
class SignedIn:
    name: str
    role: str
    collector_id: str | None = None  # the collector a ``collector`` login is

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_of(self.role)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


def deps(request: Request) -> ConsoleDeps:
    value: ConsoleDeps = request.app.state.console
    return value


def signed_in(request: Request) -> SignedIn | None:
    """The session's user while it exists, is enabled and has the password it signed in with."""
    name = request.session.get("user")
    if not isinstance(name, str):
        return None
    user = deps(request).store.get_user(name)
    if (
        user is None
        or not user.active
        or request.session.get("fp") != fingerprint(user.password_hash)
    ):
        request.session.clear()
        return None
    return SignedIn(user.name, user.role, user.collector_id)


def signed_in_user(request: Request) -> SignedIn:
    """The user a :func:`page` or :func:`action` endpoint runs for."""
    user: SignedIn = request.state.user
    return user


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = new_token()
        request.session["csrf"] = token
    return token


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    from dunning.console.sections import visible_sections

    user: SignedIn | None = context.pop("user", None) or getattr(request.state, "user", None)
    templates = deps(request).templates
    assert templates is not None
    context.update(
        user=user,
        csrf_token=csrf_token(request),
        sections=visible_sections(user),
        show_pii=user is not None and user.can(Permission.SEE_PII),
    )
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _refuse(request: Request, user: SignedIn | None, permission: Permission) -> Response | None:
    if user is None:
        return RedirectResponse("/login", status_code=303)
    if not user.can(permission):
        log.warning("console.forbidden", user=user.name, path=request.url.path)
        return render(request, "forbidden.html", 403, user=user, needed=permission.value)
    request.state.user = user
    return None


def page(permission: Permission) -> Callable[[Endpoint], Endpoint]:
    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            refused = _refuse(request, signed_in(request), permission)
            return refused or await endpoint(request)

        return guarded

    return wrap


def action(permission: Permission) -> Callable[[Endpoint], Endpoint]:
    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            form = await request.form()
            given = request.headers.get("x-csrf-token") or _text(form, "csrf_token")
            if not csrf_matches(request.session.get("csrf"), given):
                log.warning("console.csrf_refused", path=request.url.path)
                deps(request).metrics.refused.labels("csrf").inc()
                return HTMLResponse("refused: missing or wrong CSRF token", status_code=403)
            refused = _refuse(request, signed_in(request), permission)
            return refused or await endpoint(request, form)

        guarded.csrf_checked = True  # type: ignore[attr-defined]
        return guarded

    return wrap


def audit(request: Request, event: str, intent_id: str | None = None, **detail: Any) -> None:
    """One audit record of a console action, with the operator's name."""
    user: SignedIn | None = getattr(request.state, "user", None)
    who = user.name if user else str(detail.pop("operator", "unknown"))
    console = deps(request)
    console.ledger.audit(
        intent_id, f"console_{event}", now=console.clock.now(), detail={"operator": who, **detail}
    )
    console.metrics.actions.labels(event).inc()
    log.info("console.action", action=event, operator=who, intent_id=intent_id)


def _text(form: FormData, key: str) -> str | None:
    value = form.get(key)
    return value if isinstance(value, str) else None


def form_text(form: FormData, key: str, default: str = "") -> str:
    return (_text(form, key) or default).strip()


@pass_context
def _pii_filter(context: Any, value: object) -> str:
    """Personal data as it may be shown: whole for a role with SEE_PII, masked otherwise."""
    if value is None:
        return "-"
    text = str(value)
    return text if context.get("show_pii") else mask_text(text)


@pass_context
def _pii_name_filter(context: Any, value: object) -> str:
    if value is None:
        return "-"
    return str(value) if context.get("show_pii") else mask_name(str(value))


def _when(value: object) -> str:
    """An instant to the second, in UTC (the ledger's times are UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "-" if value is None else str(value)


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
