"""structlog set-up: JSON lines in production, a console renderer on a terminal, PII masked.

The masking processor runs last before rendering, over every value of every event, so no log
line escapes it. By field first: while a worker handles an intent, :func:`hide` names that
person's values (name and its parts, phone in any spelling, email and its local part, address
lines) and every string logged meanwhile has them replaced by ``<name>``, ``<phone>``,
``<email>``, ``<address>``: a provider's sentence or a traceback that quotes them is caught
whatever its format. Then by pattern, for values nobody named: ``+`` numbers (also spaced or
dashed) keep the country code and last 4 digits, bare runs of 9+ digits the last 4, emails the
first character and the domain; keys that hold names, addresses or message bodies are masked
whole. :meth:`PersonalData.scrub` is also what the worker applies to dead-letter reasons and
``last_error``.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal

import structlog

__all__ = [
    "PersonalData",
    "configure_logging",
    "hide",
    "mask_email",
    "mask_phone",
    "mask_pii",
    "mask_text",
    "reveal",
]

# "+" then 7-15 digits, possibly grouped by spaces, dashes, dots or parentheses.
_PHONE = re.compile(r"\+\d(?:[\s().-]{0,2}\d){6,14}(?!\d)")
# A bare run of 9-15 digits that is not part of a word, an id or a decimal (dates have 8).
_DIGIT_RUN = re.compile(r"(?<![\w.+])\d{9,15}(?!\w|\.\d)")
# Anything that may spell a phone number: digits with separators, optionally after a "+".
_PHONE_LIKE = re.compile(r"\+?\d[\d\s().-]{5,}\d")
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


def mask_text(text: str) -> str:
    """Mask what looks like a phone number or an email address in ``text``."""
    text = _PHONE.sub(lambda m: mask_phone("+" + re.sub(r"\D", "", m.group(0))), text)
    text = _DIGIT_RUN.sub(lambda m: "*" * (len(m.group(0)) - 4) + m.group(0)[-4:], text)
    return mask_email(text)


class PersonalData:
    """One person's values, to be replaced wherever they turn up in a text (mask by field)."""

    def __init__(
        self,
        *,
        name: str | None = None,
        phone: str | None = None,
        email: str | None = None,
        address_lines: Iterable[str] = (),
    ) -> None:
        whole: dict[str, str] = {}  # matched anywhere (CJK names have no word boundaries)
        parts: dict[str, str] = {}  # matched as whole words only
        if name:
            whole[name] = "<name>"
            for part in re.split(r"[\s,.]+", name):
                if len(part) >= 2:
                    parts[part] = "<name>"
        if email:
            whole[email] = "<email>"
            local = email.rpartition("@")[0]
            if len(local) >= 3:
                parts[local] = "<email>"
        for block in address_lines:
            for line in block.splitlines():
                if len(line.strip()) >= 3:
                    whole[line.strip()] = "<address>"
        self._labels = {k.casefold(): v for k, v in {**parts, **whole}.items()}
        alternatives = [re.escape(v) for v in sorted(whole, key=len, reverse=True)]
        alternatives += [
            rf"(?<!\w){re.escape(v)}(?!\w)" for v in sorted(parts, key=len, reverse=True)
        ]
        self._pattern = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None
        digits = re.sub(r"\D", "", phone or "")
        self._phone_digits = digits if len(digits) >= 7 else ""

    def _is_phone(self, text: str) -> bool:
        digits = re.sub(r"\D", "", text)
        # The same number in any spelling: national or international, grouped or not.
        return len(digits) >= 7 and (
            self._phone_digits[-7:] in digits or digits in self._phone_digits
        )

    def scrub(self, text: str) -> str:
        """``text`` with this person's values replaced by placeholders, then pattern-masked."""
        if self._pattern is not None:
            labels = self._labels
            text = self._pattern.sub(lambda m: labels.get(m.group(0).casefold(), "<pii>"), text)
        if self._phone_digits:
            text = _PHONE_LIKE.sub(
                lambda m: "<phone>" if self._is_phone(m.group(0)) else m.group(0), text
            )
        return mask_text(text)


_NOBODY = PersonalData()
_hidden: contextvars.ContextVar[PersonalData] = contextvars.ContextVar(
    "dunning_hidden_personal_data", default=_NOBODY
)


def hide(person: PersonalData) -> contextvars.Token[PersonalData]:
    """Replace ``person``'s values in every log line of this task (and the tasks it starts)
    until :func:`reveal` is called with the token returned."""
    return _hidden.set(person)


def reveal(token: contextvars.Token[PersonalData]) -> None:
    """Undo :func:`hide` (at the end of the intent's processing)."""
    _hidden.reset(token)


def _mask_value(key: str, value: Any, person: PersonalData) -> Any:
    if key in _DROP_KEYS and value:
        return "[redacted]"
    if key in _NAME_KEYS and isinstance(value, str) and value:
        return value[0] + "*" * (len(value) - 1)
    if isinstance(value, str):
        return person.scrub(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v, person) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(key, v, person) for v in value]
    if isinstance(value, BaseException):
        return person.scrub(str(value))
    return value


def mask_pii(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: masks phone numbers, emails, names, addresses and bodies."""
    person = _hidden.get()
    for key in list(event):
        event[key] = _mask_value(key, event[key], person)
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
