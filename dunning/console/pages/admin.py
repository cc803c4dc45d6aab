"""Admin: console users (add, change role or password, disable) and the console's audit log.

Only a role with MANAGE_USERS sees this section. Each change is in the audit log with the
admin's name; a password is never logged or shown again.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dunning.console.roles import ROLES, Permission, check_collector_link, check_role
from dunning.console.sections import Section
from dunning.console.security import hash_password
from dunning.console.web import action, audit, deps, form_text, page, render
from dunning.errors import ConfigError

__all__ = ["section"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")


def section() -> Section:
    return Section(
        "Admin",
        "/admin/users",
        Permission.MANAGE_USERS,
        [
            Route("/admin/users", users_page, methods=["GET"]),
            Route("/admin/users", save_user, methods=["POST"]),
            Route("/admin/users/disable", disable_user, methods=["POST"]),
            Route("/admin/audit", audit_page, methods=["GET"]),
        ],
    )


def check_name(name: str) -> str:
    """A user name: 1 to 64 of a-z, 0-9, dot, dash and underscore; ValueError otherwise."""
    if not 1 <= len(name) <= 64 or set(name) - _NAME_CHARS:
        raise ValueError("a user name is 1 to 64 of a-z, 0-9, '.', '-' and '_'")
    return name


async def _users(request: Request, status_code: int = 200, **extra: object) -> Response:
    users = await run_in_threadpool(deps(request).store.list_users)
    return render(request, "users.html", status_code, users=users, roles=list(ROLES), **extra)


@page(Permission.MANAGE_USERS)
async def users_page(request: Request) -> Response:
    return await _users(request)


@action(Permission.MANAGE_USERS)
async def save_user(request: Request, form: FormData) -> Response:
    console = deps(request)
    try:
        name = check_name(form_text(form, "name"))
        role = check_role(form_text(form, "role"))
        collector = form_text(form, "collector") or None
        known = await run_in_threadpool(console.ledger.collectors) if collector else []
        check_collector_link(role, collector, known)
        password_hash = hash_password(str(form.get("password") or ""))
        created = console.store.add_user(
            name,
            role,
            password_hash,
            now=console.clock.now(),
            replace=form.get("replace") == "1",
            collector_id=collector,
        )
    except (ValueError, ConfigError) as exc:
        return await _users(request, 400, error=str(exc))
    audit(
        request,
        "user_added" if created else "user_changed",
        None,
        user=name,
        role=role,
        collector=collector,
    )
    return await _users(request, notice=f"saved {name} ({role})")


@action(Permission.MANAGE_USERS)
async def disable_user(request: Request, form: FormData) -> Response:
    console = deps(request)
    name = form_text(form, "name")
    if console.store.disable_user(name, now=console.clock.now()):
        audit(request, "user_disabled", None, user=name)
        return await _users(request, notice=f"disabled {name}")
    return await _users(request, 404, error=f"no enabled user {name}")


@page(Permission.MANAGE_USERS)
async def audit_page(request: Request) -> Response:
    records = await run_in_threadpool(deps(request).store.console_audit)
    return render(request, "audit.html", records=records)
