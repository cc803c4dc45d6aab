"""AMQP header names dunning sets, and the dead-letter header block.

Dead letters keep the original body; these headers say why they died, so `dunning dlq show` can
explain a message without the worker's logs.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = [
    "ATTEMPT",
    "ERROR_CLASS",
    "ERROR_DETAIL",
    "FIRST_FAILURE_AT",
    "LAST_FAILURE_AT",
    "NOT_BEFORE",
    "PROVIDER_CODE",
    "REASON",
    "REPLAY_COUNT",
    "TRACE_ID",
    "WORKER",
    "dead_letter_headers",
    "not_before",
    "worker_identity",
]

TRACE_ID = "x-dunning-trace-id"
NOT_BEFORE = "x-dunning-not-before"
ATTEMPT = "x-dunning-attempt"
ERROR_CLASS = "x-dunning-error-class"
REASON = "x-dunning-reason"
#: What varies per message (an exception's text), kept apart so the reason stays a category.
ERROR_DETAIL = "x-dunning-error-detail"
PROVIDER_CODE = "x-dunning-provider-code"
FIRST_FAILURE_AT = "x-dunning-first-failure-at"
LAST_FAILURE_AT = "x-dunning-last-failure-at"
WORKER = "x-dunning-worker"
REPLAY_COUNT = "x-dunning-replay-count"
SOURCE_QUEUE = "x-dunning-source-queue"


def worker_identity() -> str:
    """host:pid of this process, as written into dead letters and the ledger."""
    return f"{socket.gethostname()}:{os.getpid()}"


def not_before(headers: Mapping[str, Any]) -> datetime | None:
    """The instant a delayed message may be handled, or None; malformed values are ignored."""
    raw = headers.get(NOT_BEFORE)
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def dead_letter_headers(
    headers: Mapping[str, Any],
    *,
    error_class: str,
    reason: str,
    provider_code: str | None,
    attempts: int,
    now: datetime,
    queue: str,
) -> dict[str, Any]:
    """The original headers plus why, when, where and after how many attempts it died."""
    out = {k: v for k, v in headers.items() if k != NOT_BEFORE}
    out.setdefault(FIRST_FAILURE_AT, now.isoformat())
    out.update(
        {
            ERROR_CLASS: error_class,
            REASON: reason[:1000],
            PROVIDER_CODE: provider_code or "",
            ATTEMPT: attempts,
            LAST_FAILURE_AT: now.isoformat(),
            WORKER: worker_identity(),
            SOURCE_QUEUE: queue,
        }
    )
    return out
