"""Our aiohttp-based HTTP client for the twilio SDK, and the Twilio error classifier.

The stock ``AsyncTwilioHttpClient`` ignores its timeout (twilio-python #925), warns on every
request under aiohttp 3.14 (#931) and builds its session in ``__init__``, outside any running
loop. This client applies ``timeout_s`` to every request, sends Basic auth as a header itself,
creates one keep-alive session lazily inside the running loop, and rewrites
``https://<product>.twilio.com`` to ``api_base`` (the sandbox stand-in) when one is configured.

Foreign exceptions (aiohttp, TwilioRestException) pass through ``request``: the channel adapters
translate them with :func:`classify_twilio_error` at their boundary.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import logging
import re
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response

from dunning.errors import (
    ChannelError,
    PermanentChannelError,
    RateLimitedError,
    TransientChannelError,
)

__all__ = [
    "NOT_SENT_STATUSES",
    "DunningTwilioHttpClient",
    "classify_twilio_error",
    "classify_twilio_status",
    "last_retry_after_s",
]

_TWILIO_HOST = re.compile(r"^https://[a-z0-9.-]*\.twilio\.com(?=/|$)")
_KEEPALIVE_S = 30.0
_POOL_SIZE = 100
_logger = logging.getLogger("dunning.twilio_http")

#: Retry-After (seconds) of the last response in this task; the SDK's exception drops headers,
#: and a context variable is per task, so concurrent sends never see each other's value.
_retry_after_s: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "twilio_retry_after_s", default=None
)

#: Twilio codes for a recipient that can never receive this message.
_INVALID_RECIPIENT = {21211: "invalid 'To' number", 21614: "'To' number is not a mobile number"}
_UNSUBSCRIBED = 21610
_TOO_MANY_REQUESTS = 20429
#: Statuses a create can be answered with although nothing was (or will be) sent.
NOT_SENT_STATUSES = frozenset({"failed", "canceled", "undelivered"})
#: Delivery codes for a condition that passes: a later attempt may go through.
_PASSING_CODES = {
    30001: "queue overflow",
    30003: "handset unreachable",
    30008: "unknown error",
}


def last_retry_after_s() -> float | None:
    """Retry-After of the last response received in the current task, if it carried one."""
    return _retry_after_s.get()


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from Twilio; the worker's backoff applies instead
    return max(seconds, 0.0)


class DunningTwilioHttpClient(AsyncHttpClient):  # type: ignore[misc]  # twilio is untyped
    """Async HTTP client for ``twilio.rest.Client(http_client=...)``; close with :meth:`aclose`."""

    def __init__(self, *, timeout_s: float, api_base: str | None = None) -> None:
        super().__init__(_logger, True, timeout_s)
        self.timeout_s = timeout_s
        self.api_base = api_base.rstrip("/") if api_base else None
        self._session: aiohttp.ClientSession | None = None

    def rewrite(self, url: str) -> str:
        """``https://api.twilio.com/2010-04-01/...`` -> ``<api_base>/2010-04-01/...``."""
        if self.api_base is None:
            return url
        return _TWILIO_HOST.sub(self.api_base, url, count=1)

    def _session_in_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=_POOL_SIZE, keepalive_timeout=_KEEPALIVE_S, enable_cleanup_closed=False
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  the signature is twilio's base class
        allow_redirects: bool = False,
    ) -> Response:
        """One HTTP exchange; raises aiohttp.ClientError or TimeoutError on transport failure."""
        send_headers = dict(headers or {})
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            send_headers["Authorization"] = f"Basic {token}"
        body: bytes | None = None
        if data:
            # doseq: list values (StatusCallbackEvent, MediaUrl) become repeated fields.
            body = urlencode(_form_items(data), doseq=True).encode()
            send_headers["Content-Type"] = "application/x-www-form-urlencoded"
        query = _form_items(params) if params else None
        session = self._session_in_loop()
        _retry_after_s.set(None)
        async with session.request(
            method.upper(),
            self.rewrite(url),
            params=query,
            data=body,
            headers=send_headers,
            timeout=aiohttp.ClientTimeout(total=timeout or self.timeout_s),
            allow_redirects=allow_redirects,
        ) as response:
            text = await response.text()
            _retry_after_s.set(_parse_retry_after(response.headers.get("Retry-After")))
            return Response(response.status, text, dict(response.headers))

    async def aclose(self) -> None:
        """Close the pooled session (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _form_items(values: dict[str, object]) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for key, value in values.items():
        if isinstance(value, list | tuple):
            items.extend((key, str(v)) for v in value)
        elif isinstance(value, bool):
            items.append((key, "true" if value else "false"))
        elif value is not None:
            items.append((key, str(value)))
    return items


def _by_code(code: int | None, label: str) -> ChannelError | None:
    """The error a Twilio code means on its own, whatever carried it; None for other codes."""
    if code in _INVALID_RECIPIENT:
        return PermanentChannelError(_INVALID_RECIPIENT[code], provider_code=label)
    if code == _UNSUBSCRIBED:
        return PermanentChannelError(
            "recipient unsubscribed (replied STOP)", provider_code=label, suppress=True
        )
    if code == _TOO_MANY_REQUESTS:
        return RateLimitedError(
            "twilio rate limit", provider_code=label, retry_after_s=last_retry_after_s()
        )
    return None


def classify_twilio_status(
    status: str, error_code: int | None, error_message: str | None = None
) -> ChannelError | None:
    """The error a create answered with a status that is not a send means, or None.

    Twilio may accept a create (HTTP 201) and answer ``failed``, ``canceled`` or
    ``undelivered``: nothing went out. The code maps as in :func:`classify_twilio_error`;
    a code for a condition that passes (30001 queue overflow, 30003 handset unreachable, 30008
    unknown error) is transient; any other, or none, is permanent with the code in the reason.
    """
    answered = status.lower()
    if answered not in NOT_SENT_STATUSES:
        return None
    label = str(error_code) if error_code is not None else answered
    known = _by_code(error_code, label)
    if known is not None:
        return known
    # The code alone: Twilio's error message may quote the number.
    why = f"twilio answered {answered} ({label})"
    if error_code in _PASSING_CODES:
        return TransientChannelError(f"{why}, {_PASSING_CODES[error_code]}", provider_code=label)
    return PermanentChannelError(why, provider_code=label)


def classify_twilio_error(exc: BaseException) -> ChannelError:
    """Map a twilio or transport failure to the dunning error the worker's policy expects.

    21211/21614 permanent; 21610 permanent with ``suppress``; 20429 or HTTP 429 rate limited
    (with Retry-After when the response carried one); 5xx, timeouts and connection errors
    transient; any other 4xx permanent with the code in the reason. Reasons are built from
    the code only: Twilio's message quotes the number (``The 'To' number +1415... is not
    valid``), and a reason must read the same for every person with the same failure.
    """
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        # TwilioServiceException is the SDK's RFC 9457 variant: same status and code.
        code = exc.code if isinstance(exc.code, int) else None
        status = int(exc.status)
        label = str(code) if code is not None else f"http_{status}"
        known = _by_code(code, label)
        if known is not None:
            return known
        if status == 429:
            return RateLimitedError(
                "twilio rate limit", provider_code=label, retry_after_s=last_retry_after_s()
            )
        if status >= 500:
            return TransientChannelError(f"twilio server error {status}", provider_code=label)
        return PermanentChannelError(f"twilio rejected the request ({label})", provider_code=label)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        # The create may have been accepted before the answer was lost: never retry blindly.
        return TransientChannelError(
            "twilio request timed out", provider_code="timeout", ambiguous=True
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        # DNS, refused connection, TLS handshake: nothing was written, nobody was reached.
        return TransientChannelError(
            f"twilio transport error: {type(exc).__name__}",
            provider_code="transport",
            before_provider=True,
        )
    if isinstance(exc, aiohttp.ClientError):
        # The connection broke after the request may have been written.
        return TransientChannelError(
            f"twilio transport error: {type(exc).__name__}",
            provider_code="transport",
            ambiguous=True,
        )
    return TransientChannelError(f"unexpected twilio failure: {type(exc).__name__}")
