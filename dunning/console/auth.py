"""Signing in and out: the login form, the rate limit, the session.

A successful login starts a fresh session (new CSRF token, nothing carried over from before)
holding the user name and a fingerprint of the password hash, so a changed password or a
disabled user ends it. Failures are counted per user name (5 in 5 minutes) and per client
address (20 in 5 minutes, as several people may share one address) with
:class:`~dunning.console.security.LoginLimiter`; the answer never says which of the name
and the password was wrong.
"""

from __future__ import annotations

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dunning.console.sections import visible_sections
from dunning.console.security import (
    csrf_matches,
    fingerprint,
    new_token,
    unknown_user_hash,
    verify_password,
)
from dunning.console.web import SignedIn, audit, deps, form_text, render, signed_in

__all__ = ["routes"]

log = structlog.get_logger(__name__)


def routes() -> list[Route]:
    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


async def login_page(request: Request) -> Response:
    user = signed_in(request)
    if user is not None:
        return RedirectResponse(_home(user), status_code=303)
    return render(request, "login.html")


async def login(request: Request) -> Response:
    console = deps(request)
    form = await request.form()
    if not csrf_matches(request.session.get("csrf"), form_text(form, "csrf_token")):
        console.metrics.refused.labels("csrf").inc()
        return render(request, "login.html", 403, error="the form expired; sign in again")
    name = form_text(form, "name").lower()
    client = request.client.host if request.client else "unknown"
    wait_s = max(console.limiter.retry_after_s(name), console.address_limiter.retry_after_s(client))
    if wait_s > 0:
        console.metrics.logins.labels("rate_limited").inc()
        console.metrics.refused.labels("rate_limited").inc()
        log.warning("console.login_rate_limited", user=name)
        minutes = max(1, round(wait_s / 60))
        response = render(
            request,
            "login.html",
            429,
            error=f"too many failed sign-ins; try again in {minutes} minute(s)",
        )
        response.headers["Retry-After"] = str(int(wait_s) + 1)
        return response
    user = await run_in_threadpool(console.store.get_user, name)
    ok = await run_in_threadpool(_check, user, _password(form))
    if user is None or not ok:
        console.limiter.failed(name)
        console.address_limiter.failed(client)
        console.metrics.logins.labels("failed").inc()
        log.warning("console.login_failed", user=name)
        return render(request, "login.html", 401, error="wrong user name or password")
    console.limiter.succeeded(name)
    request.session.clear()
    request.session.update(user=user.name, fp=fingerprint(user.password_hash), csrf=new_token())
    console.metrics.logins.labels("ok").inc()
    audit(request, "login", None, operator=user.name)
    return RedirectResponse(_home(SignedIn(user.name, user.role, user.collector_id)), 303)


def _home(user: SignedIn) -> str:
    """The first section the user may open (a collector's is the field visits)."""
    sections = visible_sections(user)
    return sections[0].path if sections else "/"


def _password(form: FormData) -> str:
    value = form.get("password")
    return value if isinstance(value, str) else ""


def _check(user: object, password: str) -> bool:
    # A missing user still costs one hash verification, so timing does not tell names apart.
    stored = getattr(user, "password_hash", None) if getattr(user, "active", False) else None
    return verify_password(stored or unknown_user_hash(), password) and stored is not None


async def logout(request: Request) -> Response:
    form = await request.form()
    if not csrf_matches(request.session.get("csrf"), form_text(form, "csrf_token")):
        return render(request, "login.html", 403, error="the form expired")
    user = signed_in(request)
    if user is not None:
        request.state.user = user
        audit(request, "logout", None)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


logout.csrf_checked = True  # type: ignore[attr-defined]
login.csrf_checked = True  # type: ignore[attr-defined]
