"""structlog set-up: JSON lines in production, a console renderer on a terminal, PII masked.

The masking processor runs last before rendering, over every value of every event, so no log
line escapes it: phone numbers keep the country code and last 4 digits, emails the first
character and the domain; keys that hold names, addresses or message bodies are masked whole.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

__all__ = ["configure_logging", "mask_email", "mask_phone", "mask_pii"]

_PHONE = re.compile(r"\+\d{7,15}")
_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
_NAME_KEYS = {"name", "recipient_name", "debtor_name", "full_name"}
_DROP_KEYS = {"body", "text", "address", "postal_address", "message_body", "twiml", "html"}


def mask_phone(phone: str) -> str:
    """+8613800138000 -> +86*******8000 (country code and last four kept)."""
    digits = phone[1:]
    keep = 2 if digits.startswith(("86", "44")) else 1
    return "+" + digits[:keep] + "*" * max(len(digits) - keep - 4, 0) + digits[-4:]


def mask_email(email: str) -> str:
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", email)


def _mask_text(text: str) -> str:
    text = _PHONE.sub(lambda m: mask_phone(m.group(0)), text)
    return mask_email(text)


def _mask_value(key: str, value: Any) -> Any:
    if key in _DROP_KEYS and value:
        return "[redacted]"
    if key in _NAME_KEYS and isinstance(value, str) and value:
        return value[0] + "*" * (len(value) - 1)
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(key, v) for v in value]
    if isinstance(value, BaseException):
        return _mask_text(str(value))
    return value


def mask_pii(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: masks phone numbers, emails, names, addresses and bodies."""
    for key in list(event):
        event[key] = _mask_value(key, event[key])
    return event


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "info", stream: Any = None
) -> None:
    """Configure structlog (and the stdlib root logger) once, at the program's edge."""
    out = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if use_console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_pii,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # Without an explicit stream, look sys.stderr up per logger: test runners swap it.
        logger_factory=(
            structlog.PrintLoggerFactory(stream)
            if stream is not None
            else (lambda *_: structlog.PrintLogger(sys.stderr))
        ),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=out)
    # pika logs every failed connection attempt as a burst of ERROR lines with nested reprs;
    # the broker adapters turn each failure into one dunning line of their own, so pika's are
    # kept for debugging only.
    logging.getLogger("pika").setLevel(
        logging.NOTSET if numeric <= logging.DEBUG else logging.CRITICAL
    )
