"""Readiness checks of a worker's infrastructure: the ledger database and the rate-limiter store.

A check returns None when healthy, or a short reason why not. The runtime runs them when a
message fails, to tell an infrastructure fault (pause consuming, back off, resume when every
check passes) from a fault of the message itself; ``/readyz`` serves the same checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, runtime_checkable

__all__ = [
    "Pingable",
    "PingableStore",
    "ReadinessCheck",
    "failing_checks",
    "ledger_check",
    "limiter_check",
]

#: A readiness check returns None when healthy, or a short reason why not.
ReadinessCheck = Callable[[], Awaitable[str | None]]


@runtime_checkable
class Pingable(Protocol):
    """A ledger that can tell whether its database answers (raises when it does not)."""

    def ping(self) -> None: ...


@runtime_checkable
class PingableStore(Protocol):
    """A rate limiter backed by a store (Redis) that can tell whether the store answers."""

    async def ping(self) -> None: ...


def _why(exc: BaseException) -> str:
    """The exception and its cause's first line: enough to act on, without a traceback."""
    cause = exc.__cause__ or exc
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


def ledger_check(ledger: Pingable) -> ReadinessCheck:
    """``SELECT 1`` on the ledger database, in a thread (the ledger's calls are blocking)."""

    async def check() -> str | None:
        try:
            await asyncio.to_thread(ledger.ping)
        except Exception as exc:  # noqa: BLE001  any failure of the probe is "not ready"
            return f"database unreachable: {_why(exc)}"
        return None

    return check


def limiter_check(limiter: PingableStore) -> ReadinessCheck:
    """A round trip to the rate limiter's store."""

    async def check() -> str | None:
        try:
            await limiter.ping()
        except Exception as exc:  # noqa: BLE001  any failure of the probe is "not ready"
            return f"rate limiter store unreachable: {_why(exc)}"
        return None

    return check


async def failing_checks(
    checks: Mapping[str, ReadinessCheck], *, timeout_s: float = 5.0
) -> dict[str, str]:
    """Run every check, each bounded by ``timeout_s``; the failing ones with their reasons."""
    failures: dict[str, str] = {}
    for name, check in checks.items():
        try:
            async with asyncio.timeout(timeout_s):
                reason = await check()
        except TimeoutError:
            reason = f"no answer within {timeout_s:g}s"
        except Exception as exc:  # noqa: BLE001  a check that raises is a failing check
            reason = f"{type(exc).__name__}: {exc}"
        if reason is not None:
            failures[name] = reason
    return failures
