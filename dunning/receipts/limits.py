"""Reading request bodies with caps, before anyone is authenticated.

Every provider request is read before its signature can be checked (the signature covers the
body), so reading must be cheap for a stranger: the declared ``Content-Length`` is checked
first, the body is streamed and abandoned as soon as it passes the cap, and a form's field
count is counted before it is parsed. Within the caps, parsing and verifying a request is a
bounded amount of work on the event loop; JSON events are decoded in a thread.

Real provider requests are far below the caps: a Twilio callback is a few kB with 15 to 50
fields (an inbound MMS adds two fields per media, at most ten media).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = [
    "MAX_EVENTS",
    "MAX_FORM_BYTES",
    "MAX_FORM_FIELDS",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "RefusedError",
    "error_response",
    "parse_form",
    "read_body",
]

#: Largest Twilio form body taken (bytes).
MAX_FORM_BYTES = 64 * 1024
#: Most fields in one Twilio form.
MAX_FORM_FIELDS = 256
#: Largest signed JSON body taken (bytes): a batch of events.
MAX_JSON_BYTES = 1024 * 1024
#: Most events in one batch.
MAX_EVENTS = 1000
#: Deepest nesting of objects and lists in an event batch.
MAX_JSON_DEPTH = 32


class RefusedError(Exception):
    """A request answered with ``status`` and a JSON ``{"error": message}`` body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes; raises RefusedError (413) past the cap.

    A declared Content-Length over the cap is refused before a byte of the body is read; a
    streamed body is abandoned at the first chunk that passes it.
    """
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise RefusedError(413, f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RefusedError(413, f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """The fields of a form-encoded ``body`` in order; raises RefusedError (413 or 400).

    The field count is taken from the separators before anything is decoded.
    """
    fields = body.count(b"&") + 1 if body else 0
    if fields > MAX_FORM_FIELDS:
        raise RefusedError(413, f"form has {fields} fields, more than {MAX_FORM_FIELDS}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RefusedError(400, f"form body is not UTF-8 (byte {exc.start})") from None
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise RefusedError(400, f"form body is not valid: {type(exc).__name__}") from None
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise RefusedError(400, f"form field {name[:40]!r} holds a NUL character")
    return pairs


def json_depth_within(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` nests objects and lists at most ``limit`` deep (walked without
    recursion, so a hostile document cannot exhaust the stack here)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True
